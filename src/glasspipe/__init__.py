"""glasspipe: a reproducible pipeline from Kob-Andersen simulations to graph networks of glassy dynamics."""

__version__ = "0.1.0"
