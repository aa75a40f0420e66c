"""Request parsing: path segments arrive as strings and are validated here.

Starlette's ``{z:int}`` convertor matches ``[0-9]+`` only, so ``/tiles/earth/-1/0/0.png`` would be
a bare 404; taking strings and validating them lets every bad address say what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from generator.errors import InvalidTile

from .formats import ImageFormat

_INT = re.compile(r"-?[0-9]{1,10}")
_Y = re.compile(r"(?P<y>-?[0-9]{1,10})(?P<scale>@[0-9]+x)?\.(?P<fmt>[A-Za-z0-9]{1,8})")


@dataclass(frozen=True)
class TileAddress:
    """A parsed tile request (x not yet wrapped, zoom not yet checked against the world)."""

    world: str
    z: int
    x: int
    y: int
    scale: int
    fmt: ImageFormat


def _int(name: str, text: str) -> int:
    if not _INT.fullmatch(text):
        raise InvalidTile(f"{name} must be an integer, got {text[:40]!r}")
    return int(text)


def parse_tile(world: str, z: str, x: str, y_fmt: str) -> TileAddress:
    """Parse ``{z}/{x}/{y}[@2x].{fmt}`` path segments.

    Raises:
        InvalidTile: a segment is not an integer, the suffix or scale is unknown.
    """
    zi, xi = _int("zoom", z), _int("x", x)
    m = _Y.fullmatch(y_fmt)
    if m is None:
        raise InvalidTile(f"tile name must be Y.FORMAT or Y@2x.FORMAT, got {y_fmt[:40]!r}")
    yi = _int("y", m["y"])
    scale = 1
    if m["scale"]:
        scale = int(m["scale"][1:-1])
        if scale not in (1, 2):
            raise InvalidTile(f"scale must be @1x or @2x, got {m['scale']!r}")
    return TileAddress(world, zi, xi, yi, scale, ImageFormat.parse(m["fmt"]))


def parse_tilesize(value: str | None, scale: int) -> int:
    """Combine ``?tilesize=256|512`` with an ``@2x`` suffix into one scale (1 or 2).

    Raises:
        InvalidTile: an unsupported tile size, or one that contradicts the suffix.
    """
    if value is None:
        return scale
    if value not in ("256", "512"):
        raise InvalidTile(f"tilesize must be 256 or 512, got {value[:20]!r}")
    size_scale = 2 if value == "512" else 1
    if scale == 2 and size_scale == 1:
        raise InvalidTile("tilesize=256 contradicts the @2x suffix")
    return size_scale
