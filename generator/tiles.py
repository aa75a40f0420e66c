"""Tile conventions of orbis over morecantile's WebMercatorQuad.

The grid maths (bounds, parents, children, resolution) come from morecantile; this module only
adds what an unbounded, x-wrapping world needs and morecantile deliberately does not do:
x modulo 2**z (the world is continuous across the antimeridian), neighbours that wrap, and the
ground resolution at the tile's own latitude (the model is told the real m/px, so z14 near the pole
and z14 at the equator differ).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import morecantile

from .errors import InvalidTile, ZoomOutOfRange

TILE_SIZE = 256
#: Web Mercator ground resolution at z0 on the equator for 256 px tiles (m/px).
Z0_RESOLUTION = 2 * math.pi * 6378137.0 / TILE_SIZE


class Tile(NamedTuple):
    """A tile address; equal to morecantile's and mercantile's tuples.

    Examples:
        >>> Tile(3, 2, 1)  # x=3, y=2, z=1 is invalid; Tile(x, y, z) order as in morecantile
        Tile(x=3, y=2, z=1)
    """

    x: int
    y: int
    z: int


@lru_cache(maxsize=1)
def tms() -> morecantile.TileMatrixSet:
    """Return WebMercatorQuad, fetched once (``TileMatrixSets.get`` deep-copies on every call)."""
    return morecantile.tms.get("WebMercatorQuad")


def validate(
    z: int, x: int, y: int, max_zoom: int = 30, grid: morecantile.TileMatrixSet | None = None
) -> Tile:
    """Return the canonical tile for an address, wrapping x; raise on anything else.

    ``grid`` names another TileMatrixSet than the native WebMercatorQuad (e.g. WorldCRS84Quad,
    two columns at zoom 0): its own zoom range and matrix sizes apply, from morecantile.

    Raises:
        InvalidTile: z < 0, or y outside the grid's rows at zoom z.
        ZoomOutOfRange: z above max_zoom (or the grid's deepest level).
    """
    if z < 0:
        raise InvalidTile(f"zoom must be >= 0, got {z}")
    top = max_zoom if grid is None else min(max_zoom, grid.maxzoom)
    if z > top:
        on = "" if grid is None else f" on {grid.id}"
        raise ZoomOutOfRange(f"zoom {z} is above this world's maximum zoom {top}{on}")
    if grid is None:
        width = height = 1 << z
    else:
        matrix = grid.matrix(z)
        width, height = matrix.matrixWidth, matrix.matrixHeight
    if not 0 <= y < height:
        raise InvalidTile(f"y must be in 0..{height - 1} at zoom {z}, got {y}")
    return Tile(x % width, y, z)


def wrap(tile: Tile) -> Tile:
    """Return the tile with x taken modulo 2**z; y is left alone (callers clamp or reject)."""
    return Tile(tile.x % (1 << tile.z), tile.y, tile.z)


def parent(tile: Tile) -> Tile:
    """Return the parent tile (morecantile's ``parent``)."""
    p = tms().parent(morecantile.Tile(tile.x, tile.y, tile.z))[0]
    return Tile(p.x, p.y, p.z)


def children(tile: Tile) -> dict[tuple[int, int], Tile]:
    """Return the four children indexed by (dx, dy) in {0,1}², not by list position.

    morecantile documents ``children()`` as TL, TR, BR, BL but loops row-major, so position is
    not to be trusted: key them by offset from the top-left child.
    """
    out: dict[tuple[int, int], Tile] = {}
    for c in tms().children(morecantile.Tile(tile.x, tile.y, tile.z)):
        out[(c.x - 2 * tile.x, c.y - 2 * tile.y)] = Tile(c.x, c.y, c.z)
    return out


def neighbors(tile: Tile) -> list[Tile]:
    """Return the up-to-8 neighbours, x wrapped across the antimeridian, rows past a pole dropped.

    morecantile's ``neighbors()`` drops tiles past the antimeridian; orbis's world is continuous.
    """
    n = 1 << tile.z
    out = []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if (dx, dy) == (0, 0) or not 0 <= tile.y + dy < n:
                continue
            t = Tile((tile.x + dx) % n, tile.y + dy, tile.z)
            if t != tile and t not in out:
                out.append(t)
    return out


def latitude_of_row(z: int, pixel_row: float, tile_size: int = TILE_SIZE) -> float:
    """Return the latitude (degrees) of a global pixel row at zoom z (via morecantile's bounds)."""
    n = 1 << z
    tile_row = min(max(pixel_row / tile_size, 0.0), float(n))
    ty = min(int(tile_row), n - 1)
    b = tms().xy_bounds(morecantile.Tile(0, ty, z))
    frac = tile_row - ty
    ymerc = b.top + (b.bottom - b.top) * frac
    return math.degrees(math.atan(math.sinh(ymerc / 6378137.0)))


@lru_cache(maxsize=65536)
def ground_resolution(z: int, y: int, tile_size: int = TILE_SIZE) -> float:
    """Return the ground resolution (m/px) at the centre latitude of tile row y at zoom z.

    ``tms().matrix(z).cellSize`` is the projected (equatorial) size; the ground size is that times
    cos(latitude).
    """
    lat = latitude_of_row(z, (y + 0.5) * tile_size, tile_size)
    cell = tms().matrix(z).cellSize * (TILE_SIZE / tile_size)
    return cell * math.cos(math.radians(lat))


def equator_resolution(z: int) -> float:
    """Return the projected cell size at zoom z (ground m/px on the equator)."""
    return tms().matrix(z).cellSize


def parse_address(text: str) -> Tile:
    """Parse ``Z/X/Y`` into a validated tile (x wrapped).

    Raises:
        InvalidTile: the text is not three integers separated by '/'.
    """
    parts = text.strip().split("/")
    if len(parts) != 3:
        raise InvalidTile(f"tile address must be Z/X/Y, got {text!r}")
    try:
        z, x, y = (int(p) for p in parts)
    except ValueError:
        raise InvalidTile(f"tile address must be three integers Z/X/Y, got {text!r}") from None
    return validate(z, x, y)
