"""Behaviour under load: coalescing, time limits, background loading (one behaviour per test)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.testclient import TestClient

from tileserver import Settings, create_app
from tileserver.flights import ClientGone, TileFlights

from .serving_helpers import decode, metric, save_tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model"))


def counter(client, name: str) -> float:
    return metric(client.get("/metrics").text, name)


def test_thirty_concurrent_requests_generate_once(model_dir):
    app = create_app(Settings(model=str(model_dir), worlds=("earth",)))
    with TestClient(app) as c:
        with ThreadPoolExecutor(30) as pool:
            replies = list(pool.map(lambda _: c.get("/tiles/earth/5/17/11.png"), range(30)))
        assert [r.status_code for r in replies] == [200] * 30
        assert len({r.content for r in replies}) == 1
        assert decode(replies[0].content).size == (256, 256)
        assert counter(c, "orbis_tiles_generated_total") == 1.0
        # the one tile's cone, not thirty of them
        stats = c.app.state.worlds["earth"].pyramid.stats.snapshot()
        assert stats["tiles_generated"] < 30


def test_time_limit_gives_503_and_work_goes_on(model_dir):
    app = create_app(Settings(model=str(model_dir), worlds=("earth",), request_timeout=0.01))
    with TestClient(app) as c:
        r = c.get("/tiles/earth/5/19/11.png")
        assert r.status_code == 503
        assert r.headers["retry-after"] == "5"
        assert "still generating" in r.json()["detail"]
        deadline = time.time() + 60
        while time.time() < deadline:  # the generation finishes and lands in the cache
            if counter(c, "orbis_tiles_generated_total") == 1.0:
                break
            time.sleep(0.2)
        r = c.get("/tiles/earth/5/19/11.png")
        assert r.status_code == 200
        assert counter(c, "orbis_cache_hits_total") == 1.0


class _FakeRequest:
    """A receive channel that reports a disconnect after a delay (the ASGI contract)."""

    def __init__(self, after: float) -> None:
        self.after = after

    async def receive(self):
        await asyncio.sleep(self.after)
        return {"type": "http.disconnect"}


def test_abandoned_queued_generation_is_cancelled():
    flights = TileFlights(timeout=10)
    ran = []

    async def produce(mark_started, cancel):
        await asyncio.sleep(1)  # still queued: never marks itself started
        ran.append(True)
        return b"x"

    async def main():
        with pytest.raises(ClientGone):
            await flights.run("k", produce, _FakeRequest(0.05))
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert flights.cancelled == 1
    assert ran == []
    assert len(flights) == 0


def test_running_generation_is_dropped_when_its_last_client_leaves():
    flights = TileFlights(timeout=10)
    events = []

    async def produce(mark_started, cancel):
        mark_started()
        events.append(cancel)
        for _ in range(20):  # a generator checking its event between windows
            if cancel.is_set():
                raise RuntimeError("stopped")
            await asyncio.sleep(0.02)
        return b"done"

    async def main():
        with pytest.raises(ClientGone):
            await flights.run("k", produce, _FakeRequest(0.05))
        assert events[0].is_set()
        # a client arriving after that starts a fresh generation, not the dropped one
        return await flights.run("k", produce, _FakeRequest(5))

    assert asyncio.run(main()) == b"done"
    assert len(events) == 2 and not events[1].is_set()
    assert (flights.cancelled, flights.dropped) == (0, 1)


def test_running_generation_goes_on_while_another_client_waits():
    flights = TileFlights(timeout=10)
    events = []

    async def produce(mark_started, cancel):
        mark_started()
        events.append(cancel)
        await asyncio.sleep(0.3)
        return b"done"

    async def main():
        stays = asyncio.ensure_future(flights.run("k", produce, _FakeRequest(5)))
        await asyncio.sleep(0.01)
        with pytest.raises(ClientGone):
            await flights.run("k", produce, _FakeRequest(0.05))
        return await stays

    assert asyncio.run(main()) == b"done"
    assert len(events) == 1 and not events[0].is_set()
    assert flights.dropped == 0


def test_health_is_503_while_loading(model_dir, monkeypatch):
    import tileserver.app as app_module

    real = app_module.load_worlds

    def slow(settings, store):
        time.sleep(1.5)
        return real(settings, store)

    monkeypatch.setattr(app_module, "load_worlds", slow)
    app = create_app(Settings(model=str(model_dir), worlds=("earth",), load_in_background=True))
    with TestClient(app) as c:
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "loading"
        assert c.get("/tiles/earth/2/1/1.png").status_code == 503
        deadline = time.time() + 30
        while c.get("/health").status_code != 200 and time.time() < deadline:
            time.sleep(0.1)
        assert c.get("/health").json()["status"] == "ok"
        assert c.get("/tiles/earth/2/1/1.png").status_code == 200


def test_health_reports_a_failed_load(tmp_path):
    app = create_app(Settings(model=str(tmp_path / "missing"), load_in_background=True))
    with TestClient(app) as c:
        deadline = time.time() + 30
        while c.get("/health").json()["status"] == "loading" and time.time() < deadline:
            time.sleep(0.1)
        r = c.get("/health")
        assert r.status_code == 503
        assert r.json()["status"] == "error" and "missing" in r.json()["detail"]
