"""Molecular dynamics: the engine interface, the engines (lammps, hoomd) and the protocols written once."""
