"""Land-cover classes and water kinds shared by every world, with the palettes they are served in.

The class ids are part of the served bytes (paletted PNG indices) and of the model's conditioning
channels, so they never change meaning; a new class takes a new id.
"""

from __future__ import annotations

from typing import NamedTuple


class Klass(NamedTuple):
    """One land-cover class: id (palette index), name and legend colour (RGB)."""

    id: int
    name: str
    color: tuple[int, int, int]


WATER = 0
ICE = 1
ROCK = 2
DESERT = 3
TUNDRA = 4
GRASSLAND = 5
SHRUBLAND = 6
CROPLAND = 7
BROADLEAF = 8
NEEDLELEAF = 9
TROPICAL = 10
WETLAND = 11
URBAN = 12

LANDCOVER: tuple[Klass, ...] = (
    Klass(WATER, "water", (40, 90, 160)),
    Klass(ICE, "ice and snow", (240, 244, 250)),
    Klass(ROCK, "bare rock", (130, 120, 110)),
    Klass(DESERT, "desert and sand", (222, 196, 140)),
    Klass(TUNDRA, "tundra", (170, 175, 140)),
    Klass(GRASSLAND, "grassland", (170, 200, 100)),
    Klass(SHRUBLAND, "shrubland", (180, 170, 100)),
    Klass(CROPLAND, "cropland", (230, 220, 110)),
    Klass(BROADLEAF, "broadleaf forest", (60, 140, 50)),
    Klass(NEEDLELEAF, "needleleaf forest", (30, 95, 60)),
    Klass(TROPICAL, "tropical forest", (20, 110, 30)),
    Klass(WETLAND, "wetland", (90, 160, 150)),
    Klass(URBAN, "urban", (200, 60, 60)),
)

# Water kinds of the ``water`` layer (its paletted PNG indices).
LAND = 0
OCEAN = 1
LAKE = 2
RIVER = 3

WATER_KINDS: tuple[Klass, ...] = (
    Klass(LAND, "land", (0, 0, 0)),
    Klass(OCEAN, "ocean", (20, 60, 140)),
    Klass(LAKE, "lake", (60, 120, 200)),
    Klass(RIVER, "river", (90, 170, 230)),
)
