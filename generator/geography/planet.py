"""The ``planet`` geography: water, rivers, relief and land cover made from the seed.

It starts from the very fields the base level is coloured with (:meth:`ContinentsBase.fields`),
so the layers agree with the base imagery: sea wherever the base height is below zero, ice and
desert and bare rock by the palette's own thresholds. At the base zoom and above (coarser) the
layers are those fields (exact, or the mean of the base pixels under a coarse pixel); below it
the fields are interpolated with a cubic B-spline and gain fractal detail from
:mod:`.fractal`'s world noise whose amplitude is tied to the local slope of the height field,
so coastlines become fractal but move less than a base pixel.

* **elevation** (m): a hypsometric curve of the base height (most land below 1000 m, shelves
  near the coasts, −4 km abyssal plains), hills, and ridged mountain ranges (ridged fbm) masked
  by a low-frequency "orogeny" field of belts; valleys carved along the rivers. Coarser than
  the base zoom it is the exact mean of the base-zoom elevation.
* **rivers**: routed once on a coarse grid (:mod:`.planet_rivers`, pyflwdir), cached in
  :func:`~.source.data_cache_dir` keyed by seed and version; drawn at every zoom as anti-aliased
  lines whose width grows with Strahler order, meandered by a domain warp of world noise; the
  elevation of a river pixel is the river bed, non-increasing downstream.
* **landcover**: temperature from latitude and a lapse rate, dryness exactly as the base
  palette computes it, the palette's ice and rock thresholds, plus a snow line, tree line,
  wetlands and cropland; class boundaries gain fractal noise below the base resolution.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt, grey_dilation

from ..base import ContinentsBase
from ..planner import Rect
from . import classes
from .grid import grid_width, lonlat, pixel_size, tile_rect
from .planet_noise import (
    GlobalGrid,
    block_mean,
    detail_levels,
    fbm_rect,
    fbm_uv,
    ridged_multifractal,
    rotated_fbm,
)
from .planet_rivers import BUCKET, VALLEY_CELLS, Network, carve, query, route
from .source import data_cache_dir

log = logging.getLogger(__name__)

#: bump when a change alters layer values (part of :attr:`PlanetGeography.identity`)
VERSION = "12"

#: coast detail amplitude in units of the height field's slope per base pixel: the coast moves
#: by at most about this many base pixels
COAST_K = 0.8
#: levels of detail below the base pixel before octaves stop (cost cap; ~z14 at base zoom 4)
DETAIL_OCTAVES = 9
#: octaves of relief below the base pixel (~z13 at base zoom 4: finer relief is the model's)
TERRAIN_OCTAVES = 9
#: octaves of moisture/temperature detail below the base pixel
CLIMATE_OCTAVES = 6
#: ridge warp amplitude (u/v units: about half a cell of the first ridge octave at base zoom 4)
RIDGE_WARP = 0.5 / 512
#: temperature lapse rate (°C per m) and the snow line temperature
LAPSE = 0.0065
SNOW_T = -13.0
#: how far below its pour level the ground must be, per squared cell of distance from the deep
#: fill's cells, to be lake
LAKE_RIM_M = 200.0


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _dryness(moist: np.ndarray, alat: np.ndarray) -> np.ndarray:
    """The base palette's dryness (generator.base.ContinentsBase._colour): desert above 0.75."""
    return np.clip(0.38 - 0.35 * moist + 0.2 * np.exp(-(((alat - 25) / 12) ** 2)), 0, 1)


def _width_m(order: np.ndarray) -> np.ndarray:
    """River width (m) by Strahler order: ~40 m brooks to ~2 km great rivers."""
    return 40.0 * 2.2 ** (np.maximum(order, 1).astype(np.float32) - 1.0)


def _valley_cells(order: np.ndarray) -> np.ndarray:
    """Valley half-width (routing cells) by Strahler order."""
    return np.minimum(0.35 + 0.2 * order.astype(np.float32), VALLEY_CELLS)


@dataclass
class _Fields:
    h: np.ndarray  # base height (N×N)
    sea: np.ndarray  # bool, h < 0
    moist: np.ndarray
    h_grid: GlobalGrid
    moist_grid: GlobalGrid
    slope_grid: GlobalGrid  # |∇h| per base pixel


class PlanetGeography:
    """The layers of a ``planet`` world (see the module docstring)."""

    def __init__(self, seed: int, base_zoom: int = 4, base: ContinentsBase | None = None) -> None:
        """``base``: the world's own base level, to share its fields (else one is made)."""
        self.seed = seed
        self.base_zoom = base_zoom
        if base is not None and (base.seed, base.zoom) != (seed, base_zoom):
            raise ValueError("the base level is of another seed or zoom")
        self.base = base if base is not None else ContinentsBase(seed, base_zoom)
        self.identity: dict[str, object] = {
            "kind": "planet",
            "version": VERSION,
            "seed": seed,
            "base_zoom": base_zoom,
        }
        self._lock = threading.RLock()
        self._fields: _Fields | None = None
        self._net: Network | None = None
        self._net_grids: tuple[GlobalGrid, GlobalGrid, GlobalGrid] | None = None
        self._elev_base: np.ndarray | None = None
        self._coarse: tuple[GlobalGrid, GlobalGrid, GlobalGrid] | None = None
        self._memo: OrderedDict[tuple, dict] = OrderedDict()

    # ---------------------------------------------------------------- shared lazy state

    def _seed(self, k: int) -> int:
        return (self.seed * 0x9E3779B1 + k * 0x85EBCA77 + 0x5EED) & 0xFFFFFFFFFFFFFFFF

    @property
    def fields(self) -> _Fields:
        """The base level's fields and their interpolators (made once)."""
        with self._lock:
            if self._fields is None:
                f = self.base.fields()
                h = f.height
                gx = (np.roll(h, -1, axis=1) - np.roll(h, 1, axis=1)) / 2
                gy = np.gradient(h, axis=0)
                self._fields = _Fields(
                    h=h,
                    sea=h < 0,
                    moist=f.moisture,
                    h_grid=GlobalGrid(h, 3),
                    moist_grid=GlobalGrid(f.moisture, 3),
                    slope_grid=GlobalGrid(np.hypot(gx, gy).astype(np.float32), 1),
                )
            return self._fields

    @property
    def network(self) -> Network:
        """The routed river network (built once per seed, cached on disk)."""
        with self._lock:
            if self._net is None:
                self._net = self._load_or_route()
                net = self._net
                self._hw_m = (_width_m(net.order) / 2.0).astype(np.float64)
                self._valley_c = _valley_cells(net.order)
                # lakes: the distance (cells) from the deep fills' cells, and the fill's
                # surface level spread two cells around them
                lake = net.lake > 0
                p = 4
                dist = distance_transform_edt(
                    ~np.concatenate([lake[:, -p:], lake, lake[:, :p]], axis=1)
                )[:, p:-p]
                level = grey_dilation(np.where(lake, net.lake_level, -1e4), (5, 5), mode="wrap")
                self._net_grids = (
                    GlobalGrid(dist.astype(np.float32), 1),
                    GlobalGrid(np.where(dist <= 2.0, level, -1e4).astype(np.float32), 0),
                    GlobalGrid(net.shore_cells, 1),
                )
            return self._net

    @property
    def routing_zoom(self) -> int:
        """The zoom whose pixel grid the rivers are routed on (one coarser than the base)."""
        return self.base_zoom - 1

    def _cache_path(self):
        key = f"planet-rivers-v{VERSION}-seed{self.seed}-z{self.base_zoom}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return data_cache_dir() / f"{key}-{digest}.npz"

    def _load_or_route(self) -> Network:
        path = self._cache_path()
        m = grid_width(self.routing_zoom)
        if path.exists():
            try:
                with np.load(path) as z:
                    return Network.from_arrays(m, dict(z))
            except Exception:  # corrupt or stale: rebuild
                log.warning("planet: rebuilding corrupt river cache %s", path)
        log.info("planet: routing rivers for seed %d (once; cached in %s)", self.seed, path)
        net = self._route()
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp.npz")
        np.savez(tmp, **net.arrays())
        os.replace(tmp, path)
        return net

    def _route(self) -> Network:
        zr = self.routing_zoom
        m = grid_width(zr)
        dem = np.empty((m, m), np.float32)
        ocean = np.empty((m, m), bool)
        n_t = m // 256
        for ty in range(n_t):
            for tx in range(n_t):
                r = tile_rect(zr, tx, ty)
                h = self._height(zr, r)
                dem[r.y0 : r.y0 + 256, r.x0 : r.x0 + 256] = self._terrain(zr, r, h)
                ocean[r.y0 : r.y0 + 256, r.x0 : r.x0 + 256] = h < 0
        _, lat = lonlat(zr, Rect(0, 0, m, 1))
        cell_km2 = (pixel_size(zr) * np.cos(np.radians(lat)) / 1000.0) ** 2
        moist = block_mean(self.fields.moist, zr, Rect(0, 0, m, m))
        dry = _dryness(moist, np.abs(lat).astype(np.float32)[:, None])
        u = (np.arange(m) + 0.5) / m
        wiggle = fbm_uv(self._seed(13), u, u, range(int(np.log2(m)) - 4, int(np.log2(m)) - 1))
        return route(dem, ocean, cell_km2, (dry < 0.6) & (dem < 2000.0), wiggle)

    # ---------------------------------------------------------------- per-rect fields

    def _height(self, z: int, rect: Rect) -> np.ndarray:
        """Base height field at zoom z: block mean above the base, spline + detail below."""
        f = self.fields
        b = self.base_zoom
        if z <= b:
            return block_mean(f.h, z, rect)
        h = f.h_grid.sample(z, rect)
        lv = detail_levels(b + 9, z, b + 8 + DETAIL_OCTAVES)
        if len(lv):
            amp = COAST_K * f.slope_grid.sample(z, rect)
            h = h + amp * fbm_rect(self._seed(1), z, rect, lv, gain=0.5)
        return h

    def _moisture(self, z: int, rect: Rect) -> np.ndarray:
        f = self.fields
        b = self.base_zoom
        if z <= b:
            return block_mean(f.moist, z, rect)
        m = f.moist_grid.sample(z, rect)
        lv = detail_levels(b + 9, z, b + 8 + CLIMATE_OCTAVES)
        if len(lv):
            m = m + 0.25 * fbm_rect(self._seed(2), z, rect, lv, gain=0.6)
        return m

    @property
    def coarse(self) -> tuple[GlobalGrid, GlobalGrid, GlobalGrid]:
        """Continent-scale fields on the routing grid (orogeny belts, ridge warp u and v).

        They vary over many routing cells, so a cubic spline of the grid is as good as the
        noise itself, and a pixel pays for three spline samples instead of eleven octaves.
        """
        with self._lock:
            if self._coarse is None:
                zr = self.routing_zoom
                m = grid_width(zr)
                grids = [np.empty((m, m), np.float32) for _ in range(3)]
                for ty in range(m // 256):
                    for tx in range(m // 256):
                        r = tile_rect(zr, tx, ty)
                        sl = np.s_[r.y0 : r.y0 + 256, r.x0 : r.x0 + 256]
                        belt_n = rotated_fbm(self._seed(4), zr, r, range(4, 7), gain=0.5)
                        belt = _smoothstep(0.0, 1.0, 1.0 - np.abs(belt_n) / 0.3)
                        ranges = rotated_fbm(self._seed(12), zr, r, range(6, 8), gain=0.5)
                        grids[0][sl] = belt * _smoothstep(-0.15, 0.25, ranges)
                        for k in (1, 2):
                            lv = range(self.base_zoom + 4, self.base_zoom + 7)
                            grids[k][sl] = rotated_fbm(self._seed(13 + k), zr, r, lv, 0.5)
                self._coarse = tuple(GlobalGrid(g, 3) for g in grids)
            return self._coarse

    def _terrain(self, z: int, rect: Rect, h: np.ndarray) -> np.ndarray:
        """Elevation (m) before the rivers: hypsometry, hills, ranges, shelves and abyss."""
        b = self.base_zoom
        top = b + 8 + TERRAIN_OCTAVES
        hp = np.maximum(h, 0.0)
        hyps = 450.0 * hp + 380.0 * hp * hp
        hills = rotated_fbm(self._seed(3), z, rect, detail_levels(b + 5, z, top), gain=0.5)
        land = hyps * np.clip(1.0 + 0.3 * hills, 0.4, 1.6)
        # orogeny: belts along the zero lines of a continent-scale field, broken into distinct
        # ranges by a second field, plus the highlands of the base (its rock)
        belt_g, wu_g, wv_g = self.coarse
        mask = np.clip(belt_g.sample(z, rect) + 0.6 * _smoothstep(1.8, 2.6, h), 0.0, 1.0)
        mask *= _smoothstep(0.0, 0.35, h)
        ridge = np.zeros_like(h)
        if mask.max() > 0:
            # ridges bent by a warp of about one range's width, so they branch and curve
            warp = (RIDGE_WARP * wu_g.sample(z, rect), RIDGE_WARP * wv_g.sample(z, rect))
            lv = detail_levels(b + 6, z, top)
            ridge = ridged_multifractal(self._seed(5), z, rect, lv, warp=warp)
        mountains = mask * np.clip(ridge / 1.1, 0.0, 1.2) ** 2 * 4000.0
        land = land + mountains
        # a soft ceiling: the highest summits of the highest plateaus stay below ~8.5 km
        land = np.maximum(land / np.sqrt(1.0 + (land / 9000.0) ** 2), 0.5)
        if h.min() >= 0:
            return land.astype(np.float32)
        d = np.maximum(-h, 0.0)
        sea = np.interp(d, [0.0, 0.08, 0.3, 1.5, 3.0], [-5.0, -150.0, -3600.0, -4600.0, -6500.0])
        abyss = fbm_rect(self._seed(6), z, rect, detail_levels(b + 6, z, b + 11), gain=0.5)
        sea = np.minimum(sea + 250.0 * abyss * _smoothstep(0.25, 0.6, d), -1.0)
        return np.where(h >= 0, land, sea).astype(np.float32)

    def _river_query(self, z: int, rect: Rect) -> dict[str, np.ndarray]:
        """Nearest river segment of each pixel's meandered position, with coverage and bed."""
        net = self.network
        m = net.m
        w = grid_width(z)
        s = m / w  # routing cells per pixel
        rows = np.clip(np.arange(rect.y0, rect.y0 + rect.h), 0, w - 1)
        cols = np.arange(rect.x0, rect.x0 + rect.w) % w
        qx = np.broadcast_to(((cols + 0.5) * s - 0.5)[None, :], (rect.h, rect.w)).astype(np.float64)
        qy = np.broadcast_to(((rows + 0.5) * s - 0.5)[:, None], (rect.h, rect.w)).astype(np.float64)
        lr = int(np.log2(m))  # lattice level whose cell is one routing cell
        lv = detail_levels(lr + 1, z, lr + 7)
        if len(lv):
            from . import fractal

            u, v = fractal.uv(z, rect)
            qx = qx + 0.22 * fbm_uv(self._seed(7), u, v, lv, gain=0.4)
            qy = qy + 0.22 * fbm_uv(self._seed(8), u, v, lv, gain=0.4)
        lat = self._get(z, rect, "lat")
        cell_m = pixel_size(z) / s * np.cos(np.radians(lat))
        hw_m = self._hw_m
        dist, seg, t = query(
            np.ascontiguousarray(qx),
            np.ascontiguousarray(qy),
            (1.0 / cell_m).astype(np.float64),
            net.x0,
            net.y0,
            net.x1,
            net.y1,
            hw_m.astype(np.float64),
            net.bstart,
            net.bitems,
            m,
            BUCKET,
            VALLEY_CELLS,
        )
        has = seg >= 0
        sg = np.where(has, seg, 0)
        hw_px = np.where(has, hw_m[sg] / cell_m[:, None] / s, 0.0)  # half width in pixels
        d_px = np.where(has, dist / s, np.inf)
        wpx = 2.0 * hw_px
        cov = np.minimum(wpx, 1.0) * np.clip(np.maximum(wpx, 1.0) / 2 + 0.5 - d_px, 0.0, 1.0)
        bed = np.where(has, net.bed0[sg] + t * (net.bed1[sg] - net.bed0[sg]), 0.0)
        # valley weight: 1 on the water, falling to 0 at the valley's edge
        hw_c = np.where(has, hw_m[sg] / cell_m[:, None], 0.0)
        vw_c = self._valley_c[sg]
        sv = np.clip((dist - hw_c) / np.maximum(vw_c - hw_c, 1e-3), 0.0, 1.0)
        valley = np.where(has, (1.0 - sv) ** 2, 0.0)
        on_river = has & (dist <= np.maximum(hw_c, 0.5 * s))
        return {
            "cov": cov.astype(np.float32),
            "bed": bed.astype(np.float32),
            "valley": valley.astype(np.float32),
            "on_river": on_river,
            "seg": seg,
            "t": t,
            "q": (np.ascontiguousarray(qx), np.ascontiguousarray(qy), 1.0 / cell_m),
        }

    def _state(self, z: int, rect: Rect) -> dict:
        """Every field of one (z, rect), computed once (layers share them; memo of 16)."""
        key = (z, tuple(rect))
        with self._lock:
            st = self._memo.get(key)
            if st is not None:
                self._memo.move_to_end(key)
                return st
        st = {}
        with self._lock:
            self._memo[key] = st
            while len(self._memo) > 16:
                self._memo.popitem(last=False)
        return st

    def _get(self, z: int, rect: Rect, name: str) -> np.ndarray:
        st = self._state(z, rect)
        if name not in st:
            st[name] = getattr(self, f"_make_{name}")(z, rect, st)
        return st[name]

    def _make_lat(self, z, rect, st):
        return lonlat(z, rect)[1]

    def _make_h(self, z, rect, st):
        return self._height(z, rect)

    def _make_rq(self, z, rect, st):
        return self._river_query(z, rect)

    def _make_terrain(self, z, rect, st):
        return self._terrain(z, rect, self._get(z, rect, "h"))

    def _make_lake(self, z, rect, st):
        """Lakes fill the deep depressions up to their pour level: shores follow the terrain."""
        _ = self.network  # routes (or loads) once, sets the network grids
        dist_g, level_g, _ = self._net_grids
        level = level_g.sample(z, rect)
        lake = level > -1e3
        if lake.any():
            # outside the fill's cells the ground must lie ever further below the level, so a
            # shore never reaches the edge of the region the level is spread over
            d = dist_g.sample(z, rect)
            lake &= self._get(z, rect, "terrain") < level - LAKE_RIM_M * d * d
        return lake & (self._get(z, rect, "h") >= 0)

    def _make_kind(self, z, rect, st):
        b = self.base_zoom
        if z < b:
            sea = block_mean(self.fields.sea, z, rect) >= 0.5
        else:
            sea = self._get(z, rect, "h") < 0
        kind = np.full(sea.shape, classes.LAND, np.uint8)
        kind[self._get(z, rect, "lake")] = classes.LAKE
        kind[sea] = classes.OCEAN
        return kind

    def _make_elev(self, z, rect, st):
        b = self.base_zoom
        if z < b:
            return block_mean(self._elevation_base(), z, rect)
        e = self._get(z, rect, "terrain")
        rq = self._get(z, rect, "rq")
        kind = self._get(z, rect, "kind")
        land = kind != classes.OCEAN
        net = self.network
        qx, qy, cpm = rq["q"]
        carved = carve(
            np.ascontiguousarray(e, np.float32),
            qx,
            qy,
            cpm.astype(np.float64),
            net.x0,
            net.y0,
            net.x1,
            net.y1,
            self._hw_m,
            self._valley_c.astype(np.float64),
            net.bed0,
            net.bed1,
            net.bstart,
            net.bitems,
            net.m,
            BUCKET,
        )
        # the water itself: the bed of its own river, non-increasing downstream
        carved = np.where(rq["on_river"], rq["bed"], carved)
        e = np.where(land, np.maximum(carved, 0.0), e)
        _, level_g, _ = self._net_grids
        lake = kind == classes.LAKE
        if lake.any():
            e = np.where(lake, np.maximum(level_g.sample(z, rect), 0.0), e)
        else:
            e = e.copy()
        return e.astype(np.float32)

    def _elevation_base(self) -> np.ndarray:
        """The whole base zoom's elevation (for coarser zooms' exact means), made once."""
        with self._lock:
            if self._elev_base is None:
                b = self.base_zoom
                n = grid_width(b)
                out = np.empty((n, n), np.float32)
                for ty in range(n // 256):
                    for tx in range(n // 256):
                        r = tile_rect(b, tx, ty)
                        out[r.y0 : r.y0 + 256, r.x0 : r.x0 + 256] = self._make_elev(b, r, {})
                self._elev_base = out
            return self._elev_base

    # ---------------------------------------------------------------- the protocol

    def water(self, z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
        """See :class:`~.source.GeographySource`."""
        kind = self._get(z, rect, "kind")
        return kind.copy(), self._get(z, rect, "dist").copy()

    def _make_dist(self, z, rect, st):
        _ = self.network  # routes (or loads) once, sets the network grids
        f = self.fields
        _, _, shore_g = self._net_grids
        b = self.base_zoom
        base_px = float(2 ** (b - z)) if z < b else 1.0 / 2 ** (z - b)  # base px per pixel
        edt = np.abs(shore_g.sample(z, rect)) * (f.h.shape[1] / self.network.m)  # base px
        h = self._get(z, rect, "h")
        slope = np.maximum(f.slope_grid.sample(z, rect), 1e-3)
        lin = np.minimum(np.abs(h) / slope, 4.0)
        wgt = np.clip((edt - 2.0) / 2.0, 0.0, 1.0)
        mag = (1 - wgt) * lin + wgt * edt
        lat = self._get(z, rect, "lat")
        metres = pixel_size(b) * np.cos(np.radians(lat))[:, None]
        mag = np.maximum(mag * metres, 0.5 * base_px * metres)
        water = self._get(z, rect, "kind") != classes.LAND
        return np.where(water, mag, -mag).astype(np.float32)

    def rivers(self, z: int, rect: Rect) -> np.ndarray:
        """See :class:`~.source.GeographySource`."""
        rq = self._get(z, rect, "rq")
        return np.where(self._get(z, rect, "kind") == classes.OCEAN, 0.0, rq["cov"]).astype(
            np.float32
        )

    def elevation(self, z: int, rect: Rect) -> np.ndarray:
        """See :class:`~.source.GeographySource`."""
        return self._get(z, rect, "elev").copy()

    def landcover(self, z: int, rect: Rect) -> np.ndarray:
        """See :class:`~.source.GeographySource`."""
        return self._get(z, rect, "lc").copy()

    def _make_lc(self, z, rect, st):
        b = self.base_zoom
        h = self._get(z, rect, "h")
        e = self._get(z, rect, "elev")
        m = self._moisture(z, rect)
        lat = self._get(z, rect, "lat")
        alat = np.abs(lat).astype(np.float32)[:, None]
        # the base palette's own dryness, ice and rock (generator.base.ContinentsBase._colour)
        dry = _dryness(m, alat)
        temp = 27.0 - 0.0085 * alat**2 - LAPSE * np.maximum(e, 0.0)
        lv = detail_levels(b + 9, z, b + 8 + CLIMATE_OCTAVES)
        if len(lv):
            n = fbm_rect(self._seed(10), z, rect, lv, gain=0.6)
            dry = dry + 0.06 * n
            temp = temp + 2.0 * n
        patch = fbm_rect(self._seed(11), z, rect, detail_levels(b + 7, z, b + 11), gain=0.6)
        lc = np.full(h.shape, classes.GRASSLAND, np.uint8)
        forest = np.where(
            temp >= 20,
            classes.TROPICAL,
            np.where(temp >= 6, classes.BROADLEAF, classes.NEEDLELEAF),
        ).astype(np.uint8)
        lc = np.where(dry <= 0.3, forest, lc)
        crop = (dry > 0.22) & (dry < 0.55) & (temp > 4) & (temp < 24) & (e < 1200) & (patch > 0.2)
        lc = np.where(crop, classes.CROPLAND, lc)
        lc = np.where((dry > 0.6) & (temp > 8), classes.SHRUBLAND, lc)
        lc = np.where(dry > 0.75, classes.DESERT, lc)
        wet = (dry < 0.3) & (e < 40) & (patch < -0.25) & (temp > 0)
        lc = np.where(wet, classes.WETLAND, lc)
        lc = np.where((temp < -4) & (dry <= 0.75), classes.TUNDRA, lc)
        lc = np.where((h > 2.2) | ((temp < -7) & (e > 1500)), classes.ROCK, lc)
        ice = ((alat - 74 + 4 * h) / 4 > 0.5) | (temp < SNOW_T)
        lc = np.where(ice, classes.ICE, lc)
        water = self._get(z, rect, "kind") != classes.LAND
        if z >= b:
            water = water | (self._get(z, rect, "rq")["cov"] >= 0.5)
        lc = np.where(water, classes.WATER, lc)
        return lc.astype(np.uint8)
