"""The ``planet``'s drainage network: routed once on a coarse world grid, queried per pixel.

Routing uses pyflwdir (Deltares, MIT): depressions of the coarse elevation are filled with
ocean cells as outlets (``fill_depressions(outlets="edge")``, Wang & Liu 2006), which gives D8
flow directions; upstream area is the flux of the cells' ground areas, stream order is
Strahler's. Cells whose upstream area passes a threshold are rivers; each river cell is one
straight segment to its downstream cell, so the network is a set of polylines (chains of
segments) that run to the sea; deep fills are lakes. x wraps: the grid is routed with a quarter
of the world's width of wrapped columns on each side, and basins that drain to the padding's
cut edge (or the polar rows) are dropped.

Per pixel, a compiled (numba) query finds the segment nearest to the pixel's meandered
position — segments are bucketed on a coarse grid, each bucket listing every segment within the
valley radius, so a pixel looks at one bucket and the answer never depends on the rect.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numba import njit

log = logging.getLogger(__name__)

#: upstream area (km²) from which a cell is a river
RIVER_AREA_KM2 = 2500.0
#: fill depth (m) from which a filled depression is a lake
LAKE_DEPTH_M = 120.0
#: smallest lake (routing cells)
LAKE_CELLS = 6
#: valley radius (routing cells) beyond which a pixel is "no river"
VALLEY_CELLS = 1.3
#: bucket size (routing cells) of the segment index
BUCKET = 2


@dataclass
class Network:
    """The routed network on an M×M Web Mercator grid (cell (i, j) centred on pixel centre)."""

    m: int
    #: segment ends in grid cells (x may leave [0, m) across the antimeridian)
    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    #: river bed elevation (m) at both ends, non-increasing downstream
    bed0: np.ndarray
    bed1: np.ndarray
    #: Strahler order and upstream area (km²) of each segment
    order: np.ndarray
    upa: np.ndarray
    #: index of the downstream segment, −1 at a mouth
    down: np.ndarray
    #: M×M lake mask (1 lake) and lake surface level (m, where lake)
    lake: np.ndarray
    lake_level: np.ndarray
    #: M×M signed distance to ocean or lake (cells; + water, − land)
    shore_cells: np.ndarray
    #: bucket index (CSR) of the segments
    bstart: np.ndarray
    bitems: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """Return the arrays to store (everything but ``m``)."""
        return {k: v for k, v in self.__dict__.items() if k != "m"}

    @classmethod
    def from_arrays(cls, m: int, arrays: dict[str, np.ndarray]) -> Network:
        """Rebuild from :meth:`arrays`."""
        return cls(m=m, **{k: np.asarray(arrays[k]) for k in cls.__dataclass_fields__ if k != "m"})


def route(
    dem: np.ndarray,
    ocean: np.ndarray,
    cell_km2: np.ndarray,
    lake_ok: np.ndarray,
    wiggle: np.ndarray,
) -> Network:
    """Route a coarse world DEM (M×M, metres; ``ocean`` True at sea; ``cell_km2`` per row).

    ``wiggle`` is smooth noise (about ±1, M×M) that bends the paths across filled flats.
    ``lake_ok`` marks where a deep fill may hold a lake (not in deserts nor high mountains,
    where a depression is a salt pan or a cirque rather than a lake at this scale).
    """
    import pyflwdir
    from scipy.ndimage import distance_transform_edt, label

    m = dem.shape[1]
    p = m // 4
    nodata = -9999.0

    def wrap(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[:, -p:], a, a[:, :p]], axis=1)

    sea_p = wrap(ocean)
    wiggle = wrap(wiggle)
    dem_p = np.where(sea_p, nodata, wrap(dem)).astype(np.float32)
    filled, d8 = pyflwdir.dem.fill_depressions(dem_p, outlets="edge", nodata=nodata)
    # flats left by the fill would drain in parallel straight lines: tilt each flat gently
    # (centimetres) towards the cells it spills into, with a meandering offset, and fill again
    flw0 = pyflwdir.from_array(d8, ftype="d8", check_ftype=False)
    flat = (~sea_p) & (filled > dem_p + 1e-3)
    spill = np.zeros(dem_p.shape, bool)
    fi = np.flatnonzero(flat.ravel())
    spill.ravel()[flw0.idxs_ds[fi]] = True
    spill &= ~flat
    if spill.any():
        dist = distance_transform_edt(~spill)
        tilt = 0.01 * (dist + 4.0 * wiggle)
        filled = np.where(flat, filled + tilt, filled).astype(np.float32)
        filled, d8 = pyflwdir.dem.fill_depressions(filled, outlets="edge", nodata=nodata)
    flw = pyflwdir.from_array(d8, ftype="d8", check_ftype=False)
    area = np.broadcast_to(cell_km2[:, None], dem_p.shape).astype(np.float64)
    upa = flw.accuflux(area)
    valid = ~sea_p
    river = valid & (upa >= RIVER_AREA_KM2)
    order = flw.stream_order(type="strahler", mask=river)
    hh, ww = dem_p.shape

    # outlets: pits next to an ocean cell drain into it (the lowest such neighbour)
    pits = flw.idxs_pit
    pr, pc = np.unravel_index(pits, dem_p.shape)
    mouth_to = np.full(pits.shape, -1, np.int64)
    best = np.full(pits.shape, np.inf)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            r, c = pr + dr, pc + dc
            ok = (r >= 0) & (r < hh) & (c >= 0) & (c < ww)
            rr, cc = np.clip(r, 0, hh - 1), np.clip(c, 0, ww - 1)
            # diagonal neighbours count a little further, so straight mouths win ties
            score = np.where(ok & sea_p[rr, cc], abs(dr) + abs(dc), np.inf)
            better = score < best
            best = np.where(better, score, best)
            mouth_to = np.where(better, rr * ww + cc, mouth_to)
    coastal_pit = np.zeros(dem_p.size, bool)
    coastal_pit[pits[mouth_to >= 0]] = True
    basin = flw.basins(idxs=pits, ids=np.arange(1, len(pits) + 1, dtype=np.int32))
    basin_ok = np.zeros(len(pits) + 1, bool)
    basin_ok[1:] = mouth_to >= 0
    keep = river & basin_ok[basin]

    ds = flw.idxs_ds.copy()
    ds[pits[mouth_to >= 0]] = mouth_to[mouth_to >= 0]
    bed = np.where(valid, np.maximum(filled, 0.0), 0.0).ravel().astype(np.float64)
    _monotone_beds(bed, flw.idxs_seq, ds)

    # segments: river cells of the central columns, to their downstream cell
    idx = np.flatnonzero(keep.ravel())
    r0, c0 = np.unravel_index(idx, dem_p.shape)
    central = (c0 >= p) & (c0 < p + m)
    idx, r0, c0 = idx[central], r0[central], c0[central]
    dsi = ds[idx]
    r1, c1 = np.unravel_index(dsi, dem_p.shape)
    seg_of = np.full(dem_p.size, -1, np.int64)
    seg_of[idx] = np.arange(len(idx))
    # downstream segment: the one of the downstream cell, folded into the central columns
    dwrap = r1 * ww + ((c1 - p) % m + p)
    down = np.where(keep.ravel()[dwrap] & (dsi != idx), seg_of[dwrap], -1)
    at_sea = sea_p.ravel()[dsi]
    down = np.where(at_sea, -1, down)
    bed0 = bed[idx]
    bed1 = np.where(at_sea, 0.0, bed[dsi])
    x0, y0 = (c0 - p).astype(np.float64), r0.astype(np.float64)
    x1, y1 = (c1 - p).astype(np.float64), r1.astype(np.float64)
    orders = order.ravel()[idx].astype(np.int16)
    upas = upa.ravel()[idx].astype(np.float32)

    depth = np.where(valid, filled - dem_p, 0.0)[:, p : p + m]
    deep = (depth > LAKE_DEPTH_M) & lake_ok
    lab, nlab = label(deep, structure=np.ones((3, 3)))
    big = np.bincount(lab.ravel(), minlength=nlab + 1) >= LAKE_CELLS
    big[0] = False
    lake = big[lab].astype(np.uint8)
    lake_level = np.where(lake > 0, filled[:, p : p + m], 0.0).astype(np.float32)
    water = ocean | (lake > 0)
    wp = wrap(water)
    d_land = distance_transform_edt(wp == 0)[:, p : p + m]  # on land: distance to water
    d_water = distance_transform_edt(wp)[:, p : p + m]  # on water: distance to land
    shore = np.where(water, d_water - 0.5, -(d_land - 0.5)).astype(np.float32)

    bstart, bitems = _buckets(x0, y0, x1, y1, m, BUCKET, VALLEY_CELLS + 0.35)
    log.info("planet rivers: %d segments, %d lake cells", len(idx), int(lake.sum()))
    return Network(
        m=m,
        x0=x0,
        y0=y0,
        x1=x1,
        y1=y1,
        bed0=bed0.astype(np.float32),
        bed1=bed1.astype(np.float32),
        order=orders,
        upa=upas,
        down=down.astype(np.int64),
        lake=lake,
        lake_level=lake_level,
        shore_cells=shore,
        bstart=bstart,
        bitems=bitems,
    )


@njit(cache=True)
def _monotone_beds(bed: np.ndarray, seq: np.ndarray, ds: np.ndarray) -> None:  # pragma: no cover
    # down → up: a cell's bed is never below its downstream cell's (flats stay flat)
    for i in seq:
        j = ds[i]
        if j != i and bed[i] < bed[j]:
            bed[i] = bed[j]


def _buckets(x0, y0, x1, y1, m: int, size: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    nbx = -(-m // size)
    lo_x = np.floor((np.minimum(x0, x1) - margin) / size).astype(np.int64)
    hi_x = np.floor((np.maximum(x0, x1) + margin) / size).astype(np.int64)
    lo_y = np.clip(np.floor((np.minimum(y0, y1) - margin) / size), 0, nbx - 1).astype(np.int64)
    hi_y = np.clip(np.floor((np.maximum(y0, y1) + margin) / size), 0, nbx - 1).astype(np.int64)
    return _fill_buckets(lo_x, hi_x, lo_y, hi_y, nbx)


@njit(cache=True)
def _fill_buckets(lo_x, hi_x, lo_y, hi_y, nb):  # pragma: no cover
    counts = np.zeros(nb * nb + 1, np.int64)
    for s in range(lo_x.shape[0]):
        for by in range(lo_y[s], hi_y[s] + 1):
            for bx in range(lo_x[s], hi_x[s] + 1):
                counts[by * nb + (bx % nb) + 1] += 1
    start = np.cumsum(counts)
    items = np.empty(start[-1], np.int64)
    fill = start[:-1].copy()
    for s in range(lo_x.shape[0]):
        for by in range(lo_y[s], hi_y[s] + 1):
            for bx in range(lo_x[s], hi_x[s] + 1):
                b = by * nb + (bx % nb)
                items[fill[b]] = s
                fill[b] += 1
    return start, items


@njit(cache=True)
def query(
    qx, qy, cells_per_m, x0, y0, x1, y1, hw_m, bstart, bitems, m, size, rmax
):  # pragma: no cover
    """Return (distance to the centreline (cells), segment (−1: none), t along it) per pixel.

    The segment chosen is the one whose *edge* is nearest (distance − half width), so a pixel
    between a great river and a brook belongs to the great river; none beyond ``rmax``.
    """
    h, w = qx.shape
    nb = (m + size - 1) // size
    dist = np.full((h, w), np.inf, np.float32)
    seg = np.full((h, w), -1, np.int64)
    tt = np.zeros((h, w), np.float32)
    for i in range(h):
        scale = cells_per_m[i]
        for j in range(w):
            x = qx[i, j]
            y = qy[i, j]
            bx = int(np.floor(x / size)) % nb
            by = min(max(int(np.floor(y / size)), 0), nb - 1)
            b = by * nb + bx
            best = np.inf
            for k in range(bstart[b], bstart[b + 1]):
                s = bitems[k]
                ex = x1[s] - x0[s]
                ey = y1[s] - y0[s]
                dx = x - x0[s]
                dx -= m * np.floor(dx / m + 0.5)
                dy = y - y0[s]
                ll = ex * ex + ey * ey
                t = (dx * ex + dy * ey) / ll if ll > 0 else 0.0
                t = min(max(t, 0.0), 1.0)
                px = dx - t * ex
                py = dy - t * ey
                d = np.sqrt(px * px + py * py)
                v = d - hw_m[s] * scale
                if v < best:
                    best = v
                    dist[i, j] = d
                    seg[i, j] = s
                    tt[i, j] = t
            if best > rmax:
                seg[i, j] = -1
                dist[i, j] = np.inf
    return dist, seg, tt


@njit(cache=True)
def carve(
    terrain, qx, qy, cells_per_m, x0, y0, x1, y1, hw_m, vw, bed0, bed1, bstart, bitems, m, size
):  # pragma: no cover
    """Return the terrain with every nearby river's valley cut into it (metres).

    Each segment pulls the ground towards its bed with a weight falling from 1 at its banks to
    0 at its valley's half width ``vw`` (cells): (1 − s)². The result is the lowest of these
    per-segment valleys, a minimum of continuous functions, so it is continuous where two
    rivers' valleys meet (a nearest-segment rule would leave a step at the boundary).
    """
    h, w = qx.shape
    nb = (m + size - 1) // size
    out = np.empty((h, w), np.float32)
    for i in range(h):
        scale = cells_per_m[i]
        for j in range(w):
            x = qx[i, j]
            y = qy[i, j]
            e = terrain[i, j]
            best = e
            bx = int(np.floor(x / size)) % nb
            by = min(max(int(np.floor(y / size)), 0), nb - 1)
            b = by * nb + bx
            for k in range(bstart[b], bstart[b + 1]):
                s = bitems[k]
                ex = x1[s] - x0[s]
                ey = y1[s] - y0[s]
                dx = x - x0[s]
                dx -= m * np.floor(dx / m + 0.5)
                dy = y - y0[s]
                ll = ex * ex + ey * ey
                t = (dx * ex + dy * ey) / ll if ll > 0 else 0.0
                t = min(max(t, 0.0), 1.0)
                px = dx - t * ex
                py = dy - t * ey
                d = np.sqrt(px * px + py * py)
                if d >= vw[s]:
                    continue
                hw = hw_m[s] * scale
                sv = (d - hw) / max(vw[s] - hw, 1e-3)
                sv = min(max(sv, 0.0), 1.0)
                wt = (1.0 - sv) * (1.0 - sv)
                bed = bed0[s] + t * (bed1[s] - bed0[s])
                c = e + (bed - e) * wt
                if c < best:
                    best = c
            out[i, j] = best
    return out
