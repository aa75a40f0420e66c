"""Classes of the ``layout`` layer: what the structure of the land is at a pixel.

The ids are the paletted PNG indices of ``/tiles/{world}/layers/layout/…`` and the first of the
layout's conditioning channels, so they never change meaning; a new class takes a new id. Later
classes are drawn over earlier ones (a road over a field, a bridge over water), so the id order
is also the drawing order of :mod:`.layout` (``AVENUE``, added later, is drawn before the
network roads).
"""

from __future__ import annotations

from .classes import Klass

NONE = 0
WATER = 1
WOODLAND = 2
FIELD = 3
MEADOW = 4
ORCHARD = 5
PIVOT = 6
TERRACE = 7
HEDGE = 8
SETTLEMENT = 9
STREET = 10
BUILDING = 11
TRACK = 12
ROAD = 13
MAIN_ROAD = 14
MOTORWAY = 15
RAIL = 16
BRIDGE = 17
AVENUE = 18

LAYOUT: tuple[Klass, ...] = (
    Klass(NONE, "none", (200, 200, 190)),
    Klass(WATER, "water", (60, 110, 190)),
    Klass(WOODLAND, "woodland", (50, 120, 60)),
    Klass(FIELD, "field", (225, 205, 120)),
    Klass(MEADOW, "meadow", (160, 205, 110)),
    Klass(ORCHARD, "orchard", (120, 170, 80)),
    Klass(PIVOT, "centre-pivot field", (190, 215, 90)),
    Klass(TERRACE, "terrace", (195, 170, 110)),
    Klass(HEDGE, "hedge", (30, 85, 40)),
    Klass(SETTLEMENT, "settlement ground", (215, 180, 170)),
    Klass(STREET, "street", (250, 250, 250)),
    Klass(BUILDING, "building", (170, 60, 60)),
    Klass(TRACK, "track", (150, 120, 80)),
    Klass(ROAD, "road", (255, 255, 255)),
    Klass(MAIN_ROAD, "main road", (250, 210, 90)),
    Klass(MOTORWAY, "motorway", (230, 110, 60)),
    Klass(RAIL, "rail", (70, 70, 80)),
    Klass(BRIDGE, "bridge", (255, 120, 200)),
    Klass(AVENUE, "avenue", (255, 240, 200)),
)

#: classes that are roads or rail (the road-mask channel)
ROADS = frozenset({STREET, TRACK, ROAD, MAIN_ROAD, MOTORWAY, RAIL, BRIDGE, AVENUE})
#: the network: roads and rail that are not clipped by the land cover (streets and avenues are
#: drawn on settlement ground only, so they move with the urban land cover's edges)
NETWORK = frozenset({TRACK, ROAD, MAIN_ROAD, MOTORWAY, RAIL})
#: classes that are field parcels (their boundaries are the edge channel's farmland edges)
PARCELS = frozenset({FIELD, MEADOW, ORCHARD, PIVOT, TERRACE})

#: GeoJSON ``kind`` of each vector feature family (``/layers/features/…``)
KINDS = (
    "motorway",
    "main_road",
    "road",
    "track",
    "street",
    "rail",
    "field",
    "hedge",
    "settlement",
    "block",
    "building",
)
