"""The models, one module each: its network (or fit), its training task and its predictor together. What
each declares to the config (settings, defaults, checks) and the registry: glasspipe.learn.zoo."""
