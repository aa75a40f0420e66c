"""The ``earth`` geography: real shores, rivers, relief and climate, refined below their scale.

Composition only: water and rivers come from GSHHS/WDBII (:mod:`.water_earth`,
:mod:`.rivers_earth`), elevation from the packaged relief grid with valleys carved along the
rivers (:mod:`.elevation_earth`), land cover from climate, relief, water and Natural Earth areas
(:mod:`.landcover_earth`).

Elevation and land cover both read the water and river layers of the rect they compute, and the
:class:`~.layers.Geography` facade asks for the same rects again for the ``water``,
``distance`` and ``rivers`` layers; the sources are therefore wrapped in :class:`_Memo`, a
small per-(z, rect) memo, so each is computed once per rect whoever asks first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from ..planner import Rect


def _frozen(value: Any) -> Any:
    """Return a result with its arrays made read-only (it is shared by every later caller)."""
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif isinstance(value, tuple):
        for v in value:
            _frozen(v)
    return value


class _Memo:
    """A source whose ``(z, rect)`` methods keep their last few results (LRU, thread-safe).

    The layers are pure functions of (z, pixel), so a memo can only save time. Results are
    returned read-only and shared, never copied; attributes other than the memoised methods
    (``identity``, ``segments``, …) pass straight through to the wrapped source.
    """

    def __init__(self, source: Any, methods: tuple[str, ...], items: int = 8) -> None:
        self._source = source
        self._methods = frozenset(methods)
        self._items = items
        self._lru: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._methods:
            return getattr(self._source, name)
        fn = getattr(self._source, name)

        def memo(z: int, rect: Rect) -> Any:
            key = (name, z, tuple(rect))
            with self._lock:
                hit = self._lru.get(key)
                if hit is not None:
                    self._lru.move_to_end(key)
                    return hit
            out = _frozen(fn(z, rect))
            with self._lock:
                self._lru[key] = out
                while len(self._lru) > self._items:
                    self._lru.popitem(last=False)
            return out

        return memo

    def peek(self, name: str, z: int, rect: Rect) -> Any:
        """Return the memoised result of ``name(z, rect)`` if it is still kept, else None."""
        with self._lock:
            return self._lru.get((name, z, tuple(rect)))


class EarthGeography:
    """The layers of the ``earth`` world."""

    def __init__(self, seed: int) -> None:
        from .elevation_earth import EarthElevation
        from .landcover_earth import EarthLandcover
        from .rivers_earth import EarthRivers
        from .water_earth import EarthWater

        self.seed = seed
        self._water = _Memo(EarthWater(seed), ("water",))
        self._rivers = _Memo(EarthRivers(seed), ("rivers",))
        self._elevation = EarthElevation(seed, self._rivers, self._water)
        self._landcover = EarthLandcover(seed, self._water, self._rivers, self._elevation)

    @property
    def identity(self) -> dict[str, object]:
        """Return the sources' identities (data digests and versions)."""
        from .streams_earth import STREAMS_VERSION

        return {
            "water": self._water.identity,
            "rivers": self._rivers.identity,
            "streams": STREAMS_VERSION,
            "elevation": self._elevation.identity,
            "landcover": self._landcover.identity,
        }

    def water(self, z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
        """See :class:`~.source.GeographySource` (read-only arrays, shared)."""
        return self._water.water(z, rect)

    def water_kind(self, z: int, rect: Rect) -> np.ndarray:
        """Return the water kind alone, without the shore distance's transform and margin: the
        water tiles and the imagery's water edit need no more (equal to ``water(z, rect)[0]``)."""
        done = self._water.peek("water", z, rect)  # elevation/land cover of this rect had it
        if done is not None:
            return done[0]
        return self._water.kind(z, rect)

    def rivers(self, z: int, rect: Rect) -> np.ndarray:
        """See :class:`~.source.GeographySource` (read-only array, shared)."""
        from .streams_earth import add_streams

        return add_streams(self, z, rect, self._rivers.rivers(z, rect))

    def elevation(self, z: int, rect: Rect) -> np.ndarray:
        """See :class:`~.source.GeographySource`; from the streams' routing zoom on, carved along
        the streams (the streams are routed on the uncarved layer)."""
        from .streams_earth import carve_streams

        return carve_streams(self, z, rect, self._elevation.elevation(z, rect))

    def landcover(self, z: int, rect: Rect) -> np.ndarray:
        """See :class:`~.source.GeographySource`."""
        return self._landcover.landcover(z, rect)

    def sand_albedo(self, z: int, rect: Rect) -> np.ndarray:
        """Return the brightness factor of the dune fields on the rect (1 elsewhere): what the
        imagery's relief shading adds to the dunes' light (``planet`` has none)."""
        return self._elevation.sand_albedo(z, rect)
