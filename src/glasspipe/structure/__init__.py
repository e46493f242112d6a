"""Static structure: periodic neighbour lists, radial descriptors, order parameters."""
