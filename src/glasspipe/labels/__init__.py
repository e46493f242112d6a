"""Dynamical labels from iso-configurational ensembles (propensity, ...)."""
