"""Shared fixtures of the orbis test suite.

Everything here is small and seeded. Fixtures that need torch import it lazily, so tests of the
pure modules (tiles, noise, planner, store) do not pay for it. Plain helper functions live in
``tests/helpers.py``.
"""

from __future__ import annotations

import pytest

# No OMP_NUM_THREADS pin for the suite: tile bytes must not depend on the thread count (every
# model evaluation runs with generator.parallel.EVAL_THREADS, whatever the process has), and a
# pin here would hide it, as it once did (tests/test_determinism.py).


def pytest_configure(config: pytest.Config) -> None:
    """Ignore rasterio's spurious "no geotransform" warning of concurrent ``rasterize`` calls.

    With windows generated on several threads, the geography's ``rasterio.features.rasterize``
    runs in two threads at once, and rasterio 1.4 then sometimes warns that its in-memory
    dataset has no geotransform although the output is right (checked: 1,000 concurrent calls,
    0 differing arrays; a known rasterio/odc-geo report). Warnings are errors in this suite.
    """
    spurious = "ignore:Dataset has no geotransform:rasterio.errors.NotGeoreferencedWarning"
    config.addinivalue_line("filterwarnings", spurious)


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


@pytest.fixture(scope="module")
def nogeo_config_dir(tmp_path_factory):
    """A config folder whose ``earth`` has no geography: no data indices to build per process."""
    from tests.helpers import CONFIG_DIR, write_world

    d = tmp_path_factory.mktemp("config")
    text = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
    write_world(d, "earth", text + '\n[geography]\nkind = "none"\n')
    return d


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """The tiny random model of the serving tests, saved to a folder (for subprocesses)."""
    from tests.serving_helpers import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))
