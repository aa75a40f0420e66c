"""Deterministic samplers: all randomness enters as arguments (noise-field crops)."""

from .ddim import sample_window

__all__ = ["sample_window"]
