"""PMTiles v3 through Protomaps' ``pmtiles`` library (its ``Writer`` and header fields).

Tiles arrive in tile-id order (see ``archive_tiles``), so the directory is clustered and the
library run-length encodes identical neighbours (open ocean) into one stored tile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from .. import tiles

TILE_TYPES = {"png": TileType.PNG, "jpg": TileType.JPEG, "webp": TileType.WEBP}


def _e7(deg: float) -> int:
    return round(deg * 10_000_000)


def write_pmtiles(
    path: Path,
    items: Iterable[tuple[tiles.Tile, bytes]],
    *,
    fmt: str,
    bounds: tuple[float, float, float, float],
    center: tuple[float, float, int],
    metadata: Mapping[str, object],
) -> int:
    """Write a PMTiles v3 archive at ``path`` and return the number of tiles.

    ``bounds`` is (W, S, E, N) and ``center`` (lon, lat, zoom); min/max zoom are taken from the
    tiles by the library.
    """
    count = 0
    with open(path, "wb") as f:
        writer = Writer(f)
        try:
            for t, data in items:
                writer.write_tile(zxy_to_tileid(t.z, t.x, t.y), data)
                count += 1
        except BaseException:
            writer.tile_f.close()  # the library's spool file; finalize() closes it otherwise
            raise
        w, s, e, n = bounds
        header = {
            "tile_type": TILE_TYPES[fmt],
            "tile_compression": Compression.NONE,  # PNG/JPEG/WebP are compressed already
            "min_lon_e7": _e7(w),
            "min_lat_e7": _e7(s),
            "max_lon_e7": _e7(e),
            "max_lat_e7": _e7(n),
            "center_zoom": center[2],
            "center_lon_e7": _e7(center[0]),
            "center_lat_e7": _e7(center[1]),
        }
        writer.finalize(header, dict(metadata))
    return count
