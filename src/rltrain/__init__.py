"""rltrain: a config-driven reinforcement-learning training CLI."""

__version__ = "0.1.0"
