"""What every stage shares: the metadata its outputs carry, and the settings of a model-run job."""

from __future__ import annotations

import json
from pathlib import Path

from glasspipe import __version__
from glasspipe import config as cfg


def metadata(stage: str, settings: dict, **extra) -> dict:
    meta = {"stage": stage, "glasspipe_version": __version__, "settings": settings, **extra}
    if "system" in settings:
        from glasspipe.potential import from_config

        meta["potential"] = from_config(settings).metadata()
    return meta


def jsonable(data: dict) -> dict:
    """``data`` as it reads back from JSON (numpy values as plain numbers and lists)."""
    from glasspipe.io.atomic import json_default

    return json.loads(json.dumps(data, sort_keys=True, default=json_default))


def remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def settings_json(settings: dict) -> str:
    """Canonical JSON of a job's settings (the Snakemake param; the CLI reads it with settings_from_json)."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def nested(settings: dict) -> dict:
    """Settings with dotted keys ('isoconf.times') expanded into sections, as the stages read them."""
    if any("." in key for key in settings):
        return cfg.settings_from_json(json.dumps(settings))
    return settings
