"""Dynamics: self intermediate scattering function and the alpha-relaxation time."""
