"""Shared fixtures of the orbis test suite.

Everything here is small and seeded. Fixtures that need torch import it lazily, so tests of the
pure modules (tiles, noise, planner, store) do not pay for it. Plain helper functions live in
``tests/helpers.py``.
"""

from __future__ import annotations

import os

import pytest

# One intra-op thread: the tiny test models gain nothing from more, and on a small machine shared
# with other work (a training run) oversubscribed OpenMP threads make each window ~10x slower.
# Set before torch is imported; subprocesses inherit it, so cross-process checks compare like
# with like. An explicit setting in the environment wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")


# ---- fixtures ----------------------------------------------------------------------------
TINY_MODEL_ARGS = {"block_out_channels": (8, 16), "seed": 0, "steps": 2}


@pytest.fixture(scope="session")
def tiny_model():
    """A tiny, seeded, randomly initialised built-in model (2 DDIM steps). Do not mutate it."""
    from generator.models.sr_model import random_model

    return random_model(**TINY_MODEL_ARGS)


@pytest.fixture(scope="session")
def earth(tiny_model):
    """The earth world with the tiny model and a session-wide in-memory cache.

    Tests that need a cold cache or their own store build a fresh ``World`` instead.
    """
    from generator.world import World

    return World.load("earth", model=tiny_model)
