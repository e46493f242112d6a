"""Dynamical labels from iso-configurational replicas; importing the package registers every label."""

from glasspipe.labels import bond_breaking, cwt, displacement, phop, propensity  # noqa: F401
from glasspipe.labels.registry import LABELS

__all__ = ["LABELS"]
