"""Dropping generation nobody waits for: a ``cancel`` event stops the pyramid between windows.

What was finished before the stop stays cached, and the tile made later (resuming from it) is
byte-identical to one made in one go: cancelling never changes tile bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from generator.errors import Cancelled
from generator.parallel import eval_workers
from generator.store import MemoryStore
from generator.tiles import Tile
from generator.world import World
from tests.serving_helpers import decode_array, metric, save_tiny_model, stop_process
from tests.test_server_live import free_port, wait_for_health

REPO = Path(__file__).resolve().parent.parent
DEEP = (7, 67, 45)  # three levels below earth's base: dozens of windows when cold


class _StopAfter(MemoryStore):
    """A store that sets ``cancel`` once ``n`` windows have been written (a client leaving)."""

    def __init__(self, cancel: threading.Event, n: int) -> None:
        super().__init__()
        self.cancel, self.n, self.windows = cancel, n, 0

    def set(self, key: str, value: bytes) -> None:
        super().set(key, value)
        if "/w/" in key:
            self.windows += 1
            if self.windows >= self.n:
                self.cancel.set()


def test_set_cancel_stops_before_any_model_work(tiny_model):
    world = World.load("earth", model=tiny_model, store=MemoryStore())
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        world.render(*DEEP, cancel=cancel)
    assert world.pyramid.stats.snapshot()["model_evals"] == 0


def test_cancel_stops_between_windows_and_resuming_gives_the_same_bytes(tiny_model):
    cancel = threading.Event()
    store = _StopAfter(cancel, n=3)
    world = World.load("earth", model=tiny_model, store=store)
    with pytest.raises(Cancelled):
        world.render(*DEEP, cancel=cancel)
    stopped = world.pyramid.stats.snapshot()
    # stopped right after the third window; windows already running on other cores finish
    assert 3 <= stopped["windows_generated"] <= 2 + eval_workers()
    tiles, windows = world.pyramid.plan_cost(Tile(DEEP[1], DEEP[2], DEEP[0]))
    assert windows > 0
    resumed = world.render(*DEEP)
    after = world.pyramid.stats.snapshot()
    assert after["windows_generated"] - stopped["windows_generated"] == windows  # no rework
    fresh = World.load("earth", model=tiny_model, store=MemoryStore()).render(*DEEP)
    assert resumed.tobytes() == fresh.tobytes()


def test_cancel_reaches_the_children_of_a_2x_tile(tiny_model):
    world = World.load("earth", model=tiny_model, store=MemoryStore())
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        world.render(6, 33, 22, scale=2, cancel=cancel)
    assert world.pyramid.stats.snapshot()["model_evals"] == 0


@pytest.mark.slow
def test_client_leaving_a_running_generation_stops_the_model(tmp_path):
    """A real uvicorn server: the client times out and closes its socket mid-generation."""
    model = save_tiny_model(tmp_path / "model")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = [
        sys.executable, "-m", "generator.cli", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--cache", "memory", "--model", str(model),
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = "/tiles/earth/{}/{}/{}.png".format(*DEEP)
    evals = 'orbis_world_model_evals_total{world="earth"}'
    try:
        wait_for_health(base, proc, log)
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(base + url, timeout=httpx.Timeout(5, read=0.5))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = httpx.get(base + "/metrics").text
            if metric(text, 'orbis_generations_dropped_total{stage="running"}') == 1:
                break
            time.sleep(0.1)
        assert metric(text, 'orbis_generations_dropped_total{stage="running"}') == 1
        # the window under way finishes, then the model stops for good: the count must stay
        # put for three readings in a row once it has moved (a fresh server's first window
        # loads the geography's data for seconds before its first evaluation, so a quiet
        # count of zero proves nothing until a while has passed)
        previous, quiet, start = -1.0, 0, time.monotonic()
        while time.monotonic() < start + 60 and quiet < 3:
            text = httpx.get(base + "/metrics").text
            quiet = quiet + 1 if metric(text, evals) == previous else 0
            previous = metric(text, evals)
            if previous == 0 and time.monotonic() < start + 20:
                quiet = 0
            time.sleep(1.5)
        time.sleep(1.5)
        text = httpx.get(base + "/metrics").text
        assert metric(text, evals) == previous
        assert metric(text, "orbis_tiles_generated_total") == 0
        from generator.models.sr_model import SuperResolutionModel

        world = World.load("earth", model=SuperResolutionModel.from_pretrained(model))
        _, windows = world.pyramid.plan_cost(Tile(DEEP[1], DEEP[2], DEEP[0]))
        assert previous < windows * world.pyramid.steps  # stopped well before the end
        # asked again, the tile resumes from the cached windows: same bytes as in one go
        r = httpx.get(base + url, timeout=120)
        assert r.status_code == 200, r.text
        assert (decode_array(r.content) == world.tile_array(*DEEP)).all()
    finally:
        stop_process(proc, timeout=30)
