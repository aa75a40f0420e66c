"""The world beneath the pixels: water, rivers, elevation and land cover at every zoom.

Layers are pure functions of (world, z, pixel rect) — real where packaged data exists (``earth``:
GSHHS shores, WDBII rivers, a 2′ relief grid, climate classes), procedural where it does not
(``planet``, and below each source's resolution) — continuous across tiles and consistent across
zooms. :class:`Geography` is the one entry point; :mod:`.grid` and :mod:`.fractal` are the shared
pixel-grid and noise helpers of the sources.
"""

from .layers import GEOGRAPHY_VERSION, LAYERS, Geography, LayerInfo, UnknownLayer, make_geography

__all__ = [
    "GEOGRAPHY_VERSION",
    "LAYERS",
    "Geography",
    "LayerInfo",
    "UnknownLayer",
    "make_geography",
]
