"""The OpenAPI 3.1 description of the HTTP API (served at ``/openapi.json``).

Written out rather than generated: orbis has a handful of endpoints whose path segments are
validated by hand (``params.py``), and a plain document is easier to review than docstring YAML.
"""

from __future__ import annotations

from typing import Any

from .tms import SUPPORTED

_ERROR = {
    "description": "bad request, with a message naming the problem",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"detail": {"type": "string"}},
                "required": ["detail"],
            }
        }
    },
}
_503 = {
    "description": "overloaded, still generating, or still loading; see Retry-After",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
}
_IMAGE = {
    "description": "the tile",
    "headers": {
        "ETag": {"schema": {"type": "string"}, "description": "strong; bytes depend only on it"},
        "X-Orbis-Resolution": {"schema": {"type": "number"}, "description": "ground m/px"},
        "X-Orbis-World-Version": {"schema": {"type": "string"}},
    },
    "content": {
        f"image/{t}": {"schema": {"type": "string", "format": "binary"}}
        for t in ("png", "jpeg", "webp")
    },
}


def _path_param(name: str, description: str, pattern: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if pattern:
        schema["pattern"] = pattern
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
    }


_TILE_PARAMS = [
    _path_param("world", "world name (config/worlds/NAME.toml)", "^[A-Za-z0-9_-]+$"),
    {
        "name": "z",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 0, "maximum": 30},
        "description": "zoom, 0..the world's max_zoom",
    },
    {
        "name": "x",
        "in": "path",
        "required": True,
        # what params.parse_tile takes: up to 10 digits (the int32 bounds written before let
        # schemathesis find x = -2^31 - 1 "accepted although invalid")
        "schema": {"type": "integer", "minimum": -(10**10 - 1), "maximum": 10**10 - 1},
        "description": "column; taken modulo 2^z (the world wraps around)",
    },
    _path_param("y", "row and format: Y.png, Y@2x.jpg, …", r"^[0-9]+(@2x)?\.(png|jpg|jpeg|webp)$"),
    {
        "name": "tilesize",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["256", "512"]},
    },
    {
        "name": "v",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "the world version; when it matches, the tile is cached as immutable",
    },
]


_LAYER_PARAM = {
    "name": "layer",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": ["elevation", "landcover", "water", "layout"]},
    "description": "geography layer (a world with [geography] kind = none has none: 404)",
}
_ENCODING_PARAM = {
    "name": "encoding",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["terrarium", "mapbox"]},
    "description": "elevation only (400 on other layers): Terrarium (default) or Terrain-RGB",
}
_LAYER_PNG = {
    "description": "the layer tile: RGB (elevation) or paletted (class layers) PNG",
    "headers": {
        "ETag": {"schema": {"type": "string"}, "description": "strong; bytes depend only on it"},
        "X-Orbis-Encoding": {"schema": {"type": "string"}},
        "X-Orbis-World-Version": {"schema": {"type": "string"}},
    },
    "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
}


def _json(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {}}}}


def document(worlds: dict[str, int] | None = None) -> dict[str, Any]:
    """Return the OpenAPI document; ``worlds`` (loaded name → max zoom) become the world enum
    and the zoom bound, so clients and fuzzers (schemathesis, in the tests) learn what exists."""
    world_param, z_param = _TILE_PARAMS[0], _TILE_PARAMS[1]
    if worlds:
        world_param = {**world_param, "schema": {"type": "string", "enum": sorted(worlds)}}
        top = max(worlds.values())
        z_param = {**z_param, "schema": {"type": "integer", "minimum": 0, "maximum": top}}
    tile_params = [world_param, z_param, *_TILE_PARAMS[2:]]
    tile_responses = {
        "200": _IMAGE,
        "304": {"description": "not modified"},
        "400": _ERROR,
        "404": _ERROR,
        "503": _503,
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "orbis",
            "version": "0.1.0",
            "description": "Tiles of an unbounded, generated Earth.",
        },
        "paths": {
            "/tiles/{world}/{z}/{x}/{y}": {
                "get": {
                    "summary": "a Web Mercator tile",
                    "operationId": "tile",
                    "parameters": tile_params,
                    "responses": tile_responses,
                }
            },
            "/tiles/{world}/{tms}/{z}/{x}/{y}": {
                "get": {
                    "summary": "a tile on a named TileMatrixSet",
                    "operationId": "tms_tile",
                    "parameters": [
                        world_param,
                        {
                            "name": "tms",
                            "in": "path",
                            "required": True,
                            "schema": {
                                "type": "string",
                                "enum": list(SUPPORTED),
                            },
                        },
                        *tile_params[1:],
                    ],
                    "responses": tile_responses,
                }
            },
            "/tiles/{world}/layers/{layer}/{z}/{x}/{y}": {
                "get": {
                    "summary": "a geography layer tile (elevation, land cover, water)",
                    "operationId": "layer_tile",
                    "parameters": [
                        world_param,
                        _LAYER_PARAM,
                        z_param,
                        tile_params[2],
                        _path_param("y", "row: Y.png", r"^[0-9]+\.png$"),
                        _ENCODING_PARAM,
                        tile_params[5],
                    ],
                    "responses": {
                        "200": _LAYER_PNG,
                        "304": {"description": "not modified"},
                        "400": _ERROR,
                        "404": _ERROR,
                        "503": _503,
                    },
                }
            },
            "/tiles/{world}/layers/features/{z}/{x}/{y}": {
                "get": {
                    "summary": "the layout's objects in a tile: RFC 7946 GeoJSON (lon/lat)",
                    "operationId": "layout_features",
                    "parameters": [
                        world_param,
                        z_param,
                        tile_params[2],
                        _path_param("y", "row: Y.geojson", r"^[0-9]+\.geojson$"),
                        tile_params[5],
                    ],
                    "responses": {
                        "200": {
                            "description": "FeatureCollection, a kind per feature",
                            "content": {"application/geo+json": {"schema": {}}},
                        },
                        "304": {"description": "not modified"},
                        "400": _ERROR,
                        "404": _ERROR,
                        "503": _503,
                    },
                }
            },
            "/tiles/{world}/layers/{layer}/tilejson.json": {
                "get": {
                    "summary": "TileJSON 3.0.0 of a geography layer (legend of class layers)",
                    "operationId": "layer_tilejson",
                    "parameters": [world_param, _LAYER_PARAM, _ENCODING_PARAM],
                    "responses": {
                        "200": _json("TileJSON"),
                        "400": _ERROR,
                        "404": _ERROR,
                        "503": _503,
                    },
                }
            },
            "/tiles/{world}/tilejson.json": {
                "get": {
                    "summary": "TileJSON 3.0.0",
                    "operationId": "tilejson",
                    "parameters": [world_param],
                    "responses": {"200": _json("TileJSON"), "404": _ERROR, "503": _503},
                }
            },
            "/tiles/{world}/WMTSCapabilities.xml": {
                "get": {
                    "summary": "WMTS 1.0.0 capabilities",
                    "operationId": "wmts",
                    "parameters": [world_param],
                    "responses": {"200": {"description": "XML"}, "404": _ERROR, "503": _503},
                }
            },
            "/tileMatrixSets": {
                "get": {
                    "summary": "supported TileMatrixSets",
                    "operationId": "tile_matrix_sets",
                    "responses": {"200": _json("list")},
                }
            },
            "/tileMatrixSets/{tms}": {
                "get": {
                    "summary": "a TileMatrixSet",
                    "operationId": "tile_matrix_set",
                    "parameters": [
                        {
                            "name": "tms",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": list(SUPPORTED)},
                        }
                    ],
                    "responses": {"200": _json("OGC TileMatrixSet"), "400": _ERROR},
                }
            },
            "/3d": {
                "get": {
                    "summary": "the MapLibre 3D view (HTML)",
                    "operationId": "terrain_viewer",
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
                }
            },
            "/worlds": {
                "get": {
                    "summary": "the worlds",
                    "operationId": "worlds",
                    "responses": {"200": _json("list of worlds"), "503": _503},
                }
            },
            "/health": {
                "get": {
                    "summary": "liveness and readiness",
                    "operationId": "health",
                    "responses": {"200": _json("ok"), "503": _503},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "metrics",
                    "responses": {"200": {"description": "text exposition"}},
                }
            },
        },
    }
