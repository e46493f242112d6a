"""Seeds derived from the master seed and the indices of what is being drawn.

Every random choice in glasspipe (initial positions, thermostat noise, replica velocities, weight
initialisation, augmentation) takes its seed from here, so that the same config gives the same numbers
and different items (configuration c, replica r, ...) never share a random stream.
"""

from __future__ import annotations

import numpy as np

# Fixed tags keep the streams of different stages apart even for equal indices.
STREAMS = {"init": 1, "equilibrate": 2, "replica_velocities": 3, "train": 4, "transfer": 5, "learning_curve": 6}


def derive_seed(master_seed: int, stream: str, *indices: int) -> int:
    """A 31-bit integer seed for (stream, indices), stable across platforms and numpy versions.

    Engines such as LAMMPS need a positive int below 2**31; numpy takes any int.
    """
    entropy = [int(master_seed), STREAMS[stream], *(int(i) for i in indices)]
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0]
    return int(state % (2**31 - 2)) + 1


def rng(master_seed: int, stream: str, *indices: int) -> np.random.Generator:
    """A numpy Generator seeded by derive_seed."""
    return np.random.default_rng(derive_seed(master_seed, stream, *indices))
