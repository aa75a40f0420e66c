"""Encoded tiles: the bytes the server sends, under the one key everybody reads them by.

The tile route (``tileserver.routes``) caches the PNG/JPEG/WebP bytes of every tile it sends
under :func:`encoded_key`; ``orbis seed --formats`` writes them under the same key, so a seeded
tile is answered with no generation and no encoding, and ``orbis export`` reads them back
instead of encoding again. The key starts with the world's content hash (a new version never
reads an old tile), then ``e/`` (the pyramid's own keys are ``t/`` and ``w/``), the grid when it
is not WebMercatorQuad, the address, the scale and the format.

Values are framed (:func:`generator.store.pack`) like every cached value, so a corrupt entry is
a miss and is made again.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from .formats import ImageFormat
from .store import Store, pack, unpack
from .tiles import Tile

if TYPE_CHECKING:
    from .world import World

#: the grid whose keys carry no grid segment (the server's default)
DEFAULT_GRID = "WebMercatorQuad"


def encoded_key(
    content_hash: str,
    z: int,
    x: int,
    y: int,
    fmt: ImageFormat | str,
    scale: int = 1,
    grid: str = DEFAULT_GRID,
) -> str:
    """Return the cache key of a tile's encoded bytes (``@2x`` is ``scale=2``)."""
    segment = "" if grid == DEFAULT_GRID else f"{grid}/"
    return f"{content_hash}/e/{segment}{z}/{x}/{y}@{scale}.{ImageFormat(fmt).value}"


def pyramid_ready(world: World, z: int, x: int, y: int, scale: int = 1) -> bool:
    """Return True when the pyramid holds the pixels a (WebMercatorQuad) tile is made of:
    encoding it then costs no model or pyramid work (``orbis_tiles_generated_total``)."""
    pyr = world.pyramid
    if scale == 1:
        return pyr.is_cached(Tile(x, y, z))
    k = scale.bit_length() - 1  # @2x: the 2×2 children
    return all(
        pyr.is_cached(Tile((x << k) + i, (y << k) + j, z + k))
        for j in range(scale)
        for i in range(scale)
    )


def render_counted(
    world: World, z: int, x: int, y: int, scale: int = 1, cancel: threading.Event | None = None
) -> tuple[np.ndarray, bool]:
    """Return a tile's pixels and whether the pyramid had to make them (not all cached)."""
    made = not pyramid_ready(world, z, x, y, scale)
    return world.render(z, x, y, scale, cancel), made


def cached_encoded(
    world: World, z: int, x: int, y: int, fmt: ImageFormat | str, store: Store | None = None
) -> bytes | None:
    """Return the encoded bytes cached for a tile (scale 1), or None."""
    s = store if store is not None else world.pyramid.store
    return unpack(s.get(encoded_key(world.content_hash, z, x, y, fmt)))


def encoded_tile(
    world: World,
    z: int,
    x: int,
    y: int,
    fmt: ImageFormat | str,
    store: Store | None = None,
) -> tuple[bytes, bool]:
    """Return a tile's encoded bytes (scale 1) and whether they were encoded now.

    Cached bytes are returned as they are; otherwise the tile is rendered (from the pyramid's
    cache or generated), encoded with the server's encoder and cached under the server's key.
    """
    s = store if store is not None else world.pyramid.store
    key = encoded_key(world.content_hash, z, x, y, fmt)
    data = unpack(s.get(key))
    if data is not None:
        return data, False
    data = ImageFormat(fmt).encode_image(world.tile_array(z, x, y))
    s.set(key, pack(data))
    return data, True
