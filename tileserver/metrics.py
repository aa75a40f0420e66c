"""Prometheus metrics (prometheus_client, one registry per app, so tests never share counters).

Counters of work (tiles generated, cache hits), a request-latency histogram per route, and
gauges read at scrape time: generation queue depth and running generations, per-world model
evaluations from the pyramid's own counters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from starlette.types import ASGIApp, Receive, Scope, Send

from .limits import GenerationGate

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _WorldCollector:
    """Exposes each world's pyramid counters (model evaluations, windows, tiles)."""

    def __init__(self, app_state) -> None:
        self.state = app_state

    def collect(self):
        """Yield one counter family per pyramid statistic (prometheus_client protocol)."""
        worlds = getattr(self.state, "worlds", {}) or {}
        fams = {}
        for name in ("model_evals", "windows_generated", "tiles_generated"):
            fams[name] = CounterMetricFamily(
                f"orbis_world_{name}", f"pyramid {name.replace('_', ' ')}", labels=["world"]
            )
        for world_name, world in sorted(worlds.items()):
            snap = world.pyramid.stats.snapshot()
            for name, fam in fams.items():
                fam.add_metric([world_name], snap[name])
        yield from fams.values()


class _FlightCollector:
    """Generations dropped because every client waiting for them went away, by stage."""

    def __init__(self, app_state) -> None:
        self.state = app_state

    def collect(self):
        """Yield the dropped-generation counter (prometheus_client protocol)."""
        flights = getattr(self.state, "flights", None)
        fam = CounterMetricFamily(
            "orbis_generations_dropped",
            "generations dropped because no client waited for them any more",
            labels=["stage"],
        )
        if flights is not None:  # not "if flights": an idle TileFlights has len() 0
            fam.add_metric(["queued"], flights.cancelled)
            fam.add_metric(["running"], flights.dropped)
        yield fam


class Metrics:
    """The app's metric objects."""

    def __init__(self, gate: GenerationGate, app_state) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[str, object] = {}
        r = self.registry
        self.tiles_generated = Counter(
            "orbis_tiles_generated", "tiles rendered and encoded (cache misses)", registry=r
        )
        self.cache_hits = Counter("orbis_cache_hits", "tiles served from the cache", registry=r)
        self.layer_tiles_generated = Counter(
            "orbis_layer_tiles_generated",
            "geography layer tiles computed and encoded (cache misses)",
            ["layer"],
            registry=r,
        )
        self.layer_cache_hits = Counter(
            "orbis_layer_cache_hits",
            "geography layer tiles served from the cache",
            ["layer"],
            registry=r,
        )
        self.latency = Histogram(
            "orbis_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=(
                0.001,
                0.0025,
                0.005,
                0.01,
                0.025,
                0.05,
                0.1,
                0.25,
                0.5,
                1,
                2.5,
                5,
                10,
                30,
                60,
            ),
            registry=r,
        )
        queued = Gauge("orbis_generation_queue_depth", "requests waiting to generate", registry=r)
        queued.set_function(lambda: gate.waiting)
        running = Gauge("orbis_generation_running", "tiles being generated", registry=r)
        running.set_function(lambda: gate.running)
        r.register(_WorldCollector(app_state))
        r.register(_FlightCollector(app_state))

    def observe(self, route: str, seconds: float) -> None:
        """Record one request's latency (label children cached: ``labels()`` takes a lock)."""
        child = self._children.get(route)
        if child is None:
            child = self._children[route] = self.latency.labels(route=route)
        child.observe(seconds)

    def render(self) -> bytes:
        """Return the text exposition."""
        return generate_latest(self.registry)


@dataclass(frozen=True)
class LatencyMiddleware:
    """Pure ASGI middleware observing request latency under the matched route's name."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request; non-HTTP scopes pass through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            name = getattr(route, "name", None) or "unmatched"
            metrics: Metrics | None = getattr(scope["app"].state, "prom", None)
            if metrics is not None:
                metrics.observe(name, time.perf_counter() - start)
