"""The geography of a world as named layers: what each is, and one place that evaluates them.

:class:`Geography` wraps a :class:`~.source.GeographySource` (``earth`` or ``planet``) and gives
every consumer — the pyramid's parent edit, the HTTP layer routes, ``World.layer`` and exports —
the same values: a layer tile is ``window(name, z, tile_rect)``, cached in-process (layers are
pure functions, so a cache can only save time). ``water`` merges the source's ocean/lake kinds
with its rivers (kind ``RIVER`` where river coverage ≥ 0.5 on land).
"""

from __future__ import annotations

import gc
import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UnknownLayer
from ..planner import Rect
from . import classes
from .grid import tile_rect
from .source import GeographySource

if TYPE_CHECKING:
    from .overrides import Overrides

#: Version of the layer code shared by every source; bump when a change alters layer values.
GEOGRAPHY_VERSION = "2"  # 2: the water edit's local colours on 2×2 parent blocks


@dataclass(frozen=True)
class LayerInfo:
    """What a layer holds."""

    name: str
    dtype: str
    units: str
    description: str


LAYERS: dict[str, LayerInfo] = {
    info.name: info
    for info in (
        LayerInfo("water", "uint8", "class", "land 0, ocean 1, lake 2, river 3"),
        LayerInfo(
            "distance", "float32", "m", "signed ground distance to the shore (+ water, − land)"
        ),
        LayerInfo("rivers", "float32", "fraction", "river water coverage of the pixel, 0..1"),
        LayerInfo("elevation", "float32", "m", "height above sea level (negative below it)"),
        LayerInfo("landcover", "uint8", "class", "land-cover class id (see the legend)"),
        LayerInfo("layout", "uint8", "class", "layout class id: roads, fields, buildings (legend)"),
    )
}


class Geography:
    """The layers of one world: ``window(name, z, rect)`` and ``tile(name, z, x, y)``."""

    def __init__(
        self,
        kind: str,
        source: GeographySource,
        *,
        cache_items: int = 512,
        overrides: Overrides | None = None,
    ) -> None:
        self.kind = kind
        self.source = source
        #: the world's own data and layout parameters (``[[layers.override]]``, ``[layout]``)
        self.overrides = overrides if overrides is not None and not overrides.empty else None
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._cache_items = cache_items
        self._lock = threading.Lock()

    @property
    def identity(self) -> dict[str, object]:
        """Return everything that decides layer values (part of the world's content hash)."""
        from .layout import VERSION as LAYOUT_VERSION

        out: dict[str, object] = {
            "kind": self.kind,
            "version": GEOGRAPHY_VERSION,
            "source": self.source.identity,
            "layout": LAYOUT_VERSION,
        }
        if self.overrides is not None:  # a world without overrides keeps its hash
            out["overrides"] = self.overrides.identity
        return out

    @property
    def digest(self) -> str:
        """Return a short hash of :attr:`identity` (layer ETags and cache keys)."""
        blob = json.dumps(self.identity, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @staticmethod
    def names() -> tuple[str, ...]:
        """Return the layer names."""
        return tuple(LAYERS)

    def window(self, name: str, z: int, rect: Rect) -> np.ndarray:
        """Return layer ``name`` on a pixel rect of zoom z (read-only array, see :data:`LAYERS`).

        Raises:
            UnknownLayer: no such layer.
        """
        if name not in LAYERS:
            raise UnknownLayer(f"unknown layer {name!r}; layers: {', '.join(LAYERS)}")
        key = (name, z, tuple(rect))
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        arr = self._compute(name, z, rect)
        arr.setflags(write=False)
        with self._lock:
            self._cache[key] = arr
            while len(self._cache) > self._cache_items:
                self._cache.popitem(last=False)
        return arr

    def tile(self, name: str, z: int, x: int, y: int, size: int = 256) -> np.ndarray:
        """Return layer ``name`` of tile (z, x, y): (size, size)."""
        return self.window(name, z, tile_rect(z, x, y, size))

    def _source_water(self, z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
        """The source's (kind, distance), computed once for both layers that need it."""
        key = ("_source_water", z, tuple(rect))
        with self._lock:
            hit = self._cache.get(key)
        if hit is None:
            kind, dist = self.source.water(z, rect)
            hit = (np.asarray(kind, np.uint8), np.asarray(dist, np.float32))
            with self._lock:
                self._cache[key] = hit  # type: ignore[assignment]
        return hit  # type: ignore[return-value]

    def _source_kind(self, z: int, rect: Rect) -> np.ndarray:
        """The source's water kind alone: from its (kind, distance) if that is cached, else by
        its cheaper ``water_kind`` when it has one (no distance transform), else ``water``."""
        with self._lock:
            hit = self._cache.get(("_source_water", z, tuple(rect)))
        if hit is not None:
            return hit[0]  # type: ignore[index]
        kind_only = getattr(self.source, "water_kind", None)
        if kind_only is not None:
            return np.asarray(kind_only(z, rect), np.uint8)
        return self._source_water(z, rect)[0]

    def _compute(self, name: str, z: int, rect: Rect) -> np.ndarray:
        arr = self._compute_source(name, z, rect)
        ov = self.overrides
        if ov is None or name == "layout" or name == "elevation":
            return arr
        if name == "landcover":
            return ov.landcover(z, rect, arr)
        if not ov.has("water"):
            return arr
        if name == "water":
            return ov.water(z, rect, arr)
        if name == "rivers":
            return ov.rivers(z, rect, arr)
        return ov.distance(z, rect, arr)

    def _compute_source(self, name: str, z: int, rect: Rect) -> np.ndarray:
        src = self.source
        if name == "water":
            kind = self._source_kind(z, rect)
            river = self.window("rivers", z, rect)
            out = kind.astype(np.uint8, copy=True)
            out[(river >= 0.5) & (kind == classes.LAND)] = classes.RIVER
            return out
        if name == "distance":
            return self._source_water(z, rect)[1].copy()
        if name == "rivers":
            return np.asarray(src.rivers(z, rect), np.float32)
        if name == "elevation":
            return np.asarray(src.elevation(z, rect), np.float32)
        if name == "layout":
            from .layout import layout_of

            return layout_of(self).classes(z, rect)
        return np.asarray(src.landcover(z, rect), np.uint8)


def make_geography(
    kind: str, seed: int, *, base_zoom: int = 4, base: object | None = None
) -> Geography:
    """Return the geography a world config names (``earth`` or ``planet``).

    ``base``: the world's :class:`~generator.base.ContinentsBase`, whose fields the planet's
    geography is made from (shared, so the continent map is synthesised once per process).
    """
    if kind == "earth":
        from .earth import EarthGeography

        geo = Geography(kind, EarthGeography(seed))
    elif kind == "planet":
        from .planet import PlanetGeography

        geo = Geography(kind, PlanetGeography(seed, base_zoom=base_zoom, base=base))  # type: ignore[arg-type]
    else:
        raise ValueError(f"unknown geography kind {kind!r}; kinds: earth, planet")
    # Everything alive now (the indices, and the model a world loaded before: ~430k objects)
    # lives as long as the process. The geography's many small allocations trigger the
    # collector's full passes, which traverse all of it (0.5-2.5 s each, measured in a world
    # process); frozen objects are left out of them.
    gc.freeze()
    return geo
