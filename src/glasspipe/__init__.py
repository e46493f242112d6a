"""glasspipe: a reproducible pipeline from Kob-Andersen simulations to graph networks of glassy dynamics."""

import os

# OpenMP threads (LAMMPS' OPENMP package, torch's intra-op pool) must sleep, not spin, when they wait:
# spinning threads made LAMMPS 18 times and a torch training step 15 times slower on a shared machine.
# Set before torch or liblammps is loaded; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

__version__ = "0.1.0"
