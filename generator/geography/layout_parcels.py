"""Field parcels and village outlines, laid out per lattice-14 cell.

A cell of lattice :data:`CELL_L` (a z14 tile: ≈ 1.7 km at 45°) holds its own subdivision,
clipped to the cell, so a cell never needs its neighbours and any tile gathers only the cells it
overlaps. Sizes are in ground metres (converted to Mercator with the cell row's scale), shapes are
decided by hashes of (seed, cell) and by the coarse geography at the cell (:class:`~.layout_net.
Coarse`):

- **Fields** (cells with farmland): *field systems*, the Voronoi cells of jittered seeds on a
  ≈ 4.9 km lattice turned against the tiles, each with a style from its lattice-10 region —
  large rectangles, medium fields or long strips at a regional orientation —, terraces (narrow
  strips along the contour) where the coarse slope is steep, centre pivots in dry regions; a few
  parcels are orchards; some regions have hedgerows on their parcel boundaries, and some row
  boundaries are farm tracks. Parcels lie on their system's lattice (continuous across cells),
  are clipped to the system and owned by the cell holding their centre, so a cell's parcels
  reach over its border (the one exception to "clipped to the cell").
- **Village outlines** (:func:`village`): the settlement ground of a village of the network.

Town and city street blocks and their buildings are :mod:`.layout_towns`'.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import shapely

from . import layout_classes as K
from .grid import HALF_WORLD
from .layout_net import (
    CELL_SEED_SALT,
    Coarse,
    Network,
    cell_origin,
    cell_size,
    mercator_scale,
    rnd,
)

#: Lattice of the field and settlement cells.
CELL_L = 14
#: Lattice of the field-style regions.
REGION_L = 10
#: The field systems' seed lattice: square, turned by atan(1/2) ≈ 26.6° against the tile
#: lattice (basis (2s, s), (−s, 2s)), one jittered seed per lattice cell; the systems are the
#: seeds' Voronoi cells. A jittered lattice's Voronoi edges gather around its own lattice lines,
#: so these must not be the tiles' (an axis-aligned seed lattice put system edges near every
#: other z14 seam). The world's width is the lattice vector (2K, −K): seeds wrap with x.
SYSTEM_K = 3663
SYSTEM_S = 2 * HALF_WORLD / (5 * SYSTEM_K)  # s: the lattice's cell is √5 s ≈ 4.9 km Mercator
#: Field styles: (row width range m, parcel length range m).
STYLES = {
    "large": ((250.0, 600.0), (300.0, 800.0)),
    "medium": ((100.0, 280.0), (150.0, 400.0)),
    "strips": ((20.0, 60.0), (150.0, 500.0)),
    "terraces": ((15.0, 30.0), (60.0, 200.0)),
}
#: Share of the odd row / parcel boundaries dropped (two rows or parcels merged), per style.
MERGE = {"large": (0.3, 0.0), "medium": (0.3, 0.3), "strips": (0.25, 0.3), "terraces": (0.0, 0.3)}
#: Largest half-diagonal of a parcel (ground m, at ``size`` 1): how far a parcel reaches out of
#: the cell that owns it (its centre's); under a cell's side, so ±1 neighbour cells suffice.
REACH_M = 700.0
#: Jitter of a lattice line (share of the pitch, peak to peak).
JITTER = 0.5


@dataclass
class FieldCell:
    """The parcels a cell owns (their centres lie in it; they may reach into the neighbours):
    polygons (Mercator), use class, hedged flag and narrowest width of the parcel's style."""

    polys: np.ndarray
    use: np.ndarray
    tracks: np.ndarray
    hedges: np.ndarray  # bool per parcel: hedgerows on its boundary
    style: str  # the styles present, "+"-joined
    size: float = 1.0  # ``[layout.params]`` field_scale of the cell (1: as generated)
    minw: np.ndarray = field(default_factory=lambda: np.zeros(0))  # ground m per parcel
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # parcels' bounds


def _box(ix: int, iy: int) -> tuple[float, float, float, float]:
    cs = cell_size(CELL_L)
    x0, y1 = cell_origin(CELL_L, ix, iy)
    return x0, y1 - cs, x0 + cs, y1


def _to_world(u: np.ndarray, v: np.ndarray, frame: tuple[float, float, float, float]):
    """Local ground-metre frame (u along the grid angle) → Mercator x, y."""
    cx, cy, ang, k = frame
    c, s = np.cos(ang), np.sin(ang)
    return cx + k * (u * c - v * s), cy + k * (u * s + v * c)


def _rects(u0, u1, v0, v1, frame) -> np.ndarray:
    """Return (n, 4, 2) Mercator corners of local rectangles."""
    us = np.stack([u0, u1, u1, u0], -1)
    vs = np.stack([v0, v0, v1, v1], -1)
    x, y = _to_world(us, vs, frame)
    return np.stack([x, y], -1)


def _seed_key(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical lattice indices of seeds (a, b): one key per seed however x is wrapped."""
    t = np.floor_divide(a, 2 * SYSTEM_K)
    return a - 2 * SYSTEM_K * t, b + SYSTEM_K * t


def _seeds(seed: int, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mercator positions of seeds (a, b) (unwrapped like a), jittered in their cell's middle
    60 %."""
    ka, kb = _seed_key(a, b)
    ua = a + 0.2 + 0.6 * rnd(seed, CELL_SEED_SALT + 11, 30, ka, kb)
    ub = b + 0.2 + 0.6 * rnd(seed, CELL_SEED_SALT + 12, 30, ka, kb)
    return SYSTEM_S * (2 * ua - ub), SYSTEM_S * (ua + 2 * ub)


def _lattice(x: float, y: float) -> tuple[float, float]:
    """Mercator point → seed-lattice coordinates (inverse of the basis)."""
    return (2 * x + y) / (5 * SYSTEM_S), (2 * y - x) / (5 * SYSTEM_S)


@functools.lru_cache(maxsize=8192)
def system_polygon(seed: int, sa: int, sb: int) -> tuple[shapely.Polygon, float, float]:
    """Return field system (sa, sb) of the seed lattice: its Voronoi polygon and seed point.

    The seed lies in the middle 60 % of its cell, so the nearest seeds of any point are within
    ±2 cells: the polygon is computed from the 5 × 5 seeds around it, a fixed set for each
    system, so every cell that asks gets the same polygon (shapely ``voronoi_polygons``).
    """
    ii = np.arange(-2, 3)
    ga, gb = np.meshgrid(sa + ii, sb + ii)
    px, py = _seeds(seed, ga.ravel(), gb.ravel())
    cs = 5 * SYSTEM_S
    pts = shapely.multipoints(np.stack([px, py], -1))
    ext = shapely.box(px.min() - cs, py.min() - cs, px.max() + cs, py.max() + cs)
    regions = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=ext))
    me = shapely.Point(px[12], py[12])
    poly = regions[shapely.contains(regions, me)][0]
    return poly, float(px[12]), float(py[12])


@dataclass
class _System:
    """A field system's style, frame (ground-metre lattice) and polygon."""

    sx: int
    sy: int
    poly: shapely.Polygon
    style: str
    frame: tuple[float, float, float, float]  # origin x, y (the seed), angle, mercator scale
    hedges: bool
    dry: float


def _system(seed: int, coarse: Coarse, sx: int, sy: int) -> _System:
    """Decide a system's style from its region's hashes and the coarse geography at its seed:
    centre pivots in dry flat regions, terraces along the contour where the ground is steep,
    else the region's style (large, medium, strips) at the region's orientation (a few regions
    face N-S), turned a little per system."""
    poly, ox, oy = system_polygon(seed, sx, sy)
    g = np.linspace(-0.25, 0.25, 3) * np.sqrt(5) * SYSTEM_S
    slope = float(
        np.median(
            coarse.sample(
                ox + g[None, :].repeat(3, 0).ravel(), oy + g[:, None].repeat(3, 1).ravel(), "slope"
            )
        )
    )
    dry = float(coarse.sample(np.array([ox]), np.array([oy]), "dry")[0])
    k = mercator_scale(CELL_L, int((HALF_WORLD - oy) // cell_size(CELL_L)))
    cr = cell_size(REGION_L)  # the region of the seed
    rx, ry = int((ox + HALF_WORLD) // cr), int((HALF_WORLD - oy) // cr)
    ka, kb = (int(v) for v in _seed_key(np.int64(sx), np.int64(sy)))
    r_style = float(rnd(seed, CELL_SEED_SALT + 1, REGION_L, rx, ry))
    r_angle = float(rnd(seed, CELL_SEED_SALT + 2, REGION_L, rx, ry))
    r_hedge = float(rnd(seed, CELL_SEED_SALT + 3, REGION_L, rx, ry))
    jit = float(rnd(seed, CELL_SEED_SALT + 4, 30, ka, kb)) - 0.5
    if dry > 0.45 and slope < 0.05 and r_style < 0.75:
        style, ang = "pivots", 0.0  # on the survey grid, like the US sections they sit in
    elif slope > 0.1:
        style = "terraces"
        ang = float(coarse.sample(np.array([ox]), np.array([oy]), "aspect")[0]) + np.pi / 2
    else:
        style = "large" if r_style < 0.3 else "medium" if r_style < 0.75 else "strips"
        ang = (r_angle - 0.5) * np.pi / 2 if r_angle > 0.3 else 0.0
        ang += 0.15 * jit
    hedges = r_hedge < 0.4 and dry < 0.3 and style in ("medium", "strips")
    return _System(sx, sy, poly, style, (ox, oy, ang, k), hedges, dry)


def _local(x: np.ndarray, y: np.ndarray, frame: tuple[float, float, float, float]):
    """Mercator x, y → the frame's ground metres (inverse of :func:`_to_world`)."""
    cx, cy, ang, k = frame
    c, s = np.cos(ang), np.sin(ang)
    dx, dy = (x - cx) / k, (y - cy) / k
    return dx * c + dy * s, -dx * s + dy * c


def _edges_1d(
    seed: int,
    salt: int,
    key: int,
    lo: float,
    hi: float,
    pitch: float,
    merge: float,
    row: np.ndarray | None = None,
):
    """Return the kept lattice lines between ``lo`` and ``hi`` (ground m) and their indices.

    Line i lies at (i + jitter) · pitch; odd lines are dropped with probability ``merge`` (two
    neighbours never both: a gap is at most two pitches). Each line is a hash of its index (and
    of ``row``), so any range gives the same lines where ranges overlap. With ``row`` (one per
    row), the lines are per row, shifted by a hashed phase: (nrow, n) arrays."""
    i = np.arange(int(np.floor(lo / pitch)) - 3, int(np.ceil(hi / pitch)) + 4)
    if row is None:  # one row of lines: (1, n)
        a, b = (i + 7919 * key)[None, :], np.zeros((1, len(i)), np.int64)
        phase = 0.0
    else:
        a = np.broadcast_to(i[None, :] + 7919 * key, (len(row), len(i)))
        b = np.broadcast_to(row[:, None], a.shape)
        phase = rnd(seed, salt + 2, 30, row + 7919 * key, 1)[:, None]
    pos = (i + phase + JITTER * (rnd(seed, salt, 30, a, b) - 0.5)) * pitch
    keep = ~((i % 2 == 1) & (rnd(seed, salt + 1, 30, a, b) < merge))
    return i, pos, keep


def _pairs(i: np.ndarray, pos: np.ndarray, keep: np.ndarray):
    """Consecutive kept lines → (start index, start, end) of the intervals, along the last
    axis (an interval starts at a kept line and ends at the next kept one)."""
    n = pos.shape[-1]
    nxt = np.arange(n - 2)[None, :] + 1 + (~keep[:, 1:-1]).astype(np.int64)  # next kept line
    p1 = np.take_along_axis(pos, nxt, -1)
    return np.broadcast_to(i[:-2], p1.shape), pos[:, :-2], p1, keep[:, :-2]


def _owned(x: np.ndarray, y: np.ndarray, ix: int, iy: int) -> np.ndarray:
    """True for points whose lattice-:data:`CELL_L` cell is (ix, iy): one owner for a point."""
    cs = cell_size(CELL_L)
    return (np.floor((x + HALF_WORLD) / cs) == ix) & (np.floor((HALF_WORLD - y) / cs) == iy)


def field_cell(
    seed: int, coarse: Coarse, ix: int, iy: int, size: float = 1.0, track_density: float = 1.0
) -> FieldCell | None:
    """Return the field parcels cell (ix, iy) of :data:`CELL_L` owns, or None without farmland.

    Parcels are laid out on their field system's lattice, continuous across cells; a parcel is
    clipped to its system's polygon and owned by the cell holding its (unclipped) centre, so a
    cell lists parcels reaching up to :data:`REACH_M` over its border. ``size`` scales the
    parcels' widths and lengths (and the pivots' spacing), ``track_density`` the share of row
    boundaries that are farm tracks (``[layout.params]``; 1: as generated).
    """
    x0, y0, x1, y1 = _box(ix, iy)
    g = np.linspace(0.1, 0.9, 3)
    px = (x0 + g[None, :] * (x1 - x0)).repeat(3, 0).ravel()
    py = (y1 - g[:, None] * (y1 - y0)).repeat(3, 1).ravel()
    farm = coarse.sample(px, py, "farm")
    if farm.max() < 0.05:
        return None
    k = mercator_scale(CELL_L, iy)
    reach = REACH_M * size * k
    box = shapely.box(x0, y0, x1, y1)
    near = shapely.box(x0 - reach, y0 - reach, x1 + reach, y1 + reach)
    ca, cb = (int(np.floor(v)) for v in _lattice((x0 + x1) / 2, (y0 + y1) / 2))
    polys, use, hedges, minw, tracks, styles = [], [], [], [], [], []
    for sy in range(cb - 3, cb + 4):
        for sx in range(ca - 3, ca + 4):
            poly = system_polygon(seed, sx, sy)[0]
            if not shapely.intersects(poly, near):
                continue
            sysm = _system(seed, coarse, sx, sy)
            p, u, t = _system_parcels(seed, sysm, ix, iy, box, size, track_density)
            if len(p) == 0 and len(t) == 0:
                continue
            styles.append(sysm.style)
            polys.append(p)
            use.append(u)
            hedges.append(np.full(len(p), sysm.hedges))
            lo = STYLES[sysm.style][0][0] if sysm.style in STYLES else 0.0
            minw.append(np.full(len(p), lo))
            tracks.append(t)

    def cat(parts: list, dtype=object) -> np.ndarray:
        return np.concatenate(parts) if parts else np.array([], dtype)

    polys = cat(polys)
    return FieldCell(
        polys, cat(use, np.uint8), cat(tracks), cat(hedges, bool),
        "+".join(sorted(set(styles))), size, cat(minw, float),
        shapely.bounds(polys).reshape(-1, 4),
    )  # fmt: skip


def _system_parcels(
    seed: int, sysm: _System, ix: int, iy: int, box, size: float, track_density: float
):
    """The parcels (clipped to the system), their use and the farm tracks of one system that
    cell (ix, iy) owns."""
    frame = sysm.frame
    k = frame[3]
    x0, y0, x1, y1 = shapely.bounds(box)
    u, v = _local(np.array([x0, x1, x1, x0]), np.array([y0, y0, y1, y1]), frame)
    ka, kb = _seed_key(np.int64(sysm.sx), np.int64(sysm.sy))
    key = int(ka) * 8191 + int(kb)
    none = (np.array([], object), np.array([], np.uint8), np.array([], object))
    if sysm.style == "pivots":
        step = 800.0 * size
        i = np.arange(int(np.floor(u.min() / step)) - 1, int(np.ceil(u.max() / step)) + 1)
        j = np.arange(int(np.floor(v.min() / step)) - 1, int(np.ceil(v.max() / step)) + 1)
        gi, gj = (a.ravel() for a in np.meshgrid(i, j))
        cx, cy = _to_world((gi + 0.5) * step, (gj + 0.5) * step, frame)
        sel = _owned(cx, cy, ix, iy)
        sel &= rnd(seed, CELL_SEED_SALT + 5, 30, gi + 7919 * key, gj) < 0.8
        circles = shapely.buffer(shapely.points(cx[sel], cy[sel]), 0.46 * step * k, quad_segs=12)
        circles = circles[shapely.contains(sysm.poly, circles)]  # whole pivots only
        return circles, np.full(len(circles), K.PIVOT, np.uint8), none[2]
    (wlo, whi), (llo, lhi) = STYLES[sysm.style]
    pv = 0.85 * (wlo + whi) / 2 * size
    pu = 0.5 * (llo + lhi) * size
    mv, mu = MERGE[sysm.style]
    span = 3 * pu
    ri, rpos, rkeep = _edges_1d(seed, CELL_SEED_SALT + 6, key, v.min(), v.max(), pv, mv)
    rk, v0, v1, rstart = _pairs(ri, rpos, rkeep)
    rk, v0, v1 = rk[0][rstart[0]], v0[0][rstart[0]], v1[0][rstart[0]]
    if len(rk) == 0:
        return none
    ci, cpos, ckeep = _edges_1d(
        seed, CELL_SEED_SALT + 8, key, u.min() - span, u.max() + span, pu, mu, row=rk
    )
    cj, u0, u1, cstart = _pairs(ci, cpos, ckeep)
    rows = np.broadcast_to(np.arange(len(rk))[:, None], u0.shape)
    vv0 = np.broadcast_to(v0[:, None], u0.shape)
    vv1 = np.broadcast_to(v1[:, None], u0.shape)
    cx, cy = _to_world((u0 + u1) / 2, (vv0 + vv1) / 2, frame)
    sel = cstart & _owned(cx, cy, ix, iy)
    rects = shapely.polygons(_rects(u0[sel], u1[sel], vv0[sel], vv1[sel], frame))
    hit = shapely.intersects(sysm.poly, rects)
    polys = shapely.intersection(rects[hit], sysm.poly)
    ids = (rk[rows[sel]] * 100003 + cj[sel])[hit]
    keep = shapely.area(polys) > 0.02 * (wlo * llo * size * size * k * k)
    polys, ids = polys[keep], ids[keep]
    use = np.full(len(polys), K.FIELD, np.uint8)
    if sysm.style == "terraces":
        use[:] = K.TERRACE
    elif sysm.style != "large":  # orchards are small parcels, commoner in the drier south
        q = rnd(seed, CELL_SEED_SALT + 9, 30, ids + 7919 * key, 2)
        use[q < (0.08 if 0.1 < sysm.dry < 0.5 else 0.03)] = K.ORCHARD
    tracks = none[2]
    if sysm.style != "terraces":
        tv = rpos[0][rkeep[0]]
        tk = ri[rkeep[0]]
        pick = rnd(seed, CELL_SEED_SALT + 10, 30, tk + 7919 * key, 3) < 0.12 * track_density
        tv = tv[pick & (tv > v.min()) & (tv < v.max())]
        if len(tv):
            ends = np.array([u.min(), u.max()])
            tx, ty = _to_world(
                np.broadcast_to(ends, (len(tv), 2)), np.repeat(tv[:, None], 2, 1), frame
            )
            lines = shapely.linestrings(np.stack([tx, ty], -1))
            tracks = shapely.intersection(lines, shapely.intersection(box, sysm.poly))
            tracks = tracks[~shapely.is_empty(tracks)]
    return polys, use, tracks


def village(seed: int, net: Network, ix: int, iy: int) -> tuple[np.ndarray, float, float, float]:
    """Return the village of lattice-13 cell (ix, iy): (outline polygon or None, x, y, radius).

    The outline is a wobbly disc (two hashed harmonics) of the site's size in ground metres.
    """
    site = net.site(13, ix, iy)
    if site is None:
        return None, 0.0, 0.0, 0.0  # type: ignore[return-value]
    k = mercator_scale(13, iy)
    t = np.linspace(0, 2 * np.pi, 49)[:-1]
    ph = rnd(seed, CELL_SEED_SALT + 20, 13, ix, iy, np.arange(2)) * 2 * np.pi
    r = site.size * (1 + 0.22 * np.sin(3 * t + ph[0]) + 0.12 * np.sin(5 * t + ph[1])) * k
    ring = np.stack([site.x + r * np.cos(t), site.y + r * np.sin(t)], -1)
    return shapely.Polygon(ring), site.x, site.y, site.size * k * 1.34
