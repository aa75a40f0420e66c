"""Elevation of the ``earth`` world: the 2′ relief grid, sub-grid fractal relief, river valleys.

Per pixel, in order:

1. **Grid.** :func:`.relief.sample` (Catmull-Rom) on the mip level matching the zoom's pixel, so
   coarse zooms read area means and a 2 × 2 block of children averages to its parent.
2. **Sub-grid detail.** Value-noise octaves (:func:`.fractal.value_noise`) from lattice level 14
   (cells of 2.4 km · cos φ, below the grid's 3.7 km spacing) down to cells of 2 px of the zoom,
   amplitude halving per octave and proportional to the grid's own local roughness
   (:func:`.relief.roughness`, the RMS of its finest relief): the Po plain stays flat (≈ 2 m),
   the Alps get ± a few hundred metres, with ridged (1 − 2|n|) octaves blended in where the grid
   is rough. Every octave has zero mean (the ridged ones have their mean subtracted); over a 2′
   cell in the Alps the detail's mean has a standard deviation of ≈ 60 m (its own: ≈ 140 m),
   well inside the grid's ≈ 450 m accuracy there.
3. **River valleys.** Every river polyline of the rivers source gets a surface elevation per
   vertex, computed once for the whole network (:class:`RiverProfiles`): pieces joined end to
   end are chained, each chain is oriented downhill (its higher end is the source) and its
   surface is the running minimum of the grid along it, and a tributary never ends below the
   river it joins. Within a corridor of half-width W (:data:`VALLEY_HALF_WIDTH_M`, by river
   class) the terrain T is pulled to the surface S,
   ``S + (T − S) · smoothstep((d − F) / (W − F))`` (down where T > S; up where the grid dips
   below a river that the running minimum held up), with a flat valley floor of
   half-width F = :data:`VALLEY_FLOOR_M` — the river itself lies at the surface, and since the
   surface never rises downstream a river never climbs a ridge; the detail fades out towards
   the river, so valley floors are smooth.
4. **Water.** Ocean pixels are at most −1 m (deepening 5 m per km offshore where the grid is
   shallower), land pixels at least +0.5 m (rising from the shore with the terrain's roughness
   where the 2′ grid still has sea) except in real depressions (:func:`.relief.depression`:
   grid cells below 0 m not connected to the ocean — Caspian, Dead Sea, Qattara, Death Valley),
   lakes at the grid's 4′-averaged surface (at most its 3 × 3-cell minimum) without detail.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numba import njit
from scipy.spatial import cKDTree

from ..planner import Rect
from . import classes, dunes_earth, fractal, relief
from .fractal import smoothstep
from .grid import (
    HALF_WORLD,
    grid_width,
    ground_mpp,
    lonlat,
    lonlat_bounds,
    mercator_x,
    mercator_y,
    pixel_size,
    to_mercator,
)
from .source import data_cache_dir

log = logging.getLogger(__name__)

#: Version of this layer's code (part of the identity).
VERSION = "4"  # 3: float32 fbm sums; rotated octaves by a compiled B-spline; 4: dunes
#: Version of the rules for land depressions (part of the identity, not of the profiles'
#: cache): 2: land not below the grid, lakes at the grid's mean.
DEPRESSION_RULES = "2"
#: First lattice level of the detail: cells of 40075 km / 2**14 = 2.4 km at the equator, below
#: the grid's 3.7 km spacing (level 13's 4.9 km cells shifted whole grid cells' means).
DETAIL_LEVEL = 14
#: Detail amplitude (std of the first octave) per metre of grid roughness.
DETAIL_GAIN = 0.3
#: Valley half-width (m) by WDBII river class (2 permanent major … 5 minor); others use 800 m.
VALLEY_HALF_WIDTH_M = {1: 2500.0, 2: 2500.0, 3: 1800.0, 4: 1200.0, 5: 900.0}
DEFAULT_HALF_WIDTH_M = 800.0
#: Half-width of the flat valley floor at the river surface: the rivers layer's widest strip
#: (300 m) plus its meanders (≤ 200 m) stay on it.
VALLEY_FLOOR_M = 350.0
#: Rivers closer than this share the lower surface (:class:`RiverProfiles`); > 2 floors.
PROXIMITY_M = 800.0
#: Land within this ground distance of a lake comes down to the lake's surface (at fine zooms
#: within :data:`LAKE_SHORE_MAX_PX`, inside the shore distance's 48 px cap).
LAKE_SHORE_M = 400.0
LAKE_SHORE_MAX_PX = 40.0
#: How far the water layer's displaced, smoothed shores may lie from GSHHS's own (m).
LAKE_SHORE_SLACK_M = 100.0
#: Coarser pixels (≥ 400 m at 45°) are wider than the shore band.
MIN_LAKE_SHORE_ZOOM = 8
#: Valleys are carved from this zoom on (pixels ≤ 600 m, a corridor ≥ 3 px); coarser pixels
#: would only point-sample corridors narrower than themselves.
MIN_CARVE_ZOOM = 8
EARTH_RADIUS = 6378137.0
M_PER_DEG = np.pi * EARTH_RADIUS / 180.0


class RiversLike(Protocol):
    """What elevation needs of the rivers source."""

    def segments(self, w: float, s: float, e: float, n: float) -> list[tuple[np.ndarray, int]]:
        """Return the river polylines (N × 2 lon/lat) meeting a box, with their class/order."""
        ...


class WaterLike(Protocol):
    """What elevation needs of the water source."""

    def water(self, z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
        """Return (kind uint8, signed shore distance m, + on water)."""
        ...


def _vertex_keys(xy: np.ndarray) -> np.ndarray:
    """Return an int64 key per vertex (lon, lat rounded to 1e-5°) to find it again."""
    q = np.round(np.asarray(xy, np.float64) * 1e5).astype(np.int64)
    return (q[:, 0] + 18_000_000) * 40_000_000 + (q[:, 1] + 9_000_000)


def running_profile(heights: np.ndarray) -> np.ndarray:
    """Return the river surface along a polyline's samples: oriented downhill, running minimum.

    The end whose first/last tenth is higher on average is the source; the result is
    non-increasing from the source and never above the sampled heights.
    """
    h = np.asarray(heights, np.float64)
    k = max(1, len(h) // 10)
    if h[:k].mean() >= h[-k:].mean():
        return np.minimum.accumulate(h)
    return np.minimum.accumulate(h[::-1])[::-1]


class RiverProfiles:
    """River surface elevation per vertex, for the whole river network at once.

    Built on first use from ``rivers.segments`` over the whole world (and kept in
    :func:`~.source.data_cache_dir`, keyed by the lines and the relief): pieces whose ends meet
    (same vertex to 1e-5°) at a node of degree 2 are chained into one river; a chain's surface is
    :func:`running_profile` of the grid at its vertices; then, until nothing changes, a vertex
    within :data:`PROXIMITY_M` of another river takes that river's surface where it is lower,
    and the running minimum downstream of it is redone (confluences and channels side by side
    agree, every chain stays non-increasing). Queried by vertex
    coordinates, so any piece the rivers source returns later finds its surface again; vertices
    not in the network (clipped ends, stand-in rivers) fall back to the piece's own profile.
    """

    def __init__(self, rivers: RiversLike) -> None:
        self._rivers = rivers
        self._lock = threading.Lock()
        self._keys: np.ndarray | None = None
        self._surface: np.ndarray | None = None

    def _build(self) -> None:
        segs = self._rivers.segments(-180.0, -90.0, 180.0, 90.0)
        lines = [np.asarray(xy, np.float64) for xy, _ in segs if len(xy) >= 2]
        if not lines:
            self._keys, self._surface = np.zeros(0, np.int64), np.zeros(0, np.float32)
            return
        h = hashlib.sha256(f"{VERSION}/{relief.tiles_digest()}/{PROXIMITY_M}".encode())
        for x in lines:
            h.update(np.ascontiguousarray(x).tobytes())
        path = data_cache_dir() / f"river-profiles-{h.hexdigest()[:16]}.npz"
        try:
            with np.load(path) as z:
                self._keys, self._surface = z["keys"], z["surface"]
            return
        except (OSError, KeyError, ValueError):
            pass
        self._compute(lines)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, keys=self._keys, surface=self._surface)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _compute(self, lines: list[np.ndarray]) -> None:
        lens = np.array([len(x) for x in lines])
        allxy = np.concatenate(lines)
        heights = relief.sample_points(allxy[:, 0], allxy[:, 1]).astype(np.float64)
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        # chain pieces through degree-2 end nodes
        ends = np.concatenate([_vertex_keys(allxy[starts]), _vertex_keys(allxy[starts + lens - 1])])
        uniq, inv, count = np.unique(ends, return_inverse=True, return_counts=True)
        n = len(lines)
        node_a, node_b = inv[:n], inv[n:]
        touching: dict[int, list[int]] = {}
        for i in range(n):
            touching.setdefault(int(node_a[i]), []).append(i)
            touching.setdefault(int(node_b[i]), []).append(i)
        seen = np.zeros(n, bool)
        chains: list[list[tuple[int, bool]]] = []  # (piece, reversed)
        for i0 in range(n):
            if seen[i0]:
                continue
            seen[i0] = True
            chain = [(i0, False)]
            for direction in (1, -1):  # grow forward from node_b, then backward from node_a
                piece, node = i0, int(node_b[i0] if direction == 1 else node_a[i0])
                while count[node] == 2:
                    nxt = [j for j in touching[node] if j != piece]
                    if not nxt or seen[nxt[0]]:
                        break
                    j = nxt[0]
                    seen[j] = True
                    rev = int(node_a[j]) != node
                    if direction == 1:
                        chain.append((j, rev))
                        node = int(node_a[j] if rev else node_b[j])
                    else:
                        chain.insert(0, (j, not rev))
                        node = int(node_b[j] if rev else node_a[j])
                    piece = j
            chains.append(chain)
        surface = np.empty(len(allxy), np.float64)
        chain_idx = []
        for chain in chains:
            idx = np.concatenate(
                [np.arange(starts[j], starts[j] + lens[j])[:: -1 if rev else 1] for j, rev in chain]
            )
            prof = running_profile(heights[idx])
            surface[idx] = prof
            # orient the index downstream (surface non-increasing)
            chain_idx.append(idx if prof[0] >= prof[-1] else idx[::-1])
        # rivers that come within PROXIMITY_M of each other (confluences, channels side by
        # side) share the lower surface there, which then holds downstream: the corridors of
        # the elevation layer, which take the lowest surface where they overlap, stay monotone
        owner = np.repeat(np.arange(len(chain_idx)), [len(c) for c in chain_idx])
        order = np.concatenate(chain_idx)
        lat0 = np.radians(allxy[order, 1])
        pts = np.stack([allxy[order, 0] * np.cos(lat0), allxy[order, 1]], 1) * M_PER_DEG
        tree = cKDTree(pts)
        dist, nb = tree.query(pts, k=12, distance_upper_bound=PROXIMITY_M)
        nb = np.minimum(nb, len(order) - 1)
        other = np.isfinite(dist) & (owner[nb] != owner[:, None])
        rows = np.flatnonzero(other.any(axis=1))
        nb, other = nb[rows], other[rows]
        for _ in range(6):
            s_o = surface[order]
            low = np.where(other, s_o[nb], np.inf).min(axis=1)
            lower = low < s_o[rows] - 1e-3
            if not lower.any():
                break
            surface[order[rows[lower]]] = low[lower]
            for idx in {int(owner[r]) for r in rows[lower]}:
                ch = chain_idx[idx]
                surface[ch] = np.minimum.accumulate(surface[ch])
        keys = _vertex_keys(allxy)
        sort = np.argsort(keys, kind="stable")
        self._keys, self._surface = keys[sort], surface[sort].astype(np.float32)
        log.info("river profiles: %d pieces, %d chains, %d vertices", n, len(chains), len(keys))

    def surface(self, xy: np.ndarray) -> np.ndarray:
        """Return the river surface (m) at a polyline's vertices (N × 2 lon/lat)."""
        if self._keys is None:
            with self._lock:
                if self._keys is None:
                    self._build()
        assert self._keys is not None and self._surface is not None
        keys = _vertex_keys(xy)
        pos = np.clip(np.searchsorted(self._keys, keys), 0, max(len(self._keys) - 1, 0))
        found = (self._keys[pos] == keys) if len(self._keys) else np.zeros(len(keys), bool)
        if found.all():
            return self._surface[pos]
        own = running_profile(relief.sample_points(xy[:, 0], xy[:, 1])).astype(np.float32)
        if not found.any():
            return own
        # clipped ends: continue the network's surface, never above the piece's own profile
        at = np.flatnonzero(found)
        filled = np.interp(np.arange(len(keys)), at, self._surface[pos[at]])
        out = np.where(found, self._surface[pos], np.minimum(filled, own))
        return out.astype(np.float32)


class EarthElevation:
    """The ``earth`` elevation layer (metres), see the module docstring."""

    def __init__(self, seed: int, rivers: RiversLike, water: WaterLike) -> None:
        self.seed = seed
        self._rivers = rivers
        self._water = water
        self._profiles = RiverProfiles(rivers)
        self._noise_seed = (seed * 0x9E3779B1 + 0xE1E7) & 0xFFFFFFFF
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        # the sand's brightness of the rects last made (None: no dunes there)
        self._bright: OrderedDict[tuple, np.ndarray | None] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def identity(self) -> dict[str, object]:
        """Return the relief data digest, the code version and the seed."""
        return {
            "relief": relief.tiles_digest(),
            "version": VERSION,
            "depressions": DEPRESSION_RULES,
            "dunes": dunes_earth.VERSION,
            "seed": self.seed,
        }

    # -- the layer -------------------------------------------------------------------------

    def elevation(self, z: int, rect: Rect) -> np.ndarray:
        """Return float32 (h, w) metres above sea level for a pixel rect of zoom z.

        The last few results are kept (land cover asks for the same rect right after).
        """
        key = (z, tuple(rect))
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit.copy()
        out = self._elevation(z, rect)
        self._keep(self._cache, key, out)
        return out.copy()

    def _elevation(self, z: int, rect: Rect) -> np.ndarray:
        lon, lat = lonlat(z, rect)
        mip = relief.mip_for_pixel(360.0 / grid_width(z))
        base = relief.sample(lon, lat, mip)
        fields = self._river_field(z, rect, lon, lat)
        t_min = np.full((rect.h, rect.w), 2.0, np.float32)
        for f in fields:
            np.minimum(t_min, f.t, out=t_min)
        # the detail fades out towards the valley floor
        rough = relief.roughness(lon, lat)
        floor = smoothstep(t_min)
        terrain = base + self.detail(z, rect, lon, lat, rough) * floor
        # sand seas: dune ridges on hyper-arid flats, out of the valley floors; the sand's
        # brightness, from the same dunes, is kept for the imagery's shading of this rect
        sand = dunes_earth.sand_share(self._noise_seed, z, rect, lon, lat, rough, base)
        bright = None
        ridges = np.zeros((rect.h, rect.w), np.float32)
        if (sand > 0).any():
            linear, total = dunes_earth.fields(self._noise_seed, z, rect)
            on_floor = sand * floor
            if (on_floor > 0).any():
                ridges = (total * on_floor).astype(np.float32)
            bright = dunes_earth.brightness(linear, sand)
        self._keep(self._bright, (z, tuple(rect)), bright)
        terrain = terrain + ridges
        # S + (T − S)·fade for both signs: pulled down to the river where the terrain is
        # higher, and where it dips below the surface (interpolation pits next to a river that
        # the running minimum has held up) lifted to it, so the river itself is exactly S;
        # where corridors overlap (confluences, parallel channels) the lowest one wins
        best = np.full((rect.h, rect.w), np.inf, np.float32)
        for f in fields:
            c = np.where(
                np.isfinite(f.surface), f.surface + (terrain - f.surface) * smoothstep(f.t), np.inf
            )
            if f.rows is not None:
                assert f.t_k is not None and f.s_k is not None and f.cols is not None
                tv = terrain[f.rows, f.cols][:, None]
                c_k = np.where(f.t_k < 1.0, f.s_k + (tv - f.s_k) * smoothstep(f.t_k), np.inf)
                c[f.rows, f.cols] = c_k.min(axis=1)
            np.minimum(best, c, out=best)
        out = np.where(np.isfinite(best), best, terrain)
        kind, dist = self._water.water(z, rect)
        out = self._apply_water(
            z,
            rect,
            lon,
            lat,
            out,
            base,
            kind,
            np.asarray(dist, np.float32),
            floor,
            rough,
        )
        return out.astype(np.float32)

    def sand_albedo(self, z: int, rect: Rect) -> np.ndarray:
        """Return the sand's brightness factor on the rect (:func:`.dunes_earth.brightness`; 1
        where there are no dunes): kept from the rect's elevation when that was just made (the
        shader reads both on one rect), else computed."""
        key = (z, tuple(rect))
        with self._cache_lock:
            if key in self._bright:
                bright = self._bright[key]
                return np.ones((rect.h, rect.w), np.float32) if bright is None else bright.copy()
        lon, lat = lonlat(z, rect)
        rough = relief.roughness(lon, lat)
        base = relief.sample(lon, lat, relief.mip_for_pixel(360.0 / grid_width(z)))
        sand = dunes_earth.sand_share(self._noise_seed, z, rect, lon, lat, rough, base)
        return dunes_earth.albedo(self._noise_seed, z, rect, sand)

    def _keep(self, cache: OrderedDict, key: tuple, value: np.ndarray | None) -> None:
        """Keep ``value`` under ``key`` in one of the small per-rect caches (the last 8)."""
        with self._cache_lock:
            cache[key] = value
            cache.move_to_end(key)
            while len(cache) > 8:
                cache.popitem(last=False)

    def detail(
        self,
        z: int,
        rect: Rect,
        lon: np.ndarray,
        lat: np.ndarray,
        rough: np.ndarray | None = None,
    ) -> np.ndarray:
        """Return the zero-mean sub-grid relief (m) of the rect (zeros below zoom 6)."""
        top = z + 7  # finest octave: cells of 2 px
        if top < DETAIL_LEVEL:
            return np.zeros((rect.h, rect.w), np.float32)
        if rough is None:
            rough = relief.roughness(lon, lat)
        ridged_w = smoothstep((rough - 20.0) / 120.0)
        acc = np.zeros((rect.h, rect.w), np.float32)
        amp = 1.0
        split = min(DETAIL_LEVEL + ROTATED_OCTAVES, top + 1)
        for lv in range(DETAIL_LEVEL, split):
            n = _octave_rect(self._noise_seed, lv, z, rect, True)
            # ridged folds of the axis-aligned octaves would crease along the lattice
            r = 1.0 - 2.0 * np.abs(n) - (1.0 - 2.0 * _STATS["rot"])
            acc += amp * (n + ridged_w * (r - n))
            amp *= 0.5
        if split <= top:  # the finer, axis-aligned octaves: one separable sum
            u, v = fractal.uv(z, rect)
            sep = fbm_rows(self._noise_seed, u, v, range(split, top + 1))
            acc += (amp / _STATS["sep_std"]) * sep
        # floor of 1.5 m: even the flattest plain is not a table
        return (acc * (DETAIL_GAIN * np.maximum(rough, 1.5))).astype(np.float32)

    # -- rivers ----------------------------------------------------------------------------

    def _river_field(self, z: int, rect: Rect, lon: np.ndarray, lat: np.ndarray) -> CorridorField:
        """Return the river corridors' field over the rect (see :class:`CorridorField`).

        Everything here is a function of the pixel and the zoom, not of the rect: distances are
        Web Mercator metres × cos(latitude of the pixel) (conformal: ground metres at these
        scales), and each polyline segment is densified on its own, every half pixel.
        """
        far: list[CorridorField] = []
        if z < MIN_CARVE_ZOOM:
            return far
        w, s, e, n = lonlat_bounds(z, rect)
        lat_edge = min(max(abs(s), abs(n)), 85.0)
        cos_min = max(np.cos(np.radians(lat_edge)), 0.05)
        hmax_all = max(VALLEY_HALF_WIDTH_M.values())
        # reach of the coarse pass (blocks up to one block outside the rect)
        pad_m = hmax_all + 3 * _block(z) * pixel_size(z) * cos_min
        pad = pad_m / M_PER_DEG
        qbox = (
            (w - pad / cos_min + 180.0) % 360.0 - 180.0,
            s - pad,
            (e + pad / cos_min + 180.0) % 360.0 - 180.0,
            n + pad,
        )
        segs = self._rivers.segments(*qbox)
        if not segs:
            return far
        # Web Mercator metres: half a pixel, but no finer than 40 m, so the nearest points of a
        # pixel (k of them, see _corridor_field) reach beyond its own river's floor
        step = max(0.5 * pixel_size(z), 40.0)
        by_class: dict[int, tuple[list, list]] = {}
        for xy, order in segs:
            xy = np.asarray(xy, np.float64)
            if len(xy) < 2:
                continue
            s_v = self._profiles.surface(xy)
            p, sv = _densify_mercator(xy, s_v, step, qbox)
            if not len(sv):
                continue
            pts, surf = by_class.setdefault(int(order), ([], []))
            pts.append(p)
            surf.append(sv)
        fields = []
        # one tree per class: where corridors of different classes overlap (a canal beside the
        # Nile) each class's nearest points are found, and the lowest surface wins
        for order in sorted(by_class):
            pts, surf = by_class[order]
            P = np.concatenate(pts)
            S = np.concatenate(surf)
            H = np.full(len(S), VALLEY_HALF_WIDTH_M.get(order, DEFAULT_HALF_WIDTH_M), np.float32)
            if w > e or abs(w) > 170 or abs(e) > 170:  # near ±180°: copies one world away
                span = 2 * HALF_WORLD
                P = np.concatenate([P, P + [span, 0.0], P - [span, 0.0]])
                S, H = np.tile(S, 3), np.tile(H, 3)
            fields.append(_corridor_field(z, rect, cKDTree(P), S, H, hmax_all))
        return fields

    # -- water -----------------------------------------------------------------------------

    def _apply_water(
        self,
        z: int,
        rect: Rect,
        lon: np.ndarray,
        lat: np.ndarray,
        elev: np.ndarray,
        base: np.ndarray,
        kind: np.ndarray,
        dist: np.ndarray,
        fade: np.ndarray,
        rough: np.ndarray,
    ) -> np.ndarray:
        ocean = kind == classes.OCEAN
        lake = kind == classes.LAKE
        land = ~(ocean | lake)
        out = elev.copy()
        slope = np.clip((rough - 10.0) / 1000.0, 0.0, 0.3)
        # ocean: at most −1 m, deepening offshore (5 m per km, steeper off rough coasts) where
        # the grid is shallower
        off = -1.0 - np.maximum(slope, 0.005) * np.maximum(dist, 0.0)
        out[ocean] = np.minimum(out[ocean], off[ocean])
        # land: above the sea unless the grid has a depression there (below 0 m and not
        # connected to the ocean: Caspian, Dead Sea, Qattara, Death Valley, Turpan). Where the
        # grid still has sea (its coast is 2′ coarse, GSHHS's is not) the land rises from the
        # shore at a slope that follows the terrain's roughness: fjord walls climb, polders
        # stay flat; not on valley floors (``fade`` 0), where the river keeps its surface
        ramp = 0.5 + slope * np.maximum(-dist, 0.0) * fade
        floor = np.where(base < 0.0, ramp, 0.5)
        # in a depression the land may go below the sea, but not below the grid itself: the
        # sub-grid detail there is relief the 2′ grid averaged away, and a deep detail on a
        # basin floor (Death Valley) would invent a pit the data does not hold
        dep = relief.depression(lon, lat)
        floor = np.where(dep, np.minimum(base, floor), floor).astype(np.float32)
        out[land] = np.maximum(out[land], floor[land])
        near = self._near_lake(z, rect) if z >= MIN_LAKE_SHORE_ZOOM else None
        if lake.any() or (near is not None and near.any()):
            # the 4′ mean without detail, but never above the 3 × 3-cell minimum: a lake in a
            # narrow valley must not take the mountains' mean (the JPEG's undershoot makes that
            # minimum a few grey steps low on small lakes)
            mean = relief.sample(lon, lat, max(1, relief.mip_for_pixel(360.0 / grid_width(z))))
            level = np.minimum(mean, relief.sample(lon, lat, low=True))
            # a lake in a land depression (Dead Sea, Lake Assal) lies in a basin the grid holds
            # as it is: its bottom cells are the lake itself, so the 3 × 3 minimum (a few grey
            # steps low) would sink the surface below the data; the mean is the grid's own
            level = np.where(dep, mean, level)
            out[lake] = level[lake]
            if near is not None:
                # the shore comes down to the lake: land within the shore band of a lake
                # blends to the lake's surface by the signed shore distance (continuous up to
                # its 48 px cap), so lake and shore meet without a step; not on valley floors
                # (``fade`` 0), where a river leaving a lake keeps its surface (pulled to a
                # lower lake level it would climb back to it downstream)
                mpp = ground_mpp(z, rect)[:, None]
                band = np.minimum(LAKE_SHORE_M, LAKE_SHORE_MAX_PX * mpp)
                blend = near & land & (dist > -band)
                if blend.any():
                    w = 1.0 - (1.0 - smoothstep(-dist / band)[blend]) * fade[blend]
                    out[blend] = level[blend] + (out[blend] - level[blend]) * w
        return out

    def _near_lake(self, z: int, rect: Rect) -> np.ndarray | None:
        """Return whether a lake lies within the shore band (plus the shores' displacement,
        :data:`LAKE_SHORE_SLACK_M` up to 60° of latitude) of each pixel, from the undisplaced
        GSHHS kinds 8× coarser (on that zoom's global grid, with a reach set by the zoom alone,
        so every rect agrees), or None when the water source cannot tell lakes apart.

        The signed distance says how far the nearest water is, not whether it is a lake; the
        sea's shores keep their own treatment.
        """
        kind_of = getattr(self._water, "kind", None)
        if kind_of is None or z < 3:
            return None
        f = 8
        zc = z - 3
        reach = min(LAKE_SHORE_M / (0.5 * pixel_size(z)), LAKE_SHORE_MAX_PX)
        reach += LAKE_SHORE_SLACK_M / (0.5 * pixel_size(z))
        r = int(np.ceil(reach / f)) + 1
        cy0, cy1 = rect.y0 // f - r, (rect.y0 + rect.h - 1) // f + r + 1
        cx0, cx1 = rect.x0 // f - r, (rect.x0 + rect.w - 1) // f + r + 1
        kc = np.asarray(kind_of(zc, Rect(cy0, cx0, cy1 - cy0, cx1 - cx0), detail=False))
        lake_c = kc == classes.LAKE
        if not lake_c.any():
            return np.zeros((rect.h, rect.w), bool)
        from scipy.ndimage import maximum_filter

        near_c = maximum_filter(lake_c, size=2 * r + 1, mode="constant")
        iy = np.arange(rect.y0, rect.y0 + rect.h) // f - cy0
        ix = np.arange(rect.x0, rect.x0 + rect.w) // f - cx0
        return near_c[np.ix_(iy, ix)]


#: Block size (px) of the coarse distance pass of :func:`_corridor_field` …
_BLOCK = 8
#: … and at zooms up to this one half that: there 8 blocks are wider than the corridors and
#: the exact pass near the rivers (1.5 blocks) would cover most of the rect.
_SMALL_BLOCK_ZOOM = 10


def _block(z: int) -> int:
    """Return the block size (px) of the coarse distance pass at zoom z."""
    return _BLOCK // 2 if z <= _SMALL_BLOCK_ZOOM else _BLOCK


@dataclass
class CorridorField:
    """River corridors over a rect: ``t`` distance / half-width of the nearest corridor (≥ 1
    outside), ``surface`` its river surface (NaN outside); near rivers also the k nearest river
    points of each such pixel (``rows``, ``cols``, ``t_k``, ``s_k``) so overlapping corridors
    can take the lowest."""

    t: np.ndarray
    surface: np.ndarray
    rows: np.ndarray | None = None
    cols: np.ndarray | None = None
    t_k: np.ndarray | None = None
    s_k: np.ndarray | None = None


#: Nearest river points of one class examined per pixel near rivers (confluences).
_K_NEAR = 4


def _corridor_field(
    z: int, rect: Rect, tree: cKDTree, S: np.ndarray, H: np.ndarray, hmax: float
) -> CorridorField:
    """Return the corridor field of a rect from the densified river points.

    The distance to a line is 1-Lipschitz and smooth away from it, so it is queried exactly
    only near the rivers: first at the centres of 8 × 8-pixel blocks (4 × 4 up to
    :data:`_SMALL_BLOCK_ZOOM`) aligned with the zoom’s
    global pixel grid (so every rect reads the same blocks; distances capped where no rect's
    river selection could differ), interpolated bilinearly, then exactly — the k nearest river
    points — wherever that estimate is within 1.5 blocks of a valley floor.
    """
    B = _block(z)
    px = pixel_size(z)
    kb0 = (rect.y0 - B // 2) // B
    kb1 = (rect.y0 + rect.h - 1 - B // 2) // B + 1
    kc0 = (rect.x0 - B // 2) // B
    kc1 = (rect.x0 + rect.w - 1 - B // 2) // B + 1
    brect = Rect(kb0 * B + B // 2, kc0 * B + B // 2, (kb1 - kb0) * B + 1, (kc1 - kc0) * B + 1)
    bx = mercator_x(z, brect)[::B]
    by = mercator_y(z, brect)[::B]
    bcos = np.cos(np.radians(lonlat(z, brect)[1][::B]))
    gx, gy = np.meshgrid(bx, by)
    shape_b = gx.shape
    cap = hmax + 1.5 * B * px * float(bcos.max())
    # nodes farther than the cap are capped anyway: the search may stop there (those come
    # back as inf / n; their surface is never read where t < 1, see below)
    dc, ic = tree.query(
        np.stack([gx.ravel(), gy.ravel()], 1),
        distance_upper_bound=cap / float(bcos.min()) * (1.0 + 1e-9) + 1.0,
    )
    missing = ic >= tree.n
    ic = np.minimum(ic, tree.n - 1)
    dg = np.minimum(dc.reshape(shape_b) * bcos[:, None], cap)
    hb = H[ic].reshape(shape_b)
    floor_m = VALLEY_FLOOR_M + 0.5 * px * bcos[:, None]
    tc = np.maximum(dg - floor_m, 0.0) / (hb - VALLEY_FLOOR_M)
    tc = np.where(dg >= cap, 2.0, tc)
    sc = np.where(missing, 0.0, S[ic]).reshape(shape_b)
    fy = (np.arange(rect.y0, rect.y0 + rect.h) - brect.y0) / B
    fx = (np.arange(rect.x0, rect.x0 + rect.w) - brect.x0) / B
    t = _bilinear(tc, fy, fx).astype(np.float32)
    sv = _bilinear(sc, fy, fx)
    d_est = _bilinear(dg, fy, fx)
    cos_r = np.cos(np.radians(lonlat(z, rect)[1]))
    near = d_est < VALLEY_FLOOR_M + 1.5 * B * px * cos_r[:, None]
    field = CorridorField(t, sv.astype(np.float32))
    if near.any():
        X, Y = mercator_x(z, rect), mercator_y(z, rect)
        ry, rx = np.nonzero(near)
        k = min(_K_NEAR, tree.n)
        # points beyond the corridor (t ≥ 1 for every row of the rect) cannot change anything:
        # bounding the search there lets the tree stop early (those come back as inf / n)
        bound = (float(H.max()) / float(cos_r.min()) + 0.5 * px) * (1.0 + 1e-6) + 1.0
        d, i = tree.query(np.stack([X[rx], Y[ry]], 1), k=k, distance_upper_bound=bound)
        d, i = d.reshape(len(ry), k), np.minimum(i.reshape(len(ry), k), tree.n - 1)
        d = d * cos_r[ry][:, None]
        floor_k = VALLEY_FLOOR_M + 0.5 * px * cos_r[ry][:, None]
        t_k = (np.maximum(d - floor_k, 0.0) / (H[i] - VALLEY_FLOOR_M)).astype(np.float32)
        np.minimum(t_k, 2.0, out=t_k)  # (inf beyond the bound; every use saturates at 1)
        s_k = S[i].astype(np.float32)
        j = t_k.argmin(axis=1)
        t[ry, rx] = t_k[np.arange(len(ry)), j]
        field.surface[ry, rx] = s_k[np.arange(len(ry)), j]
        field.rows, field.cols, field.t_k, field.s_k = ry, rx, t_k, s_k
    field.surface = np.where(t < 1.0, field.surface, np.nan).astype(np.float32)
    return field


def _bilinear(a: np.ndarray, fy: np.ndarray, fx: np.ndarray) -> np.ndarray:
    """Return ``a`` bilinearly interpolated at fractional rows fy × columns fx (separable),
    as two small matrix products."""

    def weights(f: np.ndarray, n: int) -> np.ndarray:
        i = np.clip(np.floor(f).astype(np.int64), 0, n - 2)
        t = f - i
        m = np.zeros((len(f), n))
        m[np.arange(len(f)), i] = 1.0 - t
        m[np.arange(len(f)), i + 1] += t
        return m

    return (weights(fy, a.shape[0]) @ np.asarray(a, np.float64)) @ weights(fx, a.shape[1]).T


def _densify_mercator(
    xy: np.ndarray, s_v: np.ndarray, step: float, box: tuple[float, float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Return points about every ``step`` Web Mercator metres along a polyline, and the surface.

    Only segments with an end in ``box`` (W, S, E, N; W > E across ±180°) are kept. Each is
    split on its own (into ceil(length / step) parts), so the points depend only on the segment
    and the zoom, whichever rect asks; segments crossing ±180° are taken the short way round.
    """
    w, s, e, n = box
    x0 = xy[:, 0]
    in_lon = ((x0 >= w) & (x0 <= e)) if w <= e else ((x0 >= w) | (x0 <= e))
    inside = in_lon & (xy[:, 1] >= s) & (xy[:, 1] <= n)
    keep = inside[:-1] | inside[1:]
    if not keep.any():
        return np.zeros((0, 2)), np.zeros(0, np.float32)
    lon = np.degrees(np.unwrap(np.radians(x0)))
    lon_w = (lon + 180.0) % 360.0 - 180.0
    mx, my = to_mercator(lon_w, xy[:, 1])
    mx = mx + (lon - lon_w) / 360.0 * 2 * HALF_WORLD  # unwrapped past ±180°: continue
    seg = np.hypot(np.diff(mx), np.diff(my))
    k = np.where(keep, np.maximum(np.ceil(seg / step).astype(np.int64), 1), 0)
    idx = np.repeat(np.arange(len(seg)), k)
    frac = (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k)) / np.repeat(k, k)
    # each kept segment's own points, plus its far end
    ends = np.flatnonzero(keep) + 1
    px = np.concatenate([mx[idx] + np.diff(mx)[idx] * frac, mx[ends]])
    py = np.concatenate([my[idx] + np.diff(my)[idx] * frac, my[ends]])
    sv = np.concatenate([s_v[idx] + np.diff(s_v)[idx] * frac, s_v[ends]])
    return np.stack([px, py], 1), sv.astype(np.float32)


#: The coarsest octaves are evaluated on rotated lattices (cubic B-spline of the lattice values
#: at rotated coordinates): value noise on the axis-aligned tile lattice shows its square cells
#: at the scales where the detail is largest; the finer, fainter octaves stay axis-aligned and
#: separable (4× cheaper).
ROTATED_OCTAVES = 4
#: Standard deviation and mean |n| of each octave kind, normalised in :func:`_octave`.
_STATS: dict[str, float] = {}


def _rotated_noise(seed: int, level: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Return smooth value noise of lattice ``level`` on a lattice rotated by a level's angle:
    the cubic B-spline of the lattice values (no prefilter) at the rotated coordinates of the
    grid u (columns) × v (rows), both 1-D; a grid across the antimeridian piece by piece
    (:func:`.fractal.runs`)."""
    if len(pieces := fractal.runs(u)) > 1:
        return np.concatenate([_rotated_noise(seed, level, u[p], v) for p in pieces], axis=1)
    n = float(1 << level)
    ang = 0.61803398875 * 2.0 * np.pi * (level + 1)
    c, s = np.cos(ang), np.sin(ang)
    x, y = u * n, v * n
    # extremes of x·c − y·s and x·s + y·c over the grid (separable: one axis each)
    xc, ys_, xs, yc = x * c, y * s, x * s, y * c
    i0 = int(np.floor(xc.min() - ys_.max())) - 2
    i1 = int(np.ceil(xc.max() - ys_.min())) + 3
    j0 = int(np.floor(xs.min() + yc.min())) - 2
    j1 = int(np.ceil(xs.max() + yc.max())) + 3
    lat = fractal.hash_uniform(
        seed ^ 0x5EED, level, np.arange(i0, i1)[None, :], np.arange(j0, j1)[:, None]
    ).astype(np.float32)
    return _bspline_rotated(
        np.ascontiguousarray(x, np.float64), np.ascontiguousarray(y, np.float64), c, s, i0, j0, lat
    )


@njit(cache=True, nogil=True)
def _bspline_rotated(x, y, c, s, i0, j0, lat):  # pragma: no cover (compiled)
    """Cubic B-spline (the ``scipy.ndimage.map_coordinates(order=3, prefilter=False)``
    kernel, edges clamped) of ``lat`` at (x·c − y·s − i0, x·s + y·c − j0) for every row y and
    column x: compiled, a quarter of map_coordinates' cost, as it needs no coordinate arrays."""
    h, w = y.shape[0], x.shape[0]
    hl, wl = lat.shape
    out = np.empty((h, w), np.float32)
    wx = np.empty(4)
    wy = np.empty(4)
    for r in range(h):
        for k in range(w):
            px = x[k] * c - y[r] * s - i0
            py = x[k] * s + y[r] * c - j0
            fx = np.floor(px)
            fy = np.floor(py)
            tx = px - fx
            ty = py - fy
            wx[0] = (1.0 - tx) ** 3 / 6.0
            wx[1] = (3.0 * tx**3 - 6.0 * tx**2 + 4.0) / 6.0
            wx[2] = (-3.0 * tx**3 + 3.0 * tx**2 + 3.0 * tx + 1.0) / 6.0
            wx[3] = tx**3 / 6.0
            wy[0] = (1.0 - ty) ** 3 / 6.0
            wy[1] = (3.0 * ty**3 - 6.0 * ty**2 + 4.0) / 6.0
            wy[2] = (-3.0 * ty**3 + 3.0 * ty**2 + 3.0 * ty + 1.0) / 6.0
            wy[3] = ty**3 / 6.0
            cx = int(fx) - 1
            cy = int(fy) - 1
            acc = 0.0
            for a in range(4):
                rr = min(max(cy + a, 0), hl - 1)
                row = 0.0
                for b in range(4):
                    cc = min(max(cx + b, 0), wl - 1)
                    row += wx[b] * lat[rr, cc]
                acc += wy[a] * row
            out[r, k] = acc
    return out


def _octave(seed: int, level: int, u: np.ndarray, v: np.ndarray, rotated: bool) -> np.ndarray:
    """Return one octave of unit standard deviation (rotated or separable value noise).

    The rotated lattice does not wrap at the antimeridian, so within 1 % of the world width of
    u = 1 it is cross-faded with its value at u − 1 (seamless across ±180°).
    """
    if not _STATS:
        _measure_stats()
    if not rotated:
        return fractal.value_noise(seed, level, u, v) / _STATS["sep_std"]
    out = _rotated_noise(seed, level, u, v)
    wrap = u > 0.99
    if wrap.any():
        w = smoothstep((u[wrap] - 0.99) / 0.01)[None, :]
        other = _rotated_noise(seed, level, u[wrap] - 1.0, v)
        out[:, wrap] = out[:, wrap] * (1.0 - w) + other * w
    return out / _STATS["rot_std"]


#: A rotated octave is evaluated exactly on nodes every cell / this many pixels (aligned with
#: the zoom's global pixel grid, so every rect reads the same nodes) and interpolated
#: bilinearly between them: the cubic B-spline is smooth at that scale (measured: at most
#: 0.6 % of the octave's standard deviation; 2.5 % with 8 nodes a cell), and it is most of
#: the detail's cost at fine zooms otherwise.
COARSE_NODES_PER_CELL = 16


def _lerp_nodes(p0: int, n: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the global node pixels (every ``step``) around pixels p0 … p0 + n − 1, and the
    (n, nodes) linear interpolation matrix from them."""
    k0 = p0 // step
    k1 = (p0 + n - 1) // step + 1
    q = np.arange(k0, k1 + 1) * step
    f = (np.arange(p0, p0 + n) - k0 * step) / step
    i = np.minimum(np.floor(f).astype(np.int64), len(q) - 2)
    t = (f - i).astype(np.float32)
    m = np.zeros((n, len(q)), np.float32)
    m[np.arange(n), i] = 1.0 - t
    m[np.arange(n), i + 1] += t
    return q, m


def _octave_rect(seed: int, level: int, z: int, rect: Rect, rotated: bool) -> np.ndarray:
    """Return :func:`_octave` over a rect of zoom z; rotated octaves whose cells span ≥ 32 px
    on nodes every cell / :data:`COARSE_NODES_PER_CELL` px, interpolated (see there)."""
    cell = 1 << max(z + 8 - level, 0)
    step = cell // COARSE_NODES_PER_CELL
    if not rotated or step < 2:
        u, v = fractal.uv(z, rect)
        return _octave(seed, level, u, v, rotated)
    w = grid_width(z)
    qx, mx = _lerp_nodes(rect.x0, rect.w, step)
    qy, my = _lerp_nodes(rect.y0, rect.h, step)
    nodes = _octave(seed, level, ((qx % w) + 0.5) / w, (qy + 0.5) / w, rotated)
    return (my @ nodes.astype(np.float32)) @ mx.T


def _fade_matrix(f: np.ndarray) -> tuple[int, np.ndarray]:
    """Return (first lattice index, the (n, lattice points) quintic-fade interpolation matrix)
    of fractional lattice coordinates ``f`` (one axis of :func:`.fractal.value_noise`), float32."""
    i = np.floor(f).astype(np.int64)
    s = fractal._fade(f - i).astype(np.float32)
    k0 = int(i.min())
    m = np.zeros((len(f), int(i.max()) - k0 + 2), np.float32)
    j = i - k0
    m[np.arange(len(f)), j] = 1.0 - s
    m[np.arange(len(f)), j + 1] = s
    return k0, m


def fbm_rows(
    seed: int, u: np.ndarray, v: np.ndarray, levels: range, gain: float = 0.5
) -> np.ndarray:
    """Return :func:`.fractal.fbm` (not ridged) on the separable grid u × v (1-D), float32.

    The same lattices and quintic fade, to float32 rounding (≈ 1e-6 of the amplitude): an
    octave is ``My · L · Mxᵀ`` (lattice values L, the fade weights of rows and columns as
    matrices with two entries a row), so the whole sum is one matrix product
    ``[My₁ … Myₙ] · [a₁L₁Mx₁ᵀ; …; aₙLₙMxₙᵀ]`` — a few BLAS calls instead of four gathers and a
    lerp per pixel and octave (≈ 6× faster for 8 octaves at 256²), in float32 (half the cost of
    float64 products). A grid across the antimeridian goes piece by piece
    (:func:`.fractal.runs`): its fade matrix would span the world's width.
    """
    if len(pieces := fractal.runs(u)) > 1:
        return np.concatenate([fbm_rows(seed, u[p], v, levels, gain) for p in pieces], axis=1)
    ys, rs = [], []
    amp = 1.0
    for lv in levels:
        n = 1 << lv
        kx, mx = _fade_matrix(u * n)
        ky, my = _fade_matrix(v * n)
        lx = np.arange(kx, kx + mx.shape[1])
        ly = np.arange(ky, ky + my.shape[1])
        lat = fractal.hash_uniform(seed, lv, (lx % n)[None, :], ly[:, None])
        ys.append(my)
        rs.append((amp * lat).astype(np.float32) @ mx.T)
        amp *= gain
    if not ys:
        return np.zeros((len(v), len(u)), np.float32)
    return np.hstack(ys) @ np.vstack(rs)


def _measure_stats() -> None:
    """Measure each octave kind's std and mean |n| once on a fixed sample (deterministic)."""
    u = 0.3 + np.arange(1024) / 2.0**20
    v = 0.4 + np.arange(1024) / 2.0**20
    sep = fractal.value_noise(777, 18, u, v)
    rot = _rotated_noise(777, 18, u, v)
    _STATS["sep_std"], _STATS["rot_std"] = float(sep.std()), float(rot.std())
    _STATS["sep"] = float(np.mean(np.abs(sep / sep.std())))
    _STATS["rot"] = float(np.mean(np.abs(rot / rot.std())))


def profile_digest(xy: np.ndarray) -> str:
    """Return a short digest of a polyline (for benches that report per-river results)."""
    return hashlib.sha256(np.ascontiguousarray(xy, np.float64).tobytes()).hexdigest()[:12]
