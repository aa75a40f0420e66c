"""Pixel grids of a zoom level in the units the geography layers need.

Every layer is evaluated on a :class:`~generator.planner.Rect` of a zoom level's global pixel grid
(256-px tiles, WebMercatorQuad), x wrapping modulo the grid width and rows past the poles clamped,
so the same pixel always gets the same value whichever tile or window asks. Web Mercator is
separable: a pixel column has one longitude and a pixel row one latitude, so these helpers return
1-D arrays; the tile bounds come from morecantile and the inverse projection from pyproj (never
re-derived by hand).
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache

import numpy as np
from pyproj import Transformer

from .. import tiles
from ..planner import Rect

#: Half the Web Mercator world width in metres (morecantile's WebMercatorQuad bounds).
HALF_WORLD = -tiles.tms().xy_bounds(0, 0, 0).left

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _transformers() -> tuple[Transformer, Transformer]:
    with _lock:
        to_ll = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
        to_merc = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    return to_ll, to_merc


def tile_rect(z: int, x: int, y: int, size: int = tiles.TILE_SIZE, margin: int = 0) -> Rect:
    """Return the pixel rect of tile (z, x, y), grown by ``margin`` px on every side."""
    return Rect(y * size - margin, x * size - margin, size + 2 * margin, size + 2 * margin)


def grid_width(z: int, size: int = tiles.TILE_SIZE) -> int:
    """Return the width (= height) of zoom z's pixel grid."""
    return (1 << z) * size


def pixel_size(z: int) -> float:
    """Return the projected (equatorial) pixel size in metres at zoom z."""
    return tiles.equator_resolution(z)


def mercator_x(z: int, rect: Rect) -> np.ndarray:
    """Return the Web Mercator x (m) of the rect's pixel-centre columns, wrapped to the world."""
    cols = (np.arange(rect.x0, rect.x0 + rect.w) % grid_width(z)) + 0.5
    return -HALF_WORLD + cols * pixel_size(z)


def mercator_y(z: int, rect: Rect) -> np.ndarray:
    """Return the Web Mercator y (m) of the rect's pixel-centre rows (rows clamped to the grid)."""
    rows = np.clip(np.arange(rect.y0, rect.y0 + rect.h), 0, grid_width(z) - 1) + 0.5
    return HALF_WORLD - rows * pixel_size(z)


def lonlat(z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
    """Return (lon of each column, lat of each row) in degrees, float64."""
    to_ll, _ = _transformers()
    mx, my = mercator_x(z, rect), mercator_y(z, rect)
    lon, _ = to_ll.transform(mx, np.zeros_like(mx))
    _, lat = to_ll.transform(np.zeros_like(my), my)
    return np.asarray(lon), np.asarray(lat)


def to_mercator(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return Web Mercator (x, y) metres of lon/lat degrees (pyproj; lat clipped to ±85.06)."""
    _, to_merc = _transformers()
    lat = np.clip(lat, -85.0511287798, 85.0511287798)
    x, y = to_merc.transform(lon, lat)
    return np.asarray(x), np.asarray(y)


def to_pixel(z: int, mx: np.ndarray, my: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return fractional global pixel (col, row) of Web Mercator metres at zoom z (no wrap)."""
    s = pixel_size(z)
    return (np.asarray(mx) + HALF_WORLD) / s, (HALF_WORLD - np.asarray(my)) / s


def ground_mpp(z: int, rect: Rect) -> np.ndarray:
    """Return the ground metres per pixel of each row (projected size × cos latitude)."""
    _, lat = lonlat(z, rect)
    return pixel_size(z) * np.cos(np.radians(lat))


def lonlat_bounds(z: int, rect: Rect) -> tuple[float, float, float, float]:
    """Return (W, S, E, N) of the rect's outer pixel edges; W > E when it crosses ±180°."""
    to_ll, _ = _transformers()
    s = pixel_size(z)
    w = grid_width(z)
    x0 = -HALF_WORLD + (rect.x0 % w) * s
    x1 = x0 + rect.w * s
    y_top = HALF_WORLD - max(rect.y0, 0) * s
    y_bot = HALF_WORLD - min(rect.y0 + rect.h, w) * s
    west, north = to_ll.transform(x0, y_top)
    east, south = to_ll.transform(x1 - (2 * HALF_WORLD if x1 > HALF_WORLD else 0.0), y_bot)
    return float(west), float(south), float(east), float(north)


def metres_per_degree_lat() -> float:
    """Return the mean metres per degree of latitude on the WGS84 sphere used by Web Mercator."""
    return math.pi * 6378137.0 / 180.0
