"""Learning: samples (samples, inputs), graphs (graphs/), one module per model (models/, declared to the config
by zoo/), training (training/), prediction, evaluation, and the transfer and learning-curve experiments."""
