"""Town and city street networks: irregular blocks, radial arterials and buildings.

Real European towns are not one regular grid: their streets curve, their blocks vary in size
and orientation from one quarter to the next, and a few arterials run out from the centre.
A regular grid per cell overshot the real imagery's orientation coherence (0.6–0.7 against
0.3–0.4) and met its neighbour cell with a seam of mismatched streets. So here:

- **Sites** (block seeds) are laid per cell of :data:`CELL_L` (a z14 tile, ≈ 1.7 km at 45°) on
  rows of hashed widths cut into hashed lengths (a brick pattern with random row shifts: T
  junctions), in a frame rotated per cell (districts of lattice 12 share an orientation), and
  jittered. A cell owns the sites inside its box (half-open), so each site has one owner.
- **Blocks** are the sites' Voronoi cells (``shapely.voronoi_polygons``), computed by the owning
  cell over its sites and those of its neighbours within :data:`NEIGHBOUR_M`: the true Voronoi
  cell of a site, whichever cell computes it, so blocks tile the plane across cell borders
  (no seams) and are not clipped to the cell. Each is inset by half a street width.
- **A smooth warp** (two octaves of value noise, ≤ :data:`WARP_M` m) moves every vertex — blocks,
  buildings, arterials alike —, so streets curve gently and a quarter's grid bends.
- **Arterials**: from each town (lattice 11) and regional centre (lattice 9) site, 5–8 radial
  roads at hashed angles (a ring road round a large regional centre), and 3–4 shorter ones
  (1.2–2.1 km) from a hashed quarter centre per lattice-13 cell of city ground (coarse urban
  fraction > 0.3); warped the same way; each cell keeps them clipped to its box (the pieces of
  neighbouring cells join exactly). They bridge rivers (not lakes or the sea).
- **Buildings** (at ≤ 2 m/px): rectangles on lots along every block edge, facing the street,
  present with the block's density; dense blocks get continuous frontages. Lots whose building
  would leave its block or touch an arterial are dropped.

Everything is a pure function of (seed, cell) and of the coarse geography at fixed zooms, in
Web Mercator metres (unwrapped like the cell), so every zoom rasterises the same objects.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import shapely

from .fractal import value_noise
from .layout_net import (
    CELL_SEED_SALT,
    WORLD,
    Coarse,
    Network,
    cell_origin,
    cell_size,
    mercator_scale,
    rnd,
)

#: Lattice of the street cells (the same as the field cells of :mod:`.layout_parcels`).
CELL_L = 14
#: Sites of neighbouring cells within this many ground metres of a cell's box enter its Voronoi
#: diagram (a block's Voronoi neighbours are at most ≈ 2 block lengths away).
NEIGHBOUR_M = 450.0
#: Largest displacement of the warp (ground m) and the lattice levels of its two octaves.
WARP_M = 55.0
WARP_LEVELS = (12, 14)
#: Arterial count range and their reach (× the site's size, clipped to ground m).
RAYS = (5, 9)
RAY_REACH = (3.0, 1200.0, 12000.0)
_SALT = CELL_SEED_SALT + 500
#: The sphere of Web Mercator (EPSG:3857), m.
EARTH_R = 6378137.0


class TownCell:
    """The street blocks of one cell (Mercator polygons), their density, the arterials.

    The arterials are computed at once (they are drawn from z12, where a tile spans 256
    cells); the blocks — a Voronoi diagram per cell — only when first asked for (z ≥ 14).
    """

    def __init__(
        self, seed: int, coarse: Coarse, near: list, ix: int, iy: int, arterials, art_full
    ) -> None:
        self.seed, self.coarse, self.near, self.ix, self.iy = seed, coarse, near, ix, iy
        self.k = mercator_scale(CELL_L, iy)  # Mercator metres per ground metre
        self.arterials = arterials  # LineStrings clipped to the cell (drawn as avenues)
        self.art_full = art_full  # the same unclipped (buildings keep clear of them)
        self.buildings: dict = {}
        self._blocks: tuple | None = None
        self._lock = threading.Lock()

    def _get(self) -> tuple:
        with self._lock:
            if self._blocks is None:
                self._blocks = _blocks(self.seed, self.coarse, self.near, self.ix, self.iy)
            return self._blocks

    @property
    def blocks(self) -> np.ndarray:
        """Warped, inset Voronoi blocks (Mercator polygons)."""
        return self._get()[0]

    @property
    def density(self) -> np.ndarray:
        """Building density per block (0–1)."""
        return self._get()[1]

    @property
    def raw(self) -> np.ndarray:
        """The blocks before the warp (building lots are laid on these)."""
        return self._get()[2]

    @property
    def dense(self) -> np.ndarray:
        """Per block: continuous frontages."""
        return self._get()[3]


def _box(ix: int, iy: int) -> tuple[float, float, float, float]:
    cs = cell_size(CELL_L)
    x0, y1 = cell_origin(CELL_L, ix, iy)
    return x0, y1 - cs, x0 + cs, y1


def warp(seed: int, xy: np.ndarray) -> np.ndarray:
    """Return Mercator points (n, 2) moved by the world's smooth street warp.

    A pure function of the point (value noise on the world's normalised coordinates, x wraps;
    the Mercator scale from the point's own northing), smooth enough (strain ≲ 0.3) never to
    fold a block; each axis moves at most :data:`WARP_M` ground metres.
    """
    if len(xy) == 0:
        return xy
    k = np.cosh(xy[:, 1] / EARTH_R)  # Mercator metres per ground metre (1 / cos latitude)
    u = ((xy[:, 0] + WORLD / 2) / WORLD)[None, :]
    v = ((WORLD / 2 - xy[:, 1]) / WORLD)[None, :]
    dx = np.zeros(len(xy))
    dy = np.zeros(len(xy))
    for i, lv in enumerate(WARP_LEVELS):
        amp = (0.7, 0.3)[i] * WARP_M * k
        dx += amp * value_noise(seed + _SALT + 2 * i, lv, u, v)[0].astype(np.float64)
        dy += amp * value_noise(seed + _SALT + 2 * i + 1, lv, u, v)[0].astype(np.float64)
    return np.stack([xy[:, 0] + dx, xy[:, 1] + dy], -1)


def _params(seed: int, coarse: Coarse, ix: int, iy: int) -> tuple[float, float, float, bool]:
    """Return (angle, block length, block width, dense) of a cell's sites (ground m)."""
    x0, y0, x1, y1 = _box(ix, iy)
    g = np.linspace(0.1, 0.9, 3)
    px = (x0 + g[None, :] * (x1 - x0)).repeat(3, 0).ravel()
    py = (y1 - g[:, None] * (y1 - y0)).repeat(3, 1).ravel()
    dense = float(coarse.sample(px, py, "urban").mean()) > 0.4
    q = rnd(seed, _SALT + 1, CELL_L, ix, iy, np.arange(3))
    rx, ry = ix >> 2, iy >> 2  # lattice-12 districts share an orientation
    ang = (float(rnd(seed, _SALT + 2, 12, rx, ry)) - 0.5) * np.pi / 2 + 0.5 * (q[0] - 0.5)
    a = (85.0 + 55.0 * q[1]) if dense else (110.0 + 80.0 * q[1])
    b = (60.0 + 35.0 * q[2]) if dense else (70.0 + 50.0 * q[2])
    return float(ang), float(a), float(b), dense


def _sites(seed: int, coarse: Coarse, ix: int, iy: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the (n, 2) Mercator block sites a cell owns (inside its half-open box) and a
    group id per site (sites of one group are merged into one block: a street left out).

    Two patterns, by a hash of the cell: *planned* quarters (60 %) — groups of 2–5 rows share
    their column positions, so cross streets run straight through a group and meet the next
    group's at T junctions; sites barely jittered; one block in five merged with its
    neighbour along the row — and *organic* ones (40 %) — every row shifted on its own,
    sites jittered by a quarter of the spacing: irregular polygons, like an old town.
    """
    x0, y0, x1, y1 = _box(ix, iy)
    ang, a, b, _ = _params(seed, coarse, ix, iy)
    k = mercator_scale(CELL_L, iy)
    organic = float(rnd(seed, _SALT + 8, CELL_L, ix, iy)) < 0.4
    if organic:
        a = 0.5 * (a + b) * 1.15
    half = 0.75 * (x1 - x0) / k
    nr = int(2 * half / (0.7 * b)) + 2
    rows = np.arange(nr)
    widths = b * (0.7 + 0.6 * rnd(seed, _SALT + 3, CELL_L, ix, iy, rows))
    vedge = -half + np.concatenate([[0.0], np.cumsum(widths)])
    vmid = (vedge[:-1] + vedge[1:]) / 2
    nc = int(2 * half / (0.7 * a)) + 3
    if organic:
        key = rows
        jit = 0.25
    else:  # rows in groups of 2–5 share their columns
        glen = 2 + (rnd(seed, _SALT + 9, CELL_L, ix, iy, rows) * 4).astype(np.int64)
        start = np.cumsum(glen) - glen
        key = np.searchsorted(start, rows, side="right") - 1
        jit = 0.06
    jj = key[:, None] * nc + np.arange(nc)[None, :]
    lengths = a * (0.7 + 0.6 * rnd(seed, _SALT + 4, CELL_L, ix, iy, jj))
    shift = rnd(seed, _SALT + 5, CELL_L, ix, iy, key)[:, None] * a
    uedge = -half - shift + np.concatenate([np.zeros((nr, 1)), np.cumsum(lengths, 1)], 1)
    u = (uedge[:, :-1] + uedge[:, 1:]) / 2
    js = rows[:, None] * nc + np.arange(nc)[None, :]
    ju = rnd(seed, _SALT + 6, CELL_L, ix, iy, js) - 0.5
    jv = rnd(seed, _SALT + 7, CELL_L, ix, iy, js) - 0.5
    u = u + jit * lengths * ju
    v = vmid[:, None] + jit * widths[:, None] * jv
    group = js.copy()
    if not organic:  # merge a block with the next along its row (never a chain of merges)
        m = rnd(seed, _SALT + 11, CELL_L, ix, iy, js) < 0.2
        m[:, -1] = False
        m[:, 1:] &= ~m[:, :-1]
        group[:, 1:] = np.where(m[:, :-1], group[:, :-1], group[:, 1:])
    c, s = np.cos(ang), np.sin(ang)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x = (cx + k * (u * c - v * s)).ravel()
    y = (cy + k * (u * s + v * c)).ravel()
    inside = (x >= x0) & (x < x1) & (y > y0) & (y <= y1)
    return np.stack([x[inside], y[inside]], -1), group.ravel()[inside]


def _rays(seed: int, net: Network, ix: int, iy: int) -> np.ndarray:
    """Return the unclipped, warped arterials (LineStrings) that may reach cell (ix, iy)."""
    x0, y0, x1, y1 = _box(ix, iy)
    k = mercator_scale(CELL_L, iy)
    centres = []  # (x, y, reach (Mercator m), level, sx, sy)
    for level in (9, 11, 13):
        sh = CELL_L - level
        for sx in range((ix >> sh) - 1, (ix >> sh) + 2):
            for sy in range((iy >> sh) - 1, (iy >> sh) + 2):
                if level < 13:
                    site = net.site(level, sx, sy)
                    if site is None:
                        continue
                    lo, hi = RAY_REACH[1:]
                    reach = float(np.clip(RAY_REACH[0] * site.size, lo, hi)) * k
                    centres.append((site.x, site.y, reach, level, sx, sy))
                    continue
                # lattice 13: a quarter's own centre inside a city, with a few short avenues
                cx0, cy1 = cell_origin(13, sx, sy)
                f = 0.15 + 0.7 * rnd(seed, _SALT + 20, 13, sx, sy, np.arange(3))
                px, py = cx0 + f[0] * cell_size(13), cy1 - f[1] * cell_size(13)
                if net.coarse.sample(np.array([px]), np.array([py]), "urban")[0] > 0.3:
                    centres.append((px, py, (1200.0 + 900.0 * f[2]) * k, 13, sx, sy))
    out = []
    for cx, cy, reach, level, sx, sy in centres:
        if cx + reach < x0 or cx - reach > x1 or cy + reach < y0 or cy - reach > y1:
            continue
        q = rnd(seed, _SALT + 10 + level, level, sx, sy, np.arange(24))
        lo_n, hi_n = RAYS if level < 13 else (3, 5)
        n = lo_n + int(q[0] * (hi_n - lo_n))
        base = 2 * np.pi * q[1]
        angles = base + 2 * np.pi * (np.arange(n) + 0.7 * (q[2 : 2 + n] - 0.5)) / n
        lengths = reach * (0.7 + 0.3 * q[12 : 12 + n])
        t = np.linspace(0.0, 1.0, max(8, int(reach / k / 60.0)))
        for ang, ln in zip(angles, lengths, strict=True):
            xy = np.stack([cx + t * ln * np.cos(ang), cy + t * ln * np.sin(ang)], -1)
            out.append(warp(seed, xy))
        if level == 9 and reach / k > 3000.0:  # a ring road round a regional centre
            r = reach * (0.3 + 0.15 * q[23])
            th = np.linspace(0.0, 2 * np.pi, max(24, int(2 * np.pi * r / k / 60.0)))
            ring = np.stack([cx + r * np.cos(th), cy + r * np.sin(th)], -1)
            out.append(warp(seed, ring))
    if not out:
        return np.array([], object)
    lines = shapely.linestrings(out) if len({len(o) for o in out}) == 1 else None
    if lines is None:
        lines = np.array([shapely.LineString(o) for o in out], object)
    box = shapely.box(x0, y0, x1, y1).buffer(NEIGHBOUR_M * k)
    return lines[shapely.intersects(lines, box)]


def town_cell(
    seed: int, coarse: Coarse, net: Network, villages: list, ix: int, iy: int
) -> TownCell | None:
    """Return the street blocks and arterials of cell (ix, iy), or None (no town near).

    ``villages``: (outline, x, y, radius) of the villages whose outlines may reach the cell.
    A cell is a town cell when the coarse urban fraction near it (its box and a margin of
    :data:`NEIGHBOUR_M`: its blocks reach over its border) is not nil or a village outline
    reaches it.
    """
    x0, y0, x1, y1 = _box(ix, iy)
    k = mercator_scale(CELL_L, iy)
    mg = NEIGHBOUR_M * k
    g = np.linspace(0.0, 1.0, 4)
    px = (x0 - mg + g[None, :] * (x1 - x0 + 2 * mg)).repeat(4, 0).ravel()
    py = (y1 + mg - g[:, None] * (y1 - y0 + 2 * mg)).repeat(4, 1).ravel()
    urban = coarse.sample(px, py, "urban")
    reach = shapely.box(x0 - mg, y0 - mg, x1 + mg, y1 + mg)
    near = [v for v in villages if v[0] is not None and shapely.intersects(v[0], reach)]
    if urban.max() < 0.01 and not near:
        return None
    arterials = art_full = np.array([], object)
    if urban.max() >= 0.05:
        art_full = _rays(seed, net, ix, iy)
        if len(art_full):
            arterials = shapely.clip_by_rect(art_full, x0, y0, x1, y1)
            arterials = arterials[~shapely.is_empty(arterials)]
    return TownCell(seed, coarse, near, ix, iy, arterials, art_full)


def _blocks(seed: int, coarse: Coarse, near: list, ix: int, iy: int) -> tuple:
    """Return (blocks, density, raw blocks, dense) of a cell (see the module docstring)."""
    x0, y0, x1, y1 = _box(ix, iy)
    k = mercator_scale(CELL_L, iy)
    mg = NEIGHBOUR_M * k
    own, group = _sites(seed, coarse, ix, iy)
    if len(own) == 0:
        e = np.array([], object)
        return e, np.zeros(0, np.float32), e, np.zeros(0, bool)
    pts = [own]
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            if dx or dy:
                s = _sites(seed, coarse, ix + dx, iy + dy)[0]
                sel = (
                    (s[:, 0] > x0 - mg) & (s[:, 0] < x1 + mg) & (s[:, 1] > y0 - mg)
                    & (s[:, 1] < y1 + mg)
                )  # fmt: skip
                pts.append(s[sel])
    allp = np.concatenate(pts)
    env = shapely.box(x0 - 3 * mg, y0 - 3 * mg, x1 + 3 * mg, y1 + 3 * mg)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(allp), extend_to=env))
    tree = shapely.STRtree(cells)
    pi, ci = tree.query(shapely.points(own), predicate="within")
    order = np.argsort(pi, kind="stable")
    polys = np.empty(len(own), object)
    polys[pi[order]] = cells[ci[order]]
    # merged groups: one block (a group's sites are neighbours in a row, so never apart)
    uniq, inv, cnt = np.unique(group, return_inverse=True, return_counts=True)
    if (cnt > 1).any():
        first = np.zeros(len(uniq), np.int64) - 1
        for i in range(len(own)):
            g = inv[i]
            if cnt[g] > 1:
                if first[g] < 0:
                    first[g] = i
                else:
                    both = shapely.union(polys[first[g]], polys[i])
                    if both.geom_type == "Polygon":  # (a jittered neighbour may not touch)
                        polys[first[g]] = both
                        polys[i] = None
        own = own[polys != None]  # noqa: E711 (element-wise)
        polys = polys[polys != None]  # noqa: E711
    _, _, _, dense = _params(seed, coarse, ix, iy)
    st = (12.0 if dense else 10.0) * k  # street width
    raw = shapely.buffer(polys, -st / 2, join_style="mitre", mitre_limit=3.0)
    ok = ~shapely.is_empty(raw) & (shapely.area(raw) > (12.0 * k) ** 2)
    raw, sites = raw[ok], own[ok]
    ok = shapely.get_type_id(raw) == 3  # a thin cell inset into pieces is dropped (a square)
    raw, sites = raw[ok], sites[ok]
    blocks = shapely.transform(shapely.segmentize(raw, 25.0 * k), lambda p: warp(seed, p))
    dens = 0.3 + 0.65 * np.clip(coarse.sample(sites[:, 0], sites[:, 1], "urban"), 0.0, 1.0)
    for _, vx, vy, vr in near:
        d = np.hypot(sites[:, 0] - vx, sites[:, 1] - vy) / vr
        dens = np.maximum(dens, 0.95 * np.clip(1.0 - d, 0.0, 1.0) ** 0.6)
    return blocks, dens.astype(np.float32), raw, np.full(len(raw), dense) | (dens > 0.8)


def buildings(seed: int, cell: TownCell, ix: int, iy: int, arterial_m: float = 14.0) -> np.ndarray:
    """Return (n, 4, 2) Mercator corners of the cell's buildings (cached on the cell).

    Lots run along every edge of every block (the un-warped inset Voronoi polygon): a lot has a
    building with the block's density, of hashed width, depth and setback, facing the edge;
    dense blocks get deep buildings on narrow lots with no setback (continuous frontages). A
    building that would leave its block, or lie within an arterial's half width (+ 3 m), is
    dropped; the corners are then warped like the blocks.
    """
    hit = cell.buildings.get("corners")
    if hit is not None:
        return hit
    k = cell.k
    n = len(cell.raw)
    if n == 0:
        cell.buildings["corners"] = np.zeros((0, 4, 2))
        return cell.buildings["corners"]
    rings = shapely.get_exterior_ring(shapely.orient_polygons(cell.raw))  # CCW exteriors
    xy, bidx = shapely.get_coordinates(rings, return_index=True)
    same = bidx[:-1] == bidx[1:]
    p0, p1, eb = xy[:-1][same], xy[1:][same], bidx[:-1][same]
    d = p1 - p0
    length = np.hypot(d[:, 0], d[:, 1])
    keep = length > 8.0 * k
    p0, d, length, eb = p0[keep], d[keep], length[keep], eb[keep]
    t = d / length[:, None]
    nrm = np.stack([-t[:, 1], t[:, 0]], -1)  # inward (left of a CCW ring)
    dense = cell.dense[eb]
    lw = np.where(dense, 11.0, 16.0) * k
    depth = np.where(dense, 15.0, 10.0) * k
    sb = np.where(dense, 0.5, 4.0) * k
    end = np.where(dense, 0.0, 1.0) * depth  # (dense: frontages run into the corners)
    nl = np.maximum(np.floor((length - 2 * end) / lw), 0).astype(np.int64)
    if nl.sum() == 0:
        cell.buildings["corners"] = np.zeros((0, 4, 2))
        return cell.buildings["corners"]
    e = np.repeat(np.arange(len(nl)), nl)
    i = np.arange(nl.sum()) - np.repeat(np.cumsum(nl) - nl, nl)
    step = (length - 2 * end)[e] / nl[e]
    j = np.arange(len(e))
    r = [rnd(seed, _SALT + 40 + q, CELL_L, ix, iy, j) for q in range(4)]
    # a dense block's frontage is continuous but for a rare gap (a passage, a courtyard gate)
    exists = r[0] < np.where(dense[e], np.maximum(cell.density[eb[e]], 0.94), cell.density[eb[e]])
    de = dense[e]
    bw = step * np.where(de, 0.9 + 0.1 * r[1], 0.5 + 0.4 * r[1])
    bd = depth[e] * np.where(de, 0.8 + 0.2 * r[2], 0.6 + 0.5 * r[2])
    setb = sb[e] * (0.5 + r[3])
    s0 = end[e] + i * step + (step - bw) / 2
    a0 = p0[e] + s0[:, None] * t[e]
    a1 = a0 + bw[:, None] * t[e]
    n0 = setb[:, None] * nrm[e]
    n1 = (setb + bd)[:, None] * nrm[e]
    corners = np.stack([a0 + n0, a1 + n0, a1 + n1, a0 + n1], 1)[exists]
    owner = eb[e][exists]
    if len(corners):
        inner = shapely.buffer(cell.raw, 0.5 * k)
        shapely.prepare(inner)
        pts = shapely.points(corners.reshape(-1, 2)).reshape(-1, 4)
        inside = shapely.contains(inner[owner][:, None], pts).all(1)
        corners = corners[inside]
    flat = warp(seed, corners.reshape(-1, 2))
    corners = flat.reshape(-1, 4, 2)
    if len(corners) and len(cell.art_full):
        clear = shapely.buffer(cell.art_full, (arterial_m / 2 + 3.0) * k, quad_segs=2)
        tree = shapely.STRtree(clear)
        hits = tree.query(shapely.polygons(corners), predicate="intersects")
        corners = np.delete(corners, np.unique(hits[0]), axis=0)
    cell.buildings["corners"] = corners
    return corners


def building_reach(cell: TownCell) -> tuple[float, float, float, float] | None:
    """Return Mercator bounds (west, south, east, north) that hold every building of the cell
    (None: it has none), without laying them out: a building's corners lie within half a
    metre of its raw block and are then moved by the warp, at most WARP_M ground metres per
    axis. A rect outside them needs none of the cell's buildings (cached on the cell)."""
    hit = cell.buildings.get("reach", False)
    if hit is not False:
        return hit
    if len(cell.raw) == 0:
        cell.buildings["reach"] = None
        return None
    x0, y0, x1, y1 = shapely.total_bounds(cell.raw)
    k_max = math.cosh(max(abs(y0), abs(y1)) / EARTH_R) * 1.01  # (warp: the point's own k)
    grow = 0.5 * cell.k + WARP_M * k_max + 1.0
    cell.buildings["reach"] = (x0 - grow, y0 - grow, x1 + grow, y1 + grow)
    return cell.buildings["reach"]


def buildings_near(
    seed: int,
    cell: TownCell,
    ix: int,
    iy: int,
    bounds: tuple[float, float, float, float],
    arterial_m: float = 14.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the cell's building corners ((n, 4, 2), :func:`buildings`) and which of them have
    a box meeting ``bounds`` (west, south, east, north): the boxes are kept with the corners,
    so a tile filters a cell's ≈ 10,000 buildings with four comparisons each instead of
    reducing their corners (which was most of a warm z16 city tile)."""
    cor = buildings(seed, cell, ix, iy, arterial_m)
    box = cell.buildings.get("box")
    if box is None:
        box = np.stack([cor[..., 0].min(1), cor[..., 1].min(1), cor[..., 0].max(1),
                        cor[..., 1].max(1)])  # fmt: skip
        cell.buildings["box"] = box
    x0, y0, x1, y1 = bounds
    return cor, (box[2] >= x0) & (box[0] <= x1) & (box[3] >= y0) & (box[1] <= y1)
