"""The report stage: figures, tables, the results README, the citation and, last, the checksum manifest
(the library: glasspipe.artifact and glasspipe.report)."""

from __future__ import annotations


def report(config: dict) -> None:
    """Build the report of the whole resolved ``config`` (glasspipe.artifact.build)."""
    from glasspipe import artifact

    artifact.build(config)
