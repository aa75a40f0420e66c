"""The ``earth`` world's water: GSHHS full-resolution shores, with fractal detail below their scale.

A pixel's kind is the GSHHS polygon its centre falls in (rasterio ``rasterize`` in the rect's
global pixel space, burning land, lakes, islands in lakes and ponds in that order, so the nested
levels resolve to land / lake / land / lake; outside every polygon is ocean). The polygons come
from the packed index of :mod:`.gshhs` (simplified to 0.2 px of each zoom band's finest zoom below
z12, as published from z12 on), never clipped per request beyond the cells under the window.

Below the data's resolution (GSHHS full: about 100-200 m) straight polygon edges would show from
z13 on, so each pixel samples the polygons not at its centre but at its centre displaced by a
deterministic fbm field (:mod:`.fractal`, domain warping): octaves from 610 m cells (lattice
level 16) down to 4 px of the zoom, amplitude 15 m for the first and × 0.8 per octave (rougher
at short wavelengths, like rocky shores), at most 62 m at z17 (Web Mercator metres; on the ground
× cos latitude), within the data's own accuracy; it starts to move pixels at z12. The field is a
function of ground position only, and each zoom adds only the octaves its pixels resolve, so a
parent is the 2×2 mean of its children up to those octaves (measured: ≥ 99% of parent pixels
agree with their children's majority, ≥ 98% in the densest archipelagos, as GSHHS itself). It is
evaluated every 4 global pixels and interpolated linearly (a pure function of the pixel all the
same). At z12-z13 the displaced sample is rounded to the nearest pixel of the zoom's raster; from
z14 on it reads the z13 raster's water and lake shares blurred by 3 of its pixels (57 m, Web
Mercator) and interpolated bilinearly, so the polygons' straight edges and the 45° steps of their
digitisation become smooth curves and the cost no longer grows with the zoom (CPU 15-30 ms per
tile at any zoom).

The signed distance to the shore is scipy's exact Euclidean distance transform (to the shore
pixels, those with a neighbour of the other side) on the kind grid grown by
:data:`DIST_MARGIN_PX` pixels, so it is the same whichever rect asks, up to that cap:
``|distance| ≤ 48 px × ground metres per pixel`` of the zoom (e.g. 7.3 km at z10, 57 m at z17 on
the equator); farther pixels read the cap. It is the distance from the pixel centre to the
nearest shore pixel centre plus half a pixel (±0.5 px on a shore pixel), times the ground size of
the pixel's row.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from scipy import ndimage

from ..planner import Rect
from . import classes, edt, fractal, gshhs
from .grid import HALF_WORLD, grid_width, ground_mpp, pixel_size

#: The signed distance saturates at this many pixels of the zoom (see the module doc).
DIST_MARGIN_PX = 48

#: Shore detail: first lattice level (2**16 cells across the world: 610 m), amplitude of that
#: octave in Web Mercator metres, gain per octave, and the sampling step of the field in pixels.
WARP_LEVEL0 = 16
WARP_AMP_M = 15.0
WARP_GAIN = 0.8
WARP_STEP = 4
WARP_MAX_LEVEL = 24

#: Beyond this zoom the shore is the smoothed raster of this zoom, sampled at the displaced
#: pixel centres (see :meth:`EarthWater._sample_smooth`), blurred by this many of its pixels.
SMOOTH_ZOOM = 13
SMOOTH_SIGMA_PX = 3.0

_VERSION = 1

#: GSHHS level burnt into the raster (0: outside every polygon) → water kind.
_KIND = np.array(
    [classes.OCEAN, classes.LAND, classes.LAKE, classes.LAND, classes.LAKE, classes.LAND]
    + [classes.OCEAN] * 250,
    np.uint8,
)


def warp_levels(z: int) -> range:
    """Return the fbm lattice levels of the shore detail at zoom z (cells ≥ 4 px of z, and
    ≥ 2.4 m: level 24 at most)."""
    return range(WARP_LEVEL0, max(WARP_LEVEL0, min(z + 7, WARP_MAX_LEVEL + 1)))


def warp_margin_px(z: int) -> int:
    """Return the largest shore displacement at zoom z in pixels, rounded up, plus one; 0 when
    it is under half a pixel (it would round to no displacement anywhere: z ≤ 11)."""
    n = len(warp_levels(z))
    amp = WARP_AMP_M * (1 - WARP_GAIN**n) / (1 - WARP_GAIN)
    if amp / pixel_size(z) < 0.5:
        return 0
    return int(math.ceil(amp / pixel_size(z))) + 1


def rasterize_levels(index: gshhs.PackedIndex, z: int, rect: Rect) -> np.ndarray:
    """Return uint8 GSHHS levels (0 outside all polygons) of pixel centres of ``rect`` at zoom z.

    ``rect`` rows must lie on the grid (no clamping here); x may wrap.
    """
    s = pixel_size(z)
    # Web Mercator box of the rect's outer edges, plus a pixel so clip edges stay outside
    xmin = -HALF_WORLD + (rect.x0 - 1) * s
    xmax = -HALF_WORLD + (rect.x0 + rect.w + 1) * s
    ymax = HALF_WORLD - (rect.y0 - 1) * s
    ymin = HALF_WORLD - (rect.y0 + rect.h + 1) * s
    shapes = []
    for *_, vals, geom in index.cells(z, xmin, ymin, xmax, ymax):
        g = shapely.clip_by_rect(geom, xmin, ymin, xmax, ymax)
        ok = ~shapely.is_empty(g)
        if not ok.any():
            continue
        g = shapely.transform(g[ok], lambda c: np.column_stack(
            ((c[:, 0] + HALF_WORLD) / s, (HALF_WORLD - c[:, 1]) / s)))  # fmt: skip
        shapes.extend(gshhs.geojson_shapes(g, vals[ok].tolist()))
    if not shapes:
        return np.zeros((rect.h, rect.w), np.uint8)
    return features.rasterize(
        shapes,
        out_shape=(rect.h, rect.w),
        transform=Affine.translation(rect.x0, rect.y0),
        fill=0,
        dtype="uint8",
    )


def _coarse_field(seed: int, z: int, c0: int, c1: int, r0: int, r1: int) -> np.ndarray:
    """Return the fbm displacement field (in units of the first octave) on columns c0..c1-1 and
    rows r0..r1-1 of zoom z: sampled every :data:`WARP_STEP` global pixels, interpolated."""
    w = grid_width(z)
    st = WARP_STEP
    i0, i1 = c0 // st, (c1 - 1) // st + 2
    j0, j1 = r0 // st, (r1 - 1) // st + 2
    u = ((np.arange(i0, i1) * st) % w + 0.5) / w
    v = (np.clip(np.arange(j0, j1) * st, 0, w - 1) + 0.5) / w
    coarse = fractal.fbm(seed, u, v, warp_levels(z), gain=WARP_GAIN)
    # linear interpolation as two small matrix products (rows × coarse × columns)
    return _lerp_matrix(r0, r1, j0, j1) @ coarse @ _lerp_matrix(c0, c1, i0, i1).T


def _lerp_matrix(a: int, b: int, k0: int, k1: int) -> np.ndarray:
    """Return the (b - a, k1 - k0) weights of pixels a..b-1 on samples every WARP_STEP px."""
    st = WARP_STEP
    p = np.arange(a, b)
    i, t = p // st - k0, ((p % st) / st).astype(np.float32)
    m = np.zeros((b - a, k1 - k0), np.float32)
    m[np.arange(b - a), i] = 1 - t
    m[np.arange(b - a), i + 1] += t
    return m


class EarthWater:
    """GSHHS shores as water kind and signed shore distance (see the module doc)."""

    def __init__(
        self,
        seed: int,
        dat: Path | None = None,
        meta: Path | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.seed = seed
        self.index = gshhs.shore_index(dat, meta, cache_dir)
        self.identity: dict[str, object] = {
            "data": f"GSHHS full ({gshhs.PACKAGE} 2.0.0)",
            "digest": self.index.digest,
            "index_version": gshhs.INDEX_VERSION,
            "version": _VERSION,
            "seed": seed,
            "distance_cap_px": DIST_MARGIN_PX,
            "detail": {
                "level0": WARP_LEVEL0,
                "amp_m": WARP_AMP_M,
                "gain": WARP_GAIN,
                "step_px": WARP_STEP,
                "max_level": WARP_MAX_LEVEL,
                "smooth_zoom": SMOOTH_ZOOM,
                "smooth_sigma_px": SMOOTH_SIGMA_PX,
            },
        }

    def kind(self, z: int, rect: Rect, detail: bool = True) -> np.ndarray:
        """Return only the uint8 water kind of ``rect`` (``detail=False``: GSHHS as published)."""
        return self._compute(z, rect, detail, distance=False)[0]

    def water(self, z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
        """Return (kind, signed ground distance to the shore in m; + water, − land)."""
        kind, dist = self._compute(z, rect, True, distance=True)
        return kind, dist

    def _field(self, z: int, c0: int, c1: int, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the x and y displacement fields (units of :data:`WARP_AMP_M`)."""
        fx = _coarse_field(self.seed, z, c0, c1, r0, r1)
        fy = _coarse_field(self.seed ^ 0x5BD1E995, z, c0, c1, r0, r1)
        return fx, fy

    def _sample_smooth(self, z: int, c0: int, c1: int, r0: int, r1: int) -> np.ndarray:
        """Return water kinds at the displaced pixel centres from the smoothed SMOOTH_ZOOM grid.

        Below :data:`SMOOTH_ZOOM` a pixel would show the polygons' straight edges and the
        45° steps of their digitisation; instead the land / water / lake indicators of the
        SMOOTH_ZOOM raster are blurred (Gaussian, :data:`SMOOTH_SIGMA_PX` of that zoom: a fixed
        ground scale, so every zoom below sees the same smooth shore) and interpolated
        bilinearly at the displaced sample, water where the water share exceeds one half. The
        cost does not grow with the zoom.
        """
        zs = SMOOTH_ZOOM
        f = float(1 << (z - zs))
        pad = int(math.ceil(4 * SMOOTH_SIGMA_PX)) + 2
        ws = grid_width(zs)
        # the raster region holding every displaced sample (displacements are at most
        # warp_margin_px) and the blur's reach around it: a larger region than needed changes
        # no blurred value inside it, so it is found before the displacement field
        mw = warp_margin_px(z)
        x0 = int(np.floor((c0 - mw) / f - 0.5)) - pad
        x1 = int(np.ceil((c1 + mw) / f - 0.5)) + pad + 1
        y0 = max(int(np.floor((r0 - mw) / f - 0.5)) - pad, 0)
        y1 = min(int(np.ceil((r1 + mw) / f - 0.5)) + pad + 1, ws)
        lev = rasterize_levels(self.index, zs, Rect(y0, x0, y1 - y0, x1 - x0))
        if (lev == lev.flat[0]).all():  # no shore within reach: nothing to displace or blur
            return np.full((r1 - r0, c1 - c0), _KIND[lev.flat[0]], np.uint8)
        fx, fy = self._field(z, c0, c1, r0, r1)
        k = WARP_AMP_M / pixel_size(z)
        # sample positions in SMOOTH_ZOOM pixel-centre index space
        cs = (np.arange(c0, c1)[None, :] + 0.5 + fx * k) / f - 0.5
        rs = (np.arange(r0, r1)[:, None] + 0.5 + fy * k) / f - 0.5
        kind = _KIND[lev]
        wet = ndimage.gaussian_filter((kind != classes.LAND).astype(np.float32), SMOOTH_SIGMA_PX)
        lake = ndimage.gaussian_filter((kind == classes.LAKE).astype(np.float32), SMOOTH_SIGMA_PX)
        # bilinear interpolation of both fields at once (real: water share, imaginary: lake)
        both = (wet + 1j * lake).astype(np.complex64)
        rr, cc = np.broadcast_arrays(np.clip(rs, 0, ws - 1) - y0, cs - x0)
        i, j = np.floor(rr).astype(np.int64), np.floor(cc).astype(np.int64)
        i = np.minimum(i, both.shape[0] - 2)
        tr, tc = (rr - i).astype(np.float32), (cc - j).astype(np.float32)
        top = both[i, j] + (both[i, j + 1] - both[i, j]) * tc
        bot = both[i + 1, j] + (both[i + 1, j + 1] - both[i + 1, j]) * tc
        v = top + (bot - top) * tr
        wi, li = v.real, v.imag
        out = np.full(wi.shape, classes.LAND, np.uint8)
        out[wi > 0.5] = classes.OCEAN
        out[(wi > 0.5) & (li > 0.5 * wi)] = classes.LAKE
        return out

    def _compute(
        self, z: int, rect: Rect, detail: bool, distance: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        w = grid_width(z)
        rows = np.clip(np.arange(rect.y0, rect.y0 + rect.h), 0, w - 1)
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        m = DIST_MARGIN_PX if distance else 0
        mw = warp_margin_px(z) if detail else 0
        # E: where the final kind is needed; R: where the raw polygons are sampled
        e0, e1 = max(r0 - m, 0), min(r1 + m, w)
        ec0, ec1 = rect.x0 - m, rect.x0 + rect.w + m
        q0, q1 = max(e0 - mw, 0), min(e1 + mw, w)
        qc0 = ec0 - mw
        lev = None
        if detail and z > SMOOTH_ZOOM:
            kind_e = self._sample_smooth(z, ec0, ec1, e0, e1)
        elif mw:
            raw = rasterize_levels(self.index, z, Rect(q0, qc0, q1 - q0, ec1 + mw - qc0))
            if (raw == raw.flat[0]).all():  # no shore within reach: nothing to displace
                lev = np.full((e1 - e0, ec1 - ec0), raw.flat[0], np.uint8)
            else:
                fx, fy = self._field(z, ec0, ec1, e0, e1)
                k = WARP_AMP_M / pixel_size(z)
                src_c = np.rint(fx * k).astype(np.int64) + np.arange(ec0, ec1)[None, :] - qc0
                src_r = np.rint(fy * k).astype(np.int64) + np.arange(e0, e1)[:, None]
                src_r = np.clip(src_r, q0, q1 - 1) - q0
                lev = raw[src_r, src_c]
        else:
            raw = rasterize_levels(self.index, z, Rect(q0, qc0, q1 - q0, ec1 + mw - qc0))
            lev = raw[e0 - q0 : e1 - q0, ec0 - qc0 : ec1 - qc0]
        if lev is not None:
            kind_e = _KIND[lev]
        core = (slice(r0 - e0, r1 - e0), slice(m, m + rect.w))
        idx = rows - r0
        kind = kind_e[core][idx]
        if not distance:
            return kind, None
        water = kind_e != classes.LAND
        if water.all():
            d_px = np.full(kind_e.shape, float(m), np.float32)
        elif not water.any():
            d_px = np.full(kind_e.shape, -float(m), np.float32)
        else:
            # one transform to the shore pixels of either side (those with an 8-neighbour of the
            # other side): the nearest pixel of the other side always has a shore pixel of this
            # side next to it, so this is the distance to the other side within a pixel, at half
            # the cost of a transform per side
            shore = ndimage.maximum_filter(water, 3) != ndimage.minimum_filter(water, 3)
            d = edt.distance_transform_edt(~shore) + 0.5  # scipy's, bit for bit
            d_px = np.clip(np.where(water, d, -d), -m, m)
        mpp = ground_mpp(z, Rect(r0, rect.x0, r1 - r0, 1))
        dist = (d_px[core] * mpp[:, None]).astype(np.float32)[idx]
        return kind, dist
