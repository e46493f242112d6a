"""Learning: graphs and samples, models (Bapst GNN, ridge baseline), training, prediction, evaluation."""
