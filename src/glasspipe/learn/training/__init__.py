"""Training: one trainer for the networks (trainer), its checkpoints, the loss weights and auxiliary losses, and
what the graph networks share (graph_task)."""
