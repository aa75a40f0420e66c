"""Geography layer tiles: elevation (Terrarium or Mapbox Terrain-RGB), land cover and water.

``/tiles/{world}/layers/{layer}/{z}/{x}/{y}.png`` serves a world's geography
(:class:`generator.geography.Geography`) with the imagery tiles' conventions: strong ETags from
the world's content hash, 304 on If-None-Match, Cache-Control (immutable with ``?v=``), CORS,
encoded bytes in the app's store and hot cache (key prefix ``{hash}/l/``), identical requests
coalesced and computed off the event loop. Layers are cheap pure functions, so they do not wait
in the imagery generation queue.

Encodings, chosen so that standard clients read the values without a plugin:

- ``elevation``: RGB PNG in the Terrarium encoding MapLibre's ``raster-dem`` reads
  (``height = R·256 + G + B/256 − 32768`` m, 1/256 m steps), or with ``?encoding=mapbox``
  Mapbox Terrain-RGB (``height = −10000 + (R·65536 + G·256 + B)·0.1`` m).
- ``landcover`` and ``water``: paletted PNG whose indices are the class ids of
  :mod:`generator.geography.classes` and whose palette is their legend colours; in ``water``
  the land index is transparent (tRNS), so the layer overlays imagery as it is.
- ``layout``: paletted PNG of :mod:`generator.geography.layout_classes` (roads, fields,
  buildings …); ``/tiles/{world}/layers/features/{z}/{x}/{y}.geojson`` serves the same objects
  as an RFC 7946 FeatureCollection (``application/geo+json``, lon/lat, clipped to the tile).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from generator.errors import InvalidTile, UnknownLayer
from generator.geography import LAYERS, Geography
from generator.geography import classes as C
from generator.geography import layout_classes as LC
from generator.store import pack, unpack
from generator.world import World

from .flights import ClientGone
from .headers import is_not_modified, not_modified, tile_headers
from .params import parse_tile

#: layers served over HTTP, in the order listed by /worlds, TileJSON and WMTS
SERVED = ("elevation", "landcover", "water", "layout")
#: the vector twin of ``layout``: GeoJSON tiles at ``/layers/features/{z}/{x}/{y}.geojson``
FEATURES = "features"
#: elevation encodings (``?encoding=``): the first is the default
ENCODINGS = ("terrarium", "mapbox")
BOUNDS = [-180.0, -85.0511287798066, 180.0, 85.0511287798066]


@dataclass(frozen=True)
class _Packing:
    """Height ↔ 24-bit integer: ``height = q · scale + offset`` with ``q = R·65536 + G·256 + B``."""

    scale: float
    offset: float


_PACKINGS = {"terrarium": _Packing(1 / 256, -32768.0), "mapbox": _Packing(0.1, -10000.0)}


def encode_height(height: np.ndarray, encoding: str = "terrarium") -> np.ndarray:
    """Return (H, W, 3) uint8 RGB holding ``height`` (m) in a Terrarium or Terrain-RGB packing.

    Rounded to the nearest step (1/256 m Terrarium, 0.1 m Mapbox) and clamped to the range the
    encoding can hold (Terrarium −32768…+32768 m, Mapbox −10000…+1667721 m).
    """
    p = _PACKINGS[encoding]
    q = np.rint((np.asarray(height, np.float64) - p.offset) / p.scale)
    q = np.clip(q, 0, 2**24 - 1).astype(np.uint32)
    rgb = np.stack([(q >> 16) & 255, (q >> 8) & 255, q & 255], axis=-1)
    return rgb.astype(np.uint8)


def decode_height(rgb: np.ndarray, encoding: str = "terrarium") -> np.ndarray:
    """Return the heights (m, float64) of an RGB tile, as MapLibre's ``raster-dem`` reads them."""
    p = _PACKINGS[encoding]
    r, g, b = (np.asarray(rgb[..., i], np.float64) for i in range(3))
    if encoding == "terrarium":  # MapLibre's own formula, term by term
        return r * 256 + g + b / 256 - 32768
    return (r * 65536 + g * 256 + b) * p.scale + p.offset


def palette(layer: str) -> tuple[C.Klass, ...]:
    """Return the classes (ids, names, colours) of a class layer."""
    if layer == "layout":
        return LC.LAYOUT
    return C.LANDCOVER if layer == "landcover" else C.WATER_KINDS


def encode_classes(ids: np.ndarray, layer: str) -> bytes:
    """Encode class ids as a paletted PNG (index = class id, palette = legend colours).

    Raises:
        ValueError: an id without a class (a source bug: the PNG would be invalid).
    """
    klasses = palette(layer)
    arr = np.ascontiguousarray(ids, np.uint8)
    if arr.size and int(arr.max()) >= len(klasses):
        raise ValueError(f"{layer} id {int(arr.max())} has no class (ids 0..{len(klasses) - 1})")
    im = Image.frombytes("P", (arr.shape[1], arr.shape[0]), arr.tobytes())
    im.putpalette([c for k in klasses for c in k.color], rawmode="RGB")
    buf = io.BytesIO()
    if layer == "water":  # land transparent: the layer overlays imagery
        alpha = bytes(0 if k.id == C.LAND else 255 for k in klasses)
        im.save(buf, "PNG", compress_level=6, transparency=alpha)
    else:
        im.save(buf, "PNG", compress_level=6)
    return buf.getvalue()


def encode_layer(arr: np.ndarray, layer: str, encoding: str) -> bytes:
    """Encode one layer tile as PNG bytes (deterministic for a Pillow version)."""
    if layer == "elevation":
        buf = io.BytesIO()
        Image.fromarray(encode_height(arr, encoding), "RGB").save(buf, "PNG", compress_level=6)
        return buf.getvalue()
    return encode_classes(arr, layer)


def legend(layer: str) -> list[dict[str, object]]:
    """Return the legend of a class layer: id, name, ``#rrggbb`` colour (and transparency)."""
    out: list[dict[str, object]] = []
    for k in palette(layer):
        item: dict[str, object] = {"id": k.id, "name": k.name, "color": "#" + bytes(k.color).hex()}
        if layer == "water" and k.id == C.LAND:
            item["transparent"] = True
        out.append(item)
    return out


def _geography(world: World, name: str, layer: str) -> Geography:
    """Return the world's geography, after checking the layer is one served.

    Raises:
        UnknownLayer: not a served layer, or the world has no geography.
    """
    if layer not in SERVED and layer != FEATURES:
        raise UnknownLayer(f"unknown layer {layer[:60]!r}; layers: {', '.join(SERVED)}")
    geo = world.geography
    if geo is None:
        raise UnknownLayer(f'world {name!r} has no geography layers ([geography] kind = "none")')
    return geo


def _encoding(request: Request, layer: str) -> str:
    value = request.query_params.get("encoding")
    if value is None:
        return ENCODINGS[0] if layer == "elevation" else "paletted"
    if layer == FEATURES:
        raise InvalidTile("?encoding= applies to the elevation layer only, not 'features'")
    if layer != "elevation":
        raise InvalidTile(f"?encoding= applies to the elevation layer only, not {layer!r}")
    if value not in ENCODINGS:
        raise InvalidTile(f"encoding must be one of {', '.join(ENCODINGS)}, got {value[:20]!r}")
    return value


def world_layers(root: str, name: str, world: World) -> list[dict[str, object]]:
    """Return the layers of a world for ``/worlds``: name, units, description and URLs."""
    if world.geography is None:
        return []
    return [
        {
            "name": layer,
            "description": LAYERS[layer].description,
            "units": LAYERS[layer].units,
            "tile_url": f"{root}/tiles/{name}/layers/{layer}/{{z}}/{{x}}/{{y}}.png",
            "tilejson": f"{root}/tiles/{name}/layers/{layer}/tilejson.json",
            **({"encoding": "terrarium"} if layer == "elevation" else {}),
            **(
                {"features_url": f"{root}/tiles/{name}/layers/{FEATURES}/{{z}}/{{x}}/{{y}}.geojson"}
                if layer == "layout"
                else {}
            ),
        }
        for layer in SERVED
    ]


async def layer_tile(request: Request) -> Response:
    """``/tiles/{world}/layers/{layer}/{z}/{x}/{y}.png[?encoding=terrarium|mapbox]``."""
    from .routes import _world  # the imagery routes' world lookup (readiness, 404 naming)

    p = request.path_params
    layer, y_name = p["layer"], p["y"]
    vector = layer == FEATURES
    if vector:  # the layout's objects: {y}.geojson, validated as the PNG tile of that name
        if not y_name.endswith(".geojson"):
            raise InvalidTile("feature tiles are served as GeoJSON only: {y}.geojson")
        y_name = y_name.removesuffix(".geojson")
        if not y_name.isdigit():
            raise InvalidTile(f"y must be an integer, got {y_name[:20]!r}")
        y_name += ".png"
    addr = parse_tile(p["world"], p["z"], p["x"], y_name)
    if addr.fmt.value != "png" or addr.scale != 1:
        raise InvalidTile("layer tiles are served as 256-px PNG only: {y}.png")
    world = _world(request, addr.world)
    geo = _geography(world, addr.world, layer)
    encoding = _encoding(request, layer)
    t = world.address(addr.z, addr.x, addr.y)
    z, x, y = t.z, t.x, t.y
    suffix = "" if encoding in ("terrarium", "paletted") else f".{encoding}"
    ext = "geojson" if vector else "png"
    media = "application/geo+json" if vector else "image/png"
    key = f"{world.content_hash}/l/{geo.digest}/{layer}/{z}/{x}/{y}{suffix}.{ext}"
    headers = tile_headers(
        key,
        world.content_hash,
        world.resolution(z, y),
        request.query_params.get("v"),
        request.app.state.settings.max_age,
    )
    headers["X-Orbis-Encoding"] = encoding
    if is_not_modified(request.headers, headers["ETag"]):
        return not_modified(headers)
    state = request.app.state
    body = state.hot.get(key)
    if body is None:
        body = unpack(await run_in_threadpool(state.store.get, key))
        if body is not None:
            state.hot.set(key, body)
    if body is not None:
        state.prom.layer_cache_hits.labels(layer=layer).inc()
        return Response(body, media_type=media, headers=headers)

    def make() -> bytes:
        if vector:
            from generator.geography.layout import layout_of

            doc = layout_of(geo).features(z, x, y, world.config.tile_size)
            return json.dumps(doc, separators=(",", ":")).encode()
        arr = geo.tile(layer, z, x, y, world.config.tile_size)
        return encode_layer(arr, layer, encoding)

    async def produce(mark_started, cancel) -> bytes:
        mark_started()  # no generation slot: layers are cheap and never wait behind imagery
        data = await run_in_threadpool(make)
        await run_in_threadpool(state.store.set, key, pack(data))
        state.hot.set(key, data)
        state.prom.layer_tiles_generated.labels(layer=layer).inc()
        return data

    try:
        body = await state.flights.run(key, produce, request)
    except ClientGone:
        return Response(status_code=499)
    return Response(body, media_type=media, headers=headers)


async def layer_tilejson(request: Request) -> Response:
    """``/tiles/{world}/layers/{layer}/tilejson.json`` (TileJSON 3.0.0, plus a legend)."""
    from .routes import _world

    name, layer = request.path_params["world"], request.path_params["layer"]
    world = _world(request, name)
    _geography(world, name, layer)
    encoding = _encoding(request, layer)
    base = str(request.base_url).rstrip("/")
    c = world.config
    query = "?encoding=mapbox" if encoding == "mapbox" else ""
    ext = "geojson" if layer == FEATURES else "png"
    info = LAYERS["layout" if layer == FEATURES else layer]
    doc: dict[str, object] = {
        "tilejson": "3.0.0",
        "name": f"{c.title or name} · {layer}",
        "description": info.description,
        "version": "1.0.0",
        "attribution": c.attribution,
        "scheme": "xyz",
        "tiles": [f"{base}/tiles/{name}/layers/{layer}/{{z}}/{{x}}/{{y}}.{ext}{query}"],
        "minzoom": 0,
        "maxzoom": c.max_zoom,
        "bounds": BOUNDS,
        "center": [c.center[1], c.center[0], c.center[2]],
        "tileSize": c.tile_size,
        "units": info.units,
    }
    if layer == "elevation":
        doc["encoding"] = encoding
    elif layer == FEATURES:
        doc.update(format="geojson", description="layout objects (RFC 7946)", kinds=list(LC.KINDS))
        del doc["units"]
    else:
        doc["legend"] = legend(layer)
    return JSONResponse(doc, headers={"Access-Control-Allow-Origin": "*"})
