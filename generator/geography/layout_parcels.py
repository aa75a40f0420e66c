"""Field parcels, settlement street blocks and buildings, laid out per lattice-14 cell.

A cell of lattice :data:`CELL_L` (a z14 tile: ≈ 1.7 km at 45°) holds its own subdivision,
clipped to the cell, so a cell never needs its neighbours and any tile gathers only the cells it
overlaps. Sizes are in ground metres (converted to Mercator with the cell row's scale), shapes are
decided by hashes of (seed, cell) and by the coarse geography at the cell (:class:`~.layout_net.
Coarse`):

- **Fields** (cells with farmland): a style per lattice-10 region — large rectangles, medium
  fields or long strips at a regional orientation —, terraces (narrow strips along the contour)
  where the coarse slope is steep, centre-pivot circles in dry regions; a few parcels are
  orchards; some regions have hedgerows on their parcel boundaries, and one or two parcel
  boundaries per cell are farm tracks.
- **Settlements** (cells with urban land or a village nearby): a street grid rotated per cell
  (blocks 70–150 m, streets 10–12 m) whose blocks carry a building density — from the coarse
  urban fraction in towns and cities, falling off from the centre in villages.
- **Buildings** (only asked for at ≤ 2 m/px): rectangles on lots along the block sides, aligned
  with the street grid, present with the block's density; dense blocks get deep, continuous
  frontages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely

from . import layout_classes as K
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
#: Field styles: (row width range m, parcel length range m).
STYLES = {
    "large": ((250.0, 600.0), (300.0, 800.0)),
    "medium": ((100.0, 280.0), (150.0, 400.0)),
    "strips": ((20.0, 60.0), (150.0, 500.0)),
    "terraces": ((15.0, 30.0), (60.0, 200.0)),
}


@dataclass
class FieldCell:
    """The parcels of one cell: polygons (Mercator), their use class, tracks, hedges flag."""

    polys: np.ndarray
    use: np.ndarray
    tracks: np.ndarray
    hedges: bool
    style: str
    size: float = 1.0  # ``[layout.params]`` field_scale of the cell (1: as generated)


@dataclass
class TownCell:
    """The street blocks of one cell, their building density and the grid frame."""

    blocks: np.ndarray
    density: np.ndarray
    frame: tuple[float, float, float, float]  # centre x, centre y, angle, mercator scale
    dims: tuple[float, float, float]  # block length a, width b, street width (ground m)
    centres: np.ndarray  # (n, 2) block centres in the local frame (ground m)
    arterials: np.ndarray  # LineStrings: every 4th/5th street of towns, drawn as roads
    buildings: dict = field(default_factory=dict)


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


def field_cell(
    seed: int, coarse: Coarse, ix: int, iy: int, size: float = 1.0, track_density: float = 1.0
) -> FieldCell | None:
    """Return the field parcels of cell (ix, iy) of :data:`CELL_L`, or None without farmland.

    ``size`` scales the parcels' widths and lengths (and the pivots' spacing), ``track_density``
    the share of row boundaries that are farm tracks (``[layout.params]``; 1: as generated).
    """
    x0, y0, x1, y1 = _box(ix, iy)
    g = np.linspace(0.1, 0.9, 3)
    px = (x0 + g[None, :] * (x1 - x0)).repeat(3, 0).ravel()
    py = (y1 - g[:, None] * (y1 - y0)).repeat(3, 1).ravel()
    farm = coarse.sample(px, py, "farm")
    if farm.max() < 0.05:
        return None
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    slope = float(np.median(coarse.sample(px, py, "slope")))  # a valley floor is not a slope
    dry = float(coarse.sample(np.array([cx]), np.array([cy]), "dry")[0])
    k = mercator_scale(CELL_L, iy)
    rx, ry = ix >> (CELL_L - REGION_L), iy >> (CELL_L - REGION_L)
    r_style = float(rnd(seed, CELL_SEED_SALT + 1, REGION_L, rx, ry))
    r_angle = float(rnd(seed, CELL_SEED_SALT + 2, REGION_L, rx, ry))
    r_hedge = float(rnd(seed, CELL_SEED_SALT + 3, REGION_L, rx, ry))
    jit = float(rnd(seed, CELL_SEED_SALT + 4, CELL_L, ix, iy)) - 0.5
    box = shapely.box(x0, y0, x1, y1)
    if dry > 0.45 and slope < 0.05 and r_style < 0.75:
        # centre pivots: n × n circles that tile the cell exactly (never cross its border)
        n = max(1, int(round((x1 - x0) / k / (800.0 * size))))
        step = (x1 - x0) / n
        i = np.arange(n)
        gx, gy = np.meshgrid(x0 + (i + 0.5) * step, y1 - (i + 0.5) * step)
        keep = rnd(seed, CELL_SEED_SALT + 5, CELL_L, ix, iy, np.arange(n * n)) < 0.8
        pts = shapely.points(gx.ravel()[keep], gy.ravel()[keep])
        polys = shapely.buffer(pts, 0.46 * step, quad_segs=12)
        use = np.full(len(polys), K.PIVOT, np.uint8)
        return FieldCell(polys, use, np.array([], object), False, "pivots", size)
    if slope > 0.1:
        style = "terraces"
        ang = float(coarse.sample(np.array([cx]), np.array([cy]), "aspect")[0]) + np.pi / 2
    else:
        style = "large" if r_style < 0.3 else "medium" if r_style < 0.75 else "strips"
        ang = (r_angle - 0.5) * np.pi / 2 if r_angle > 0.3 else 0.0  # some regions face N-S
        ang += 0.15 * jit
    (wlo, whi), (llo, lhi) = STYLES[style]
    if size != 1.0:
        wlo, whi, llo, lhi = wlo * size, whi * size, llo * size, lhi * size
    frame = (cx, cy, ang, k)
    half = 0.75 * (x1 - x0) / k  # half the local box: covers the rotated cell
    nr = int(2 * half / wlo) + 2
    rows = np.arange(nr)
    widths = wlo + (whi - wlo) * rnd(seed, CELL_SEED_SALT + 6, CELL_L, ix, iy, rows)
    vedge = -half + np.concatenate([[0.0], np.cumsum(widths)])
    nr = int(np.searchsorted(vedge, half)) + 1
    vedge = vedge[: nr + 1]
    nc = int(2 * half / llo) + 2
    jj = rows[:nr, None] * nc + np.arange(nc)[None, :]
    lengths = llo + (lhi - llo) * rnd(seed, CELL_SEED_SALT + 7, CELL_L, ix, iy, jj + 5000)
    shift = rnd(seed, CELL_SEED_SALT + 8, CELL_L, ix, iy, rows[:nr]) * lhi
    uedge = -half - shift[:, None] + np.concatenate([np.zeros((nr, 1)), np.cumsum(lengths, 1)], 1)
    u0, u1 = uedge[:, :-1], uedge[:, 1:]
    v0 = np.broadcast_to(vedge[:-1, None], u0.shape)
    v1 = np.broadcast_to(vedge[1:, None], u0.shape)
    inside = (u1 > -half) & (u0 < half)
    corners = _rects(u0[inside], u1[inside], v0[inside], v1[inside], frame)
    polys = shapely.intersection(shapely.polygons(corners), box)
    area = shapely.area(polys)
    keep = area > 0.02 * (wlo * llo * k * k)
    polys = polys[keep]
    use = np.full(len(polys), K.FIELD, np.uint8)
    if style != "terraces":
        q = rnd(seed, CELL_SEED_SALT + 9, CELL_L, ix, iy, np.arange(len(polys)))
        if style != "large":  # orchards are small parcels, commoner in the drier south
            use[q < (0.08 if 0.1 < dry < 0.5 else 0.03)] = K.ORCHARD
    else:
        use[:] = K.TERRACE
    tracks = np.array([], object)
    if style != "terraces":
        p_track = 0.12 * track_density
        pick = rnd(seed, CELL_SEED_SALT + 10, CELL_L, ix, iy, np.arange(1, nr)) < p_track
        tv = vedge[1:nr][pick]
        if len(tv):
            tx, ty = _to_world(
                np.stack([np.full_like(tv, -half), np.full_like(tv, half)], -1),
                np.stack([tv, tv], -1),
                frame,
            )
            lines = shapely.linestrings(np.stack([tx, ty], -1))
            tracks = shapely.intersection(lines, box)
            tracks = tracks[~shapely.is_empty(tracks)]
    hedges = r_hedge < 0.4 and dry < 0.3 and style in ("medium", "strips")
    return FieldCell(polys, use, tracks, hedges, style, size)


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


def town_cell(seed: int, coarse: Coarse, villages: list, ix: int, iy: int) -> TownCell | None:
    """Return the street blocks of cell (ix, iy), or None (no urban land, no village near).

    ``villages``: (outline, x, y, radius) of the villages whose outlines may reach the cell.
    """
    x0, y0, x1, y1 = _box(ix, iy)
    g = np.linspace(0.1, 0.9, 3)
    px = (x0 + g[None, :] * (x1 - x0)).repeat(3, 0).ravel()
    py = (y1 - g[:, None] * (y1 - y0)).repeat(3, 1).ravel()
    urban = coarse.sample(px, py, "urban")
    near = [
        v
        for v in villages
        if v[0] is not None and shapely.intersects(v[0], shapely.box(x0, y0, x1, y1))
    ]
    if urban.max() < 0.01 and not near:
        return None
    k = mercator_scale(CELL_L, iy)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    dense = float(urban.mean()) > 0.4
    q = rnd(seed, CELL_SEED_SALT + 30, CELL_L, ix, iy, np.arange(5))
    rx, ry = ix >> 2, iy >> 2  # lattice-12 districts share an orientation
    ang = (float(rnd(seed, CELL_SEED_SALT + 31, 12, rx, ry)) - 0.5) * np.pi / 2 + 0.3 * (q[0] - 0.5)
    a = (70.0 + 40.0 * q[1]) if dense else (90.0 + 60.0 * q[1])
    b = (50.0 + 30.0 * q[2]) if dense else (60.0 + 40.0 * q[2])
    st = 12.0 if dense else 10.0
    frame = (cx, cy, ang, k)
    half = 0.75 * (x1 - x0) / k
    iu = np.arange(int(np.floor((-half - q[3] * a) / a)), int(np.ceil(half / a)) + 1)
    iv = np.arange(int(np.floor((-half - q[4] * b) / b)), int(np.ceil(half / b)) + 1)
    gu, gv = np.meshgrid(iu * a + q[3] * a, iv * b + q[4] * b)
    gu, gv = gu.ravel(), gv.ravel()
    corners = _rects(gu + st / 2, gu + a - st / 2, gv + st / 2, gv + b - st / 2, frame)
    box = shapely.box(x0, y0, x1, y1)
    full = shapely.polygons(corners)
    ok = shapely.intersects(full, box)
    blocks = shapely.intersection(full[ok], box)
    area = shapely.area(blocks)
    keep = area > 0.2 * (a - st) * (b - st) * k * k
    blocks = blocks[keep]
    centres = np.stack([gu[ok][keep] + a / 2, gv[ok][keep] + b / 2], -1)
    bx, by = _to_world(centres[:, 0], centres[:, 1], frame)
    dens = 0.3 + 0.65 * np.clip(coarse.sample(bx, by, "urban"), 0.0, 1.0)
    for _, vx, vy, vr in near:
        d = np.hypot(bx - vx, by - vy) / vr
        dens = np.maximum(dens, 0.95 * np.clip(1.0 - d, 0.0, 1.0) ** 0.6)
    arterials = np.array([], object)
    if urban.max() >= 0.05:  # towns and cities: every 4th street along, every 5th across
        au = iu[iu % 4 == 0] * a + q[3] * a
        av = iv[iv % 5 == 0] * b + q[4] * b
        ends = np.array([-half, half])
        lu = _to_world(np.repeat(au[:, None], 2, 1), np.broadcast_to(ends, (len(au), 2)), frame)
        lv = _to_world(np.broadcast_to(ends, (len(av), 2)), np.repeat(av[:, None], 2, 1), frame)
        xy = np.concatenate([np.stack(lu, -1), np.stack(lv, -1)])
        if len(xy):
            arterials = shapely.intersection(shapely.linestrings(xy), box)
            arterials = arterials[~shapely.is_empty(arterials)]
    return TownCell(blocks, dens.astype(np.float32), frame, (a, b, st), centres, arterials)


def buildings(seed: int, cell: TownCell, ix: int, iy: int) -> np.ndarray:
    """Return (n, 4, 2) Mercator corners of the cell's buildings (cached on the cell).

    Lots run along the four sides of every block (a template shared by the cell's blocks, which
    all have the same size); a lot has a building with the block's density, of hashed width,
    depth and setback; dense blocks (density > 0.8) get deep buildings on narrow lots with no
    setback: continuous frontages.
    """
    hit = cell.buildings.get("corners")
    if hit is not None:
        return hit
    a, b, st = cell.dims
    A, B = a - st, b - st
    out = []
    for dense in (False, True):
        sel = (cell.density > 0.8) if dense else (cell.density <= 0.8)
        if not sel.any():
            continue
        lw, depth, sb = (11.0, 16.0, 0.5) if dense else (15.0, 11.0, 3.0)
        nu = max(int(A // lw), 1)
        nv = max(int((B - 2 * (depth + sb)) // lw), 0)
        lots = []  # side, position of the lot's start along the side, lot length
        for side in (0, 1):  # bottom, top: along u
            for i in range(nu):
                lots.append((side, -A / 2 + i * A / nu, A / nu))
        for side in (2, 3):  # left, right: along v, between the corner buildings
            for i in range(nv):
                lots.append((side, -B / 2 + depth + sb + i * lw, lw))
        lot = np.array(lots)
        nb, nl = int(sel.sum()), len(lot)
        bidx = np.nonzero(sel)[0]
        j = bidx[:, None] * 1000 + np.arange(nl)[None, :] + (4_000_000 if dense else 0)
        r = [rnd(seed, CELL_SEED_SALT + 40 + t, CELL_L, ix, iy, j) for t in range(4)]
        exists = r[0] < cell.density[bidx][:, None]
        wf = (0.85 + 0.15 * r[1]) if dense else (0.5 + 0.4 * r[1])
        bw = lot[None, :, 2] * wf
        bd = depth * ((0.8 + 0.2 * r[2]) if dense else (0.6 + 0.4 * r[2]))
        setb = sb * (0.5 + r[3])
        pos = lot[None, :, 1] + (lot[None, :, 2] - bw) / 2
        side = np.broadcast_to(lot[None, :, 0], (nb, nl))
        along_u = side < 2
        # (u0, u1, v0, v1) in the block's frame, by side
        u0 = np.where(along_u, pos, np.where(side == 2, -A / 2 + setb, A / 2 - setb - bd))
        u1 = np.where(along_u, pos + bw, np.where(side == 2, -A / 2 + setb + bd, A / 2 - setb))
        v0 = np.where(side == 0, -B / 2 + setb, np.where(side == 1, B / 2 - setb - bd, pos))
        v1 = np.where(side == 0, -B / 2 + setb + bd, np.where(side == 1, B / 2 - setb, pos + bw))
        cu = cell.centres[bidx, 0][:, None]
        cv = cell.centres[bidx, 1][:, None]
        e = exists.ravel()
        corners = _rects(
            (u0 + cu).ravel()[e], (u1 + cu).ravel()[e], (v0 + cv).ravel()[e],
            (v1 + cv).ravel()[e], cell.frame,
        )  # fmt: skip
        out.append(corners)
    corners = np.concatenate(out) if out else np.zeros((0, 4, 2))
    x0, y0, x1, y1 = _box(ix, iy)
    inside = (
        (corners[..., 0].min(1) >= x0)
        & (corners[..., 0].max(1) <= x1)
        & (corners[..., 1].min(1) >= y0)
        & (corners[..., 1].max(1) <= y1)
    )
    corners = corners[inside]
    cell.buildings["corners"] = corners
    return corners
