"""HTTP endpoints: each a short linear story (address → world → tile → encode → headers)."""

from __future__ import annotations

import time
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from generator import tiles
from generator.encoded import encoded_key, render_counted
from generator.errors import InvalidTile, UnknownWorld
from generator.store import pack, unpack
from generator.world import World

from . import layers as layers_mod
from . import tms as tms_mod
from . import wmts
from .cache import cache_problem
from .errors import Overloaded
from .flights import ClientGone
from .headers import is_not_modified, not_modified, tile_headers
from .params import parse_tile, parse_tilesize

VIEWER_DIR = Path(__file__).resolve().parent.parent / "viewer"


def _ready(request: Request) -> None:
    if not request.app.state.ready.is_set():
        raise Overloaded(retry_after=2, message="the worlds and the model are still loading")


def _world(request: Request, name: str) -> World:
    _ready(request)
    worlds: dict[str, World] = request.app.state.worlds
    if name not in worlds:
        known = ", ".join(sorted(worlds))
        raise UnknownWorld(f"unknown world {name[:60]!r} (known: {known})")
    return worlds[name]


async def tile(request: Request) -> Response:
    """``/tiles/{world}[/{tms}]/{z}/{x}/{y}[@2x].{png|jpg|webp}[?tilesize=256|512]``."""
    p = request.path_params
    tms_id = p.get("tms", "WebMercatorQuad")
    matrix_set = tms_mod.get(tms_id)  # an unknown grid is named before the address is parsed
    addr = parse_tile(p["world"], p["z"], p["x"], p["y"])
    scale = parse_tilesize(request.query_params.get("tilesize"), addr.scale)
    world = _world(request, addr.world)
    if tms_id == "WebMercatorQuad":
        t = world.address(addr.z, addr.x, addr.y, scale)  # checked before any queueing
        z, x, y = t.z, t.x, t.y
        mpp = world.resolution(z, y) / scale
        extrapolated = world.beyond_training(z, y)
    else:
        # zoom z of the grid samples Web Mercator at zoom z + 1
        t = tiles.validate(addr.z, addr.x, addr.y, world.max_zoom - 1, grid=matrix_set)
        z, x, y = t.z, t.x, t.y
        if scale != 1:
            raise InvalidTile(f"@2x / tilesize=512 is served on WebMercatorQuad only, not {tms_id}")
        mpp = matrix_set.matrix(z).cellSize * 111319.49079327357
        extrapolated = world.model.beyond_training(mpp)
    key = encoded_key(world.content_hash, z, x, y, addr.fmt, scale, tms_id)  # = orbis seed's
    headers = tile_headers(
        key,
        world.content_hash,
        mpp,
        request.query_params.get("v"),
        request.app.state.settings.max_age,
    )
    if extrapolated:
        headers["X-Orbis-Extrapolated"] = "beyond the model's trained resolution range"
    if is_not_modified(request.headers, headers["ETag"]):
        return not_modified(headers)
    store = request.app.state.store
    prom = request.app.state.prom
    hot = request.app.state.hot
    body = hot.get(key)  # encoded bytes of recent tiles: no thread hop, no checksum
    if body is None:
        body = unpack(await run_in_threadpool(store.get, key))
        if body is not None:
            hot.set(key, body)
    if body is not None:
        prom.cache_hits.inc()
        response = Response(body, media_type=addr.fmt.media_type, headers=headers)
        request.app.state.memo.remember(
            request.scope["path"], request.scope["query_string"], response.raw_headers, key
        )
        return response
    started = time.perf_counter()

    async def produce(mark_started, cancel) -> bytes:
        async with request.app.state.gate.slot():
            mark_started()
            if tms_id == "WebMercatorQuad":
                arr, made = await run_in_threadpool(render_counted, world, z, x, y, scale, cancel)
            else:  # resampled from the pyramid on every miss
                arr = await run_in_threadpool(tms_mod.crs84_tile, world, z, x, y, cancel)
                made = True
            data = await run_in_threadpool(addr.fmt.encode_image, arr)
        await run_in_threadpool(store.set, key, pack(data))
        hot.set(key, data)
        prom.tiles_encoded.inc()
        if made:  # pyramid work, not only encoding (the pixels were not all cached)
            prom.tiles_generated.inc()
        return data

    try:
        body = await request.app.state.flights.run(key, produce, request)
    except ClientGone:
        return Response(status_code=499)  # nobody reads it; logged like nginx's 499
    headers["Server-Timing"] = f"render;dur={(time.perf_counter() - started) * 1000:.1f}"
    return Response(body, media_type=addr.fmt.media_type, headers=headers)


async def tile_matrix_sets(request: Request) -> Response:
    """``/tileMatrixSets``: the grids tiles are served on (OGC API - Tiles style list)."""
    base = str(request.base_url).rstrip("/")
    items = [
        {
            "id": t,
            "title": tms_mod.get(t).title,
            "links": [
                {"href": f"{base}/tileMatrixSets/{t}", "rel": "self", "type": "application/json"}
            ],
        }
        for t in tms_mod.SUPPORTED
    ]
    return JSONResponse({"tileMatrixSets": items}, headers={"Access-Control-Allow-Origin": "*"})


async def tile_matrix_set(request: Request) -> Response:
    """``/tileMatrixSets/{tms}``: the morecantile TileMatrixSet document."""
    m = tms_mod.get(request.path_params["tms"])
    return Response(
        m.model_dump_json(exclude_none=True, by_alias=True),
        media_type="application/json",
        headers={"Access-Control-Allow-Origin": "*"},
    )


async def wmts_capabilities(request: Request) -> Response:
    """``/tiles/{world}/WMTSCapabilities.xml`` (WMTS 1.0.0, RESTful)."""
    name = request.path_params["world"]
    world = _world(request, name)
    base = str(request.base_url).rstrip("/")
    return Response(
        wmts.capabilities(base, name, world),
        media_type="application/xml",
        headers={"Access-Control-Allow-Origin": "*"},
    )


def _world_info(request: Request, name: str, world: World) -> dict[str, object]:
    root = request.scope.get("root_path", "")
    c = world.config
    return {
        "name": name,
        "title": c.title or name,
        "min_zoom": 0,
        "max_zoom": c.max_zoom,
        "base_zoom": world.pyramid.base_zoom,  # a raster world: its native zoom
        "attribution": c.attribution,
        "center": list(c.center),
        "version": world.content_hash,
        "model": world.model.identity,
        "trained_mpp": list(world.model.info.trained_mpp),
        "tile_url": f"{root}/tiles/{name}/{{z}}/{{x}}/{{y}}.png",
        "layers": layers_mod.world_layers(root, name, world),
    }


async def worlds(request: Request) -> Response:
    """``/worlds``: what the viewer needs to know of each world."""
    _ready(request)
    items = [_world_info(request, n, w) for n, w in sorted(request.app.state.worlds.items())]
    return JSONResponse(items, headers={"Access-Control-Allow-Origin": "*"})


async def tilejson(request: Request) -> Response:
    """``/tiles/{world}/tilejson.json`` (TileJSON 3.0.0)."""
    name = request.path_params["world"]
    world = _world(request, name)
    base = str(request.base_url).rstrip("/")
    c = world.config
    doc = {
        "tilejson": "3.0.0",
        "name": c.title or name,
        "version": "1.0.0",
        "attribution": c.attribution,
        "scheme": "xyz",
        "tiles": [f"{base}/tiles/{name}/{{z}}/{{x}}/{{y}}.png"],
        "minzoom": 0,
        "maxzoom": c.max_zoom,
        "bounds": list(world.bounds),
        "center": [c.center[1], c.center[0], c.center[2]],
    }
    if world.footprint is not None:  # where the user's own imagery is (beyond: the fallback)
        doc["footprint"] = list(world.footprint)
    return JSONResponse(doc, headers={"Access-Control-Allow-Origin": "*"})


async def health(request: Request) -> Response:
    """``/health``: 200 when worlds are loaded, 503 while loading or after a failed load."""
    state = request.app.state
    if not state.ready.is_set():
        status = "error" if state.load_error else "loading"
        body = {"status": status, "detail": state.load_error or "loading the worlds and model"}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "2"})
    ws = request.app.state.worlds
    # a broken cache degrades the server but it keeps serving (tiles are regenerated), so the
    # answer stays 200: a load balancer must not take every node out when a shared cache dies
    problem = await run_in_threadpool(cache_problem, state.store)
    return JSONResponse(
        {
            "status": "ok" if problem is None else "degraded",
            "worlds": {n: w.content_hash for n, w in sorted(ws.items())},
            "cache": {"ok": problem is None, "detail": problem or "ok"},
            "generating": state.gate.running,
            "queued": state.gate.waiting,
        }
    )


async def metrics(request: Request) -> Response:
    """``/metrics``: Prometheus text exposition."""
    from .metrics import CONTENT_TYPE

    return Response(request.app.state.prom.render(), media_type=CONTENT_TYPE)


async def openapi(request: Request) -> Response:
    """``/openapi.json``: the OpenAPI 3.1 description of this API."""
    from .openapi import document

    state = request.app.state
    worlds = {n: w.max_zoom for n, w in state.worlds.items()} if state.ready.is_set() else None
    return JSONResponse(document(worlds), headers={"Access-Control-Allow-Origin": "*"})


async def viewer(request: Request) -> Response:
    """``/``: the Leaflet viewer."""
    return FileResponse(VIEWER_DIR / "index.html", media_type="text/html")


async def terrain_viewer(request: Request) -> Response:
    """``/3d``: the MapLibre 3D view (imagery draped over the elevation layer)."""
    return FileResponse(VIEWER_DIR / "static" / "terrain.html", media_type="text/html")


def routes() -> list[Route | Mount]:
    """Return the app's routes (path segments are strings: ``params`` validates them)."""
    return [
        # a layer's TileJSON has as many segments as a tile: it must come before the tile route
        Route(
            "/tiles/{world}/layers/{layer}/tilejson.json",
            layers_mod.layer_tilejson,
            name="layer_tilejson",
        ),
        # tiles first: the router tries routes in order, and tiles are nearly every request
        Route("/tiles/{world}/{z}/{x}/{y}", tile, name="tile"),
        Route(
            "/tiles/{world}/layers/{layer}/{z}/{x}/{y}", layers_mod.layer_tile, name="layer_tile"
        ),
        Route("/tiles/{world}/{tms}/{z}/{x}/{y}", tile, name="tms_tile"),
        Route("/tiles/{world}/tilejson.json", tilejson, name="tilejson"),
        Route("/tiles/{world}/WMTSCapabilities.xml", wmts_capabilities, name="wmts"),
        Route("/", viewer, name="viewer"),
        Route("/3d", terrain_viewer, name="terrain_viewer"),
        Route("/health", health, name="health"),
        Route("/openapi.json", openapi, name="openapi"),
        Route("/metrics", metrics, name="metrics"),
        Route("/worlds", worlds, name="worlds"),
        Route("/tileMatrixSets", tile_matrix_sets, name="tile_matrix_sets"),
        Route("/tileMatrixSets/{tms}", tile_matrix_set, name="tile_matrix_set"),
        Mount("/static", StaticFiles(directory=VIEWER_DIR / "static"), name="static"),
    ]
