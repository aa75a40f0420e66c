"""TileMatrixSets served by orbis: WebMercatorQuad (native) and WorldCRS84Quad (reprojected).

The pyramid is generated in Web Mercator only. A WorldCRS84Quad tile is resampled (bilinear)
from the Web Mercator level whose equatorial resolution matches it (zoom + 1), so both grids
show the same, single generated world.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import morecantile
import numpy as np
from pyproj import Transformer
from scipy.ndimage import map_coordinates

from generator import tiles
from generator.errors import InvalidTile
from generator.planner import Rect
from generator.world import World

SUPPORTED = ("WebMercatorQuad", "WorldCRS84Quad")


@lru_cache(maxsize=len(SUPPORTED))
def get(tms_id: str) -> morecantile.TileMatrixSet:
    """Return a supported TileMatrixSet (fetched once).

    Raises:
        InvalidTile: unknown identifier (the message lists the supported ones).
    """
    if tms_id not in SUPPORTED:
        raise InvalidTile(
            f"unknown tile matrix set {tms_id[:60]!r} (supported: {', '.join(SUPPORTED)})"
        )
    return morecantile.tms.get(tms_id)


@lru_cache(maxsize=1)
def _to_mercator() -> Transformer:
    return Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


def crs84_tile(
    world: World, z: int, x: int, y: int, cancel: threading.Event | None = None
) -> np.ndarray:
    """Return a WorldCRS84Quad tile of a world, resampled from its Web Mercator pyramid."""
    size = world.config.tile_size
    b = get("WorldCRS84Quad").bounds(morecantile.Tile(x, y, z))
    lon = b.left + (np.arange(size) + 0.5) * (b.right - b.left) / size
    lat = b.top - (np.arange(size) + 0.5) * (b.top - b.bottom) / size
    lat = np.clip(lat, -85.0511, 85.0511)
    zm = min(z + 1, world.max_zoom)
    mx, my = _to_mercator().transform(lon, lat)
    mx, my = np.asarray(mx), np.asarray(my)
    origin = tiles.tms().xy_bounds(0, 0, 0)
    px_size = (origin.right - origin.left) / ((1 << zm) * size)
    gx = (mx - origin.left) / px_size - 0.5
    gy = (origin.top - my) / px_size - 0.5
    x0, x1 = int(np.floor(gx.min())), int(np.floor(gx.max())) + 2
    y0, y1 = int(np.floor(gy.min())), int(np.floor(gy.max())) + 2
    region = world.pyramid.read_region(zm, Rect(y0, x0, y1 - y0, x1 - x0), cancel)
    rows, cols = np.meshgrid(gy - y0, gx - x0, indexing="ij")
    out = np.stack(
        [map_coordinates(region[c], [rows, cols], order=1, mode="nearest") for c in range(3)],
        axis=-1,
    )
    return np.clip(np.rint((out + 1.0) * 127.5), 0, 255).astype(np.uint8)
