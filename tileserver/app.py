"""``create_app(settings)``: the table of contents of the server.

Worlds, model and cache are loaded once in the lifespan into ``app.state``; nothing is read from
the environment at import time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware

from generator.store import MemoryStore
from generator.world import World
from generator.world_config import world_names

from .cache import open_store
from .errors import exception_handlers
from .fastpath import FastTileMiddleware, ResponseMemo
from .flights import TileFlights
from .limits import GenerationGate
from .metrics import LatencyMiddleware, Metrics
from .routes import routes
from .settings import Settings

log = logging.getLogger("orbis.server")


def load_worlds(settings: Settings, store) -> dict[str, World]:
    """Load every configured world (errors name the file and key)."""
    names = settings.worlds or tuple(world_names(settings.config_dir))
    return {
        n: World.load(
            n,
            settings.config_dir,
            store=store,
            model=settings.model,
            prompt=settings.prompt,
            device=settings.device,
            dtype=settings.dtype,
        )
        for n in names
    }


def create_app(settings: Settings | None = None) -> Starlette:
    """Return the orbis Starlette app."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = open_store(settings.cache, settings.cache_size_limit)
        app.state.store = store
        app.state.worlds = {}
        app.state.load_error = None

        def load() -> None:
            try:
                app.state.worlds = load_worlds(settings, store)
                log.info("worlds loaded: %s", ", ".join(app.state.worlds))
                app.state.ready.set()
            except Exception as exc:  # noqa: BLE001 - reported by /health, the server stays up
                app.state.load_error = f"{type(exc).__name__}: {exc}"
                log.error("loading worlds failed: %s", app.state.load_error)

        if settings.load_in_background:
            threading.Thread(target=load, name="orbis-load", daemon=True).start()
        else:
            app.state.worlds = load_worlds(settings, store)
            app.state.ready.set()
        yield
        close = getattr(store, "close", None)
        if close:
            close()

    table = routes()
    tile_route = next(r for r in table if getattr(r, "name", None) == "tile")
    app = Starlette(
        routes=table,
        middleware=[
            Middleware(LatencyMiddleware),
            Middleware(FastTileMiddleware, route=tile_route),
        ],
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.ready = threading.Event()
    app.state.gate = GenerationGate(settings.max_generating, settings.max_queue)
    app.state.prom = Metrics(app.state.gate, app.state)
    app.state.flights = TileFlights(settings.request_timeout)
    app.state.hot = MemoryStore(settings.hot_cache_bytes)
    app.state.memo = ResponseMemo(app.state.hot, settings.response_memo_entries)
    return app
