"""What every export shares: zoom ranges, the tiles of a box, size limits, atomic files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pmtiles.tile import zxy_to_tileid

from .. import tiles
from ..errors import ExportError
from ..region import Bbox, parse_zooms  # noqa: F401 - the one --zooms parser, re-exported

#: tiles one MBTiles/PMTiles export may hold without ``--force`` (about 600 MB of PNG)
MAX_ARCHIVE_TILES = 10_000
#: source tiles one GeoTIFF may be made from without ``--force``: the image is assembled in
#: memory, and 2,500 tiles are 164 Mpx (about 0.5 GB of RGB, twice that while resampling)
MAX_GEOTIFF_TILES = 2_500


def archive_tiles(bbox: Bbox, zooms: range) -> list[tiles.Tile]:
    """Return the tiles of ``zooms`` that touch ``bbox`` (morecantile's ``tiles``), in PMTiles
    tile-id order: zoom by zoom along a Hilbert curve, so consecutive tiles share windows and
    the PMTiles directory is clustered."""
    found = tiles.tms().tiles(*bbox, zooms=list(zooms))
    out = {tiles.Tile(t.x, t.y, t.z) for t in found}
    return sorted(out, key=lambda t: zxy_to_tileid(t.z, t.x, t.y))


def check_size(count: int, limit: int, what: str, force: bool) -> None:
    """Refuse an export over ``limit`` unless forced.

    Raises:
        ExportError: ``count > limit`` and not ``force``; the message says how to proceed.
    """
    if count > limit and not force:
        raise ExportError(
            f"this export needs {count:,} {what}, over the limit of {limit:,} for one command: "
            "narrow --bbox or --zooms, coarsen --resolution, or pass --force"
        )


def header_bounds(bbox: Bbox) -> tuple[float, float, float, float]:
    """Return bounds for archive metadata: a box across the antimeridian becomes the full width
    in longitude (readers expect west < east)."""
    if bbox.west > bbox.east:
        return (-180.0, bbox.south, 180.0, bbox.north)
    return tuple(bbox)  # type: ignore[return-value]


def center_of(bbox: Bbox) -> tuple[float, float]:
    """Return the (lon, lat) centre of a box, across the antimeridian too."""
    east = bbox.east + 360 if bbox.west > bbox.east else bbox.east
    lon = (bbox.west + east) / 2
    return (lon - 360 if lon > 180 else lon, (bbox.south + bbox.north) / 2)


@contextmanager
def atomic_path(out: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``out`` and rename it to ``out`` when the block succeeds.

    A crash or an error leaves ``out`` as it was (absent, or the previous export) and removes
    the partial file: readers never see a half-written archive.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
