"""Users' own imagery as a base: a GeoTIFF or COG (``raster``) or another tile server (``xyz``).

Every source answers the same question, "what are the pixels of tile (z, x, y) of the
WebMercatorQuad grid, and where do they hold data?", for every zoom up to its
:attr:`ImagerySource.native_zoom` (the zoom whose ground resolution matches the data's at its
centre latitude). The world composition (zooms at and above the native zoom reproduce the
source, the cascade below it, a fallback world outside the footprint, feathered across its
edge) is written once against this protocol, so a new kind of source is one small module.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class ImagerySource(Protocol):
    """Real imagery on the WebMercatorQuad grid, read lazily tile by tile."""

    #: the finest zoom the data resolves (tiles at and above it reproduce the source)
    native_zoom: int
    #: pixels per tile side (256)
    tile_size: int

    def identity(self) -> dict[str, object]:
        """Return what decides the source's bytes (hashed into the world's content hash)."""
        ...

    def bounds(self) -> tuple[float, float, float, float]:
        """Return the footprint as lon/lat (west, south, east, north) in degrees."""
        ...

    def read(self, z: int, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
        """Return tile (z, x, y) as (uint8 (S, S, 3) RGB, float32 (S, S) alpha in 0..1).

        Alpha is 0 where the source has no data (outside the footprint, nodata), 1 inside.
        ``z`` is at most :attr:`native_zoom`.

        Raises:
            UpstreamError: an ``xyz`` upstream that failed (never cached).
            ImageInputError: a raster that cannot be read.
        """
        ...
