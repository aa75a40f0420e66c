"""The layout's coarse view of the land, its settlements and its road and rail network.

Everything here is decided per *cell* of a lattice aligned with the tile pyramid (cell
``(L, ix, iy)`` is tile ``(L, ix, iy)``, so lattice ``L`` has ``2**L`` cells across the world and
wraps in x) from a counter-based hash of (seed, purpose, L, cell) (:func:`generator.geography.
fractal.hash_uniform`) and from the geography sampled on a fixed coarse zoom: nothing depends on
which tile asks, so any tile can be computed alone and a road decided once lies at the same place
at every zoom.

- :class:`Coarse`: the geography at zoom :data:`COARSE_Z` (≈ 215 m/px at 45°), one 256-px block
  per z9 tile, with derived fields (slope, urban/farm/dry fractions, suitability) that the
  decisions read at points.
- Settlement sites: one candidate site per cell of lattices 9 (regional centres), 11 (towns) and
  13 (villages), the most suitable of a few hashed candidates (flat, dry land near water in
  cropland or grassland); on ``earth`` the regional centres and towns sit on the Natural Earth
  urban areas where a cell has one.
- Links between the sites of neighbouring cells (east, south, south-east) become motorways and
  rail (lattice 9), main roads (11) and roads (13). Each link picks, among a few bends (quadratic
  Béziers and one along the low ground), the one with the least climb and water on the coarse
  grid; a link that would cross mostly water is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from scipy import ndimage

from ..planner import Rect
from . import classes as C
from . import layout_classes as K
from .fractal import hash_uniform
from .grid import HALF_WORLD, grid_width, ground_mpp, lonlat, to_pixel
from .lru import LRU

#: Zoom of the coarse geography the layout's decisions read (one block per tile of this zoom),
#: and the coarser one of the regional network (lattice ≤ REGIONAL_LEVEL: 55-km links).
COARSE_Z = 9
REGIONAL_Z = 7
REGIONAL_LEVEL = 9
WORLD = 2 * HALF_WORLD
_MASK64 = (1 << 64) - 1


def rnd(seed: int, purpose: int, level: int, ix: Any, iy: Any, j: Any = 0) -> np.ndarray:
    """Return uniform values in [0, 1) for cells (ix, iy) of lattice ``level``, draw ``j``.

    ``ix`` is wrapped modulo the lattice width so a cell has one value however it is reached.
    """
    ix = np.asarray(ix, np.int64) % (1 << level)
    iy = np.asarray(iy, np.int64)
    j = np.asarray(j, np.int64)
    s = (seed * 0x9E3779B1 + purpose * 0x85EBCA77) & _MASK64
    h = hash_uniform(s, level, ix * (1 << 20) + j, iy)
    return h * 0.5 + 0.5


def cell_size(level: int) -> float:
    """Return the side of a lattice cell in Web Mercator metres."""
    return WORLD / (1 << level)


def cell_origin(level: int, ix: int, iy: int) -> tuple[float, float]:
    """Return the (west, north) Mercator corner of a cell (ix unwrapped: may lie off the world)."""
    cs = cell_size(level)
    return -HALF_WORLD + ix * cs, HALF_WORLD - iy * cs


_scale_cache: dict[tuple[int, int], float] = {}


def mercator_scale(level: int, iy: int) -> float:
    """Return Mercator metres per ground metre at the centre row of cells ``iy`` of a lattice."""
    key = (level, iy)
    k = _scale_cache.get(key)
    if k is None:
        n = 1 << level
        row = min(max(iy, 0), n - 1)
        # a 1-px rect at the centre of the cell row of zoom `level` (pyproj via grid.lonlat)
        _, lat = lonlat(level, Rect(row * 256 + 128, 0, 1, 1))
        k = 1.0 / max(float(np.cos(np.radians(lat[0]))), 0.02)
        _scale_cache[key] = k
    return k


@dataclass(frozen=True)
class Block:
    """The coarse geography of one tile of :data:`COARSE_Z` and the fields derived from it."""

    fields: dict[str, np.ndarray]


class Coarse:
    """Point sampling of the coarse geography (:data:`COARSE_Z`) and its derived fields."""

    def __init__(self, geo: Any, zoom: int = COARSE_Z) -> None:
        self.geo = geo
        self.zoom = zoom
        self._blocks = LRU(96)

    def block(self, bx: int, by: int) -> Block:
        """Return the coarse block of tile (zoom, bx, by) (bx wrapped)."""
        n = 1 << self.zoom
        bx %= n
        by = min(max(by, 0), n - 1)
        return self._blocks.get((bx, by), lambda: self._make(bx, by))

    def _make(self, bx: int, by: int) -> Block:
        rect = Rect(by * 256, bx * 256, 256, 256)
        z = self.zoom
        elev = np.asarray(self.geo.window("elevation", z, rect), np.float32)
        kind = np.asarray(self.geo.window("water", z, rect))
        lc = np.asarray(self.geo.window("landcover", z, rect))
        wet = kind != C.LAND
        mpp = ground_mpp(z, rect).astype(np.float32)[:, None]
        gy, gx = np.gradient(elev)
        slope = np.hypot(gx / mpp, gy / mpp).astype(np.float32)
        aspect = np.arctan2(-gy, gx).astype(np.float32)  # direction of steepest ascent (x, north)
        near = (ndimage.distance_transform_edt(~wet) * mpp).astype(np.float32)
        farm = np.isin(lc, (C.CROPLAND, C.GRASSLAND)).astype(np.float32)
        urban = (lc == C.URBAN).astype(np.float32)
        dry = np.isin(lc, (C.DESERT, C.SHRUBLAND)).astype(np.float32)
        forest = np.isin(lc, (C.BROADLEAF, C.NEEDLELEAF, C.TROPICAL)).astype(np.float32)
        f = 1 << max(COARSE_Z - z, 0)  # filters of the same ground size at every coarse zoom
        farm_f = ndimage.uniform_filter(farm, max(1, round(5 / f)), mode="nearest")
        urban_f = ndimage.uniform_filter(urban, max(1, round(9 / f)), mode="nearest")
        dry_f = ndimage.uniform_filter(dry, max(1, round(9 / f)), mode="nearest")
        flat = np.clip(1.0 - slope / 0.3, 0.0, 1.0) ** 1.5  # z9 valley floors read 0.05-0.2
        # flat ground first (valley floors, whatever grows there), then farmland and towns
        suit = (
            (~wet)
            * flat
            * np.clip(0.35 + 0.65 * farm_f + urban_f - 0.15 * forest, 0.0, 1.0)
            * (0.6 + 0.4 * np.exp(-near / 3000.0))
        ).astype(np.float32)
        return Block(
            {
                "elev": elev,
                "wet": wet.astype(np.float32),
                "slope": slope,
                "aspect": aspect,
                "farm": farm_f.astype(np.float32),
                "urban": urban_f.astype(np.float32),
                "dry": dry_f.astype(np.float32),
                "suit": suit,
                "lc": lc.astype(np.float32),  # the class, for per-class parameters ([layout])
            }
        )

    def sample(self, mx: np.ndarray, my: np.ndarray, name: str) -> np.ndarray:
        """Return field ``name`` at Mercator points (nearest coarse pixel), float32."""
        mx, my = np.asarray(mx, np.float64), np.asarray(my, np.float64)
        px, py = to_pixel(self.zoom, mx, my)
        w = grid_width(self.zoom)
        col = np.floor(px).astype(np.int64) % w
        row = np.clip(np.floor(py).astype(np.int64), 0, w - 1)
        bid = (row // 256) * (w // 256) + col // 256
        out = np.empty(mx.shape, np.float32)
        for b in np.unique(bid):
            sel = bid == b
            blk = self.block(int(b % (w // 256)), int(b // (w // 256)))
            out[sel] = blk.fields[name][row[sel] % 256, col[sel] % 256]
        return out


@dataclass(frozen=True)
class Site:
    """A settlement site: Mercator position (unwrapped like its cell), suitability, weight."""

    x: float
    y: float
    suit: float
    size: float


#: Per lattice: (purpose salt, candidates, minimum suitability, presence probability).
SITE_LEVELS = {9: (11, 8, 0.2, 1.0), 11: (12, 10, 0.25, 0.85), 13: (13, 4, 0.3, 0.8)}


class Network:
    """Settlement sites and the road/rail links between them (see the module docstring)."""

    def __init__(
        self, seed: int, coarse: Coarse, regional: Coarse, urban_areas: Any | None = None
    ) -> None:
        self.seed = seed
        self.coarse = coarse  # lattices 11 and 13
        self.regional = regional  # lattice 9: regional centres, motorways and rail
        self.urban = urban_areas  # earth: Natural Earth urban areas (geoms + STRtree), else None
        self._sites = LRU(8192)
        self._links = LRU(16384)
        #: ``[layout.params]`` road density at a site (x, y) → a factor of the link
        #: probabilities; None: 1 (set by the layout when a world has parameters)
        self.density: Any = None

    def site(self, level: int, ix: int, iy: int) -> Site | None:
        """Return the settlement site of a cell, or None (cell without one)."""
        return self._sites.get((level, ix, iy), lambda: self._site(level, ix, iy))

    def _site(self, level: int, ix: int, iy: int) -> Site | None:
        purpose, n, min_suit, p = SITE_LEVELS[level]
        cs = cell_size(level)
        x0, y1 = cell_origin(level, ix, iy)
        if self.urban is not None and level < 13:
            wrap = np.floor((x0 + HALF_WORLD) / WORLD) * WORLD  # NE geometry lies on [-H, H)
            q = shapely.box(x0 - wrap, y1 - cs, x0 + cs - wrap, y1)
            hits = self.urban.tree.query(q)
            if len(hits):
                parts = shapely.intersection(self.urban.geoms[hits], q)
                areas = shapely.area(parts)
                best = int(np.argmax(areas))
                if areas[best] > 0:
                    pt = shapely.point_on_surface(parts[best])
                    size = float(np.sqrt(areas[best])) / mercator_scale(level, iy)
                    return Site(pt.x + wrap, pt.y, 1.0, size)
        j = np.arange(n)
        fx = 0.1 + 0.8 * rnd(self.seed, purpose, level, ix, iy, j)
        fy = 0.1 + 0.8 * rnd(self.seed, purpose + 100, level, ix, iy, j)
        mx, my = x0 + fx * cs, y1 - fy * cs
        coarse = self.regional if level <= REGIONAL_LEVEL else self.coarse
        suit = coarse.sample(mx, my, "suit")
        urban = coarse.sample(mx, my, "urban")
        if level == 13:  # villages are not drawn inside the cities' own street grids
            suit = np.where(urban > 0.3, 0.0, suit)
        b = int(np.argmax(suit))
        if suit[b] < min_suit or rnd(self.seed, purpose + 200, level, ix, iy) > p * (0.5 + suit[b]):
            return None
        size = (150.0 + 350.0 * suit[b] * rnd(self.seed, purpose + 300, level, ix, iy)).item()
        return Site(float(mx[b]), float(my[b]), float(suit[b]), size)

    def links(self, level: int, purpose: str, ix: int, iy: int) -> list[tuple[int, np.ndarray]]:
        """Return the links a cell owns (to its E, S, SE neighbours): (class id, (n, 2) xy)."""
        return self._links.get(
            (level, purpose, ix, iy), lambda: self._cell_links(level, purpose, ix, iy)
        )

    def _cell_links(self, level: int, purpose: str, ix: int, iy: int) -> list:
        a = self.site(level, ix, iy)
        if a is None:
            return []
        probs = LINK_PROBS[purpose]
        klass = LINK_CLASS[purpose]
        salt = 40 + list(LINK_PROBS).index(purpose)
        if self.density is not None:
            f = self.density(a.x, a.y)
            probs = tuple(p * f for p in probs)
        out = []
        for d, (dx, dy) in enumerate(((1, 0), (0, 1), (1, 1))):
            if rnd(self.seed, salt, level, ix, iy, d) >= probs[d]:
                continue
            b = self.site(level, ix + dx, iy + dy)
            if b is None:
                continue
            line = self._route(level, salt, ix, iy, d, a, b)
            if line is not None:
                out.append((klass, line))
        return out

    def _route(
        self, level: int, salt: int, ix: int, iy: int, d: int, a: Site, b: Site
    ) -> np.ndarray | None:
        """Return the least-cost bend from a to b as (n, 2) Mercator points, or None.

        Every candidate is a perpendicular offset profile along the chord a→b: five quadratic
        Béziers with their control point over the chord's middle (offset 2t(1 − t)·c) and one
        that follows the low ground — at eight stations the lowest point of a transect across
        the chord (± 30 % of its length), smoothed and joined by a monotone cubic (PCHIP), so a
        road can run up a valley floor instead of over the spur beside it.
        """
        pa, pb = np.array([a.x, a.y]), np.array([b.x, b.y])
        v = pb - pa
        length = float(np.hypot(*v))
        if length <= 0:
            return None
        perp = np.array([-v[1], v[0]]) / length
        coarse = self.regional if level <= REGIONAL_LEVEL else self.coarse
        jitter = rnd(self.seed, salt + 50, level, ix, iy, d) - 0.5
        offs = np.array([0.0, 0.14, -0.14, 0.3, -0.3]) + 0.08 * jitter
        valley = self._valley(coarse, pa, v, perp, length)
        t = np.linspace(0.0, 1.0, 24)
        prof = np.vstack([2 * t * (1 - t) * o for o in offs] + [valley(t)])  # (6, 24)
        pts = (pa + t[:, None] * v)[None] + prof[:, :, None] * length * perp  # (6, 24, 2)
        flat = pts.reshape(-1, 2)
        elev = coarse.sample(flat[:, 0], flat[:, 1], "elev").reshape(prof.shape)
        wet = coarse.sample(flat[:, 0], flat[:, 1], "wet").reshape(prof.shape)
        k = mercator_scale(level, iy)
        seg = np.hypot(*np.diff(pts, axis=1).transpose(2, 0, 1)).sum(axis=1) / k  # ground m
        climb = np.abs(np.diff(np.maximum(elev, 0.0), axis=1)).sum(axis=1)
        water = wet[:, 1:-1].mean(axis=1)
        cost = seg + 25.0 * climb + 8.0 * seg * water
        best = int(np.argmin(cost))
        if water[best] > 0.3:
            return None
        # the chosen bend, sampled every ≈ 40 m so it stays a smooth curve at z17
        t = np.linspace(0.0, 1.0, int(np.clip(seg[best] / 40.0, 24, 1024)))
        off = valley(t) if best == len(offs) else 2 * t * (1 - t) * offs[best]
        return (pa + t[:, None] * v) + off[:, None] * length * perp

    @staticmethod
    def _valley(coarse: Coarse, pa: np.ndarray, v: np.ndarray, perp: np.ndarray, length: float):
        """Return the low-ground offset profile of a chord (a function of t in [0, 1])."""
        from scipy.interpolate import PchipInterpolator

        ti = np.arange(1, 9) / 9.0
        oj = np.linspace(-0.3, 0.3, 13)
        q = (pa + ti[:, None] * v)[:, None, :] + oj[None, :, None] * length * perp
        e = coarse.sample(q[..., 0].ravel(), q[..., 1].ravel(), "elev").reshape(8, 13)
        w = coarse.sample(q[..., 0].ravel(), q[..., 1].ravel(), "wet").reshape(8, 13)
        score = np.maximum(e, 0.0) + 30.0 * np.abs(oj) / 0.3 + 1000.0 * w
        prof = np.concatenate([[0.0], oj[np.argmin(score, axis=1)], [0.0]])
        for _ in range(2):
            prof[1:-1] = (prof[:-2] + 2 * prof[1:-1] + prof[2:]) / 4
        return PchipInterpolator(np.concatenate([[0.0], ti, [1.0]]), prof)


#: Link presence probabilities (E, S, SE) per network, and the class each is drawn as.
LINK_PROBS = {
    "motorway": (0.55, 0.55, 0.15),
    "rail": (0.3, 0.3, 0.1),
    "main": (0.85, 0.85, 0.25),
    "road": (0.8, 0.8, 0.2),
}
LINK_CLASS = {"motorway": K.MOTORWAY, "rail": K.RAIL, "main": K.MAIN_ROAD, "road": K.ROAD}
#: The lattice of each network and the first zoom it is drawn at.
LINK_LEVEL = {"motorway": 9, "rail": 9, "main": 11, "road": 13}
LINK_MINZOOM = {"motorway": 7, "rail": 9, "main": 9, "road": 11}
#: Ground width (m) of each road class when drawn (at least one pixel).
WIDTH_M = {
    K.MOTORWAY: 30.0,
    K.RAIL: 10.0,
    K.MAIN_ROAD: 12.0,
    K.ROAD: 7.0,
    K.TRACK: 4.0,
}
#: Hash purpose offset of the per-cell parcel and settlement decisions (:mod:`.layout_parcels`).
CELL_SEED_SALT = 1000
