"""Fast evaluation on pixel rects: :mod:`.fractal` noise and global grids sampled at any zoom.

A ``planet`` tile needs some fifty octaves of world noise; :func:`.fractal.value_noise` costs
about 5 ms per 256² octave (four gathers of the lattice per pixel), which would put a layer far
over its 50 ms budget. On a pixel rect u and v are separable, so one octave is a product of
three small matrices — (rows × lattice rows) weights · lattice · (lattice columns × columns)
weights — the same numbers as :func:`.fractal.value_noise` (same hash, same quintic fade, tested
to 1e-5), for a fraction of the cost. Global grids (the base level's fields, the routing grid)
are sampled the same way: the interpolation weights come from
:meth:`scipy.interpolate.BSpline.design_matrix` (cubic B-spline of coefficients from
:func:`scipy.ndimage.spline_filter`, or linear), x wrapping and rows clamped like the pixel grid.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy.interpolate import BSpline
from scipy.ndimage import spline_filter

from ..planner import Rect
from . import fractal
from .grid import grid_width


def _rows_cols(z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
    # global pixel rows (clamped at the poles) and columns (wrapped) of a rect
    w = grid_width(z)
    rows = np.clip(np.arange(rect.y0, rect.y0 + rect.h), 0, w - 1)
    cols = np.arange(rect.x0, rect.x0 + rect.w) % w
    return rows, cols


def _lattice_weights(t: np.ndarray, n_wrap: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Return (dense weights (len(t), k), lattice indices (k,)) of quintic value-noise lerp."""
    it = np.floor(t).astype(np.int64)
    s = fractal._fade(t - it)
    k0 = int(it.min())
    k = int(it.max()) + 2 - k0
    wts = np.zeros((len(t), k), np.float64)
    j = it - k0
    r = np.arange(len(t))
    wts[r, j] += 1.0 - s
    wts[r, j + 1] += s
    idx = np.arange(k0, k0 + k)
    if n_wrap is not None:
        idx = idx % n_wrap
    return wts, idx


def value_noise_uv(seed: int, level: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Return :func:`.fractal.value_noise` on the separable grid u × v (1-D), float32."""
    n = 1 << level
    if len(u) > 1 and np.any(np.diff(u) < 0):
        u = np.where(u < u[0], u + 1.0, u)  # a rect across the antimeridian: keep u increasing
    if (u.max() - u.min()) * n > len(u) or (v.max() - v.min()) * n > len(v):
        # cells finer than the pixels: the matrices would be larger than the gathers
        return fractal.value_noise(seed, level, u, v)
    wx, lx = _lattice_weights(u * n, n)
    wy, ly = _lattice_weights(v * n, None)
    lat = fractal.hash_uniform(seed, level, lx[None, :], ly[:, None])
    return (wy @ lat @ wx.T).astype(np.float32)


def fbm_uv(
    seed: int,
    u: np.ndarray,
    v: np.ndarray,
    levels: range,
    gain: float = 0.5,
    ridged: bool = False,
) -> np.ndarray:
    """Return :func:`.fractal.fbm` on the separable grid u × v (1-D), float32."""
    out = np.zeros((len(v), len(u)), np.float32)
    amp = 1.0
    for lv in levels:
        n = value_noise_uv(seed, lv, u, v)
        if ridged:
            n = 1.0 - 2.0 * np.abs(n)
        out += np.float32(amp) * n
        amp *= gain
    return out


def fbm_rect(
    seed: int, z: int, rect: Rect, levels: range, gain: float = 0.5, ridged: bool = False
) -> np.ndarray:
    """Return :func:`fbm_uv` on the pixel centres of a rect of zoom z."""
    u, v = fractal.uv(z, rect)
    return fbm_uv(seed, u, v, levels, gain, ridged)


#: integer rotation-scalings (a, b) of the octaves of :func:`rotated_noise`: x → (a x + b y,
#: −b x + a y) keeps the lattice periodic across the antimeridian (one turn of u moves the
#: lattice by whole periods), and turns each octave's axis-aligned artefacts a different way
_TURNS = ((2, 1), (1, -2), (1, 2), (2, -1))


def rotated_noise(
    seed: int,
    level: int,
    z: int,
    rect: Rect,
    turn: int,
    warp: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Return value noise of lattice ``level`` on coordinates turned by ``_TURNS[turn % 4]``.

    Same hash and quintic fade as :func:`.fractal.value_noise`, on a lattice turned by about
    27° or 63° and scaled by 1/√5 (so its cells are about those of ``level`` − 1): ridges of
    turned octaves do not line up with the tile grid. The lattice points under the rect are
    hashed once, then gathered per pixel.
    """
    a, b = _TURNS[turn % len(_TURNS)]
    u, v = fractal.uv(z, rect)
    if len(u) > 1 and np.any(np.diff(u) < 0):
        u = np.where(u < u[0], u + 1.0, u)
    n = 1 << (level - 1)
    # lattice range under the rect: the turned coordinates are linear, so the corners bound it
    if warp is None:
        du = dv = np.zeros((1, 1))
        pc = n * (a * u[[0, -1, 0, -1]] + b * v[[0, 0, -1, -1]])
        qc = n * (-b * u[[0, -1, 0, -1]] + a * v[[0, 0, -1, -1]])
    else:
        du, dv = (np.ascontiguousarray(x, np.float64) for x in warp)
        x, y = u[None, :] + du, v[:, None] + dv
        pc = n * np.array(_extent(a * x + b * y))
        qc = n * np.array(_extent(-b * x + a * y))
    p0, q0 = int(np.floor(pc.min())), int(np.floor(qc.min()))
    lp = np.arange(p0, int(np.floor(pc.max())) + 2)
    lq = np.arange(q0, int(np.floor(qc.max())) + 2)
    lat = fractal.hash_uniform(seed, level, (lp % n)[None, :], (lq % n)[:, None])
    return _turned_lerp(u, v, du, dv, float(n), a, b, p0, q0, lat.astype(np.float32))


def _extent(a: np.ndarray) -> tuple[float, float]:
    return float(a.min()), float(a.max())


@njit(cache=True)
def _turned_lerp(u, v, du, dv, n, a, b, p0, q0, lat):  # pragma: no cover
    h, w = v.shape[0], u.shape[0]
    out = np.empty((h, w), np.float32)
    hl, wl = lat.shape
    warped = du.shape[0] == h and du.shape[1] == w
    for i in range(h):
        for j in range(w):
            x = u[j]
            y = v[i]
            if warped:
                x += du[i, j]
                y += dv[i, j]
            p = n * (a * x + b * y)
            q = n * (-b * x + a * y)
            fp = np.floor(p)
            fq = np.floor(q)
            c = min(max(int(fp) - p0, 0), wl - 2)
            r = min(max(int(fq) - q0, 0), hl - 2)
            tp = p - fp
            tq = q - fq
            sp = tp * tp * tp * (tp * (tp * 6 - 15) + 10)
            sq = tq * tq * tq * (tq * (tq * 6 - 15) + 10)
            top = lat[r, c] + (lat[r, c + 1] - lat[r, c]) * sp
            bot = lat[r + 1, c] + (lat[r + 1, c + 1] - lat[r + 1, c]) * sp
            out[i, j] = top + (bot - top) * sq
    return out


def rotated_fbm(seed: int, z: int, rect: Rect, levels: range, gain: float = 0.5) -> np.ndarray:
    """Return the fbm of :func:`rotated_noise` octaves (each turned differently), float32."""
    out = np.zeros((rect.h, rect.w), np.float32)
    amp = 1.0
    for i, lv in enumerate(levels):
        out += np.float32(amp) * rotated_noise(seed, lv, z, rect, i)
        amp *= gain
    return out


#: mean of (1 − |n|)² over value noise n (measured on 4M samples), so octaves add zero mean
_RIDGE_MEAN = 0.448


def ridged_multifractal(
    seed: int,
    z: int,
    rect: Rect,
    levels: range,
    gain: float = 0.5,
    warp: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Return Musgrave's ridged multifractal of :func:`rotated_noise` octaves (float32).

    Each octave is the ridge (1 − |n|)² of its noise, weighted by the ridges of the octaves
    above it, so the fine detail sits on the crests and the valleys between ranges stay smooth;
    each octave's expected contribution is subtracted (zero-mean given the coarser octaves), so
    the mean of a finer zoom's 2×2 block stays the coarser pixel. About 0 to 1.3. ``warp`` bends
    the ridges (see :func:`rotated_noise`).
    """
    out = np.zeros((rect.h, rect.w), np.float32)
    weight = np.ones_like(out)
    amp = 1.0
    for i, lv in enumerate(levels):
        sig = (1.0 - np.abs(rotated_noise(seed, lv, z, rect, i, warp))) ** 2
        out += np.float32(amp) * weight * (sig - np.float32(_RIDGE_MEAN))
        weight = np.clip(weight * sig * 2.0, 0.0, 1.0)
        amp *= gain
    return out + np.float32(_RIDGE_MEAN)


def detail_levels(first: int, z: int, last: int) -> range:
    """Return lattice levels ``first``..min(z + 7, ``last``): octaves down to 2-px cells at z.

    The finest octave of zoom z has cells of 2 px, so zoom z + 1 adds exactly one octave whose
    mean over a 2×2 block of its pixels is about zero (zoom consistency); ``last`` caps the cost
    once further octaves are below anything the layers need.
    """
    return range(first, min(z + 7, last) + 1)


class GlobalGrid:
    """A float field on an M×M grid covering the Web Mercator world, sampled at any zoom.

    Cell (i, j) is centred on the pixel centre (i, j) of the zoom whose grid is M wide. ``order``
    3 interpolates with a cubic B-spline (it passes through the cell values), 1 linearly, 0 takes
    the nearest cell.
    """

    PAD = 12

    def __init__(self, data: np.ndarray, order: int = 3) -> None:
        self.m = data.shape[1]
        self.order = order
        self.data = np.asarray(data, np.float32)
        p = self.PAD
        padded = np.concatenate([data[:, -p:], data, data[:, :p]], axis=1)
        padded = np.pad(padded, ((p, p), (0, 0)), mode="edge").astype(np.float64)
        if order == 3:
            padded = spline_filter(padded, order=3, mode="mirror")
        self.coef = padded.astype(np.float32)

    def _weights(self, g: np.ndarray) -> tuple[np.ndarray, int]:
        k = self.order
        lo = int(np.floor(g.min())) - 2
        hi = int(np.floor(g.max())) + 3
        # basis j is centred on cell lo + j
        t = np.arange(lo - (k + 1) / 2, hi + (k + 1) / 2 + 1)
        dm = BSpline.design_matrix(g, t, k, extrapolate=True).toarray()
        return dm, lo

    def sample(self, z: int, rect: Rect) -> np.ndarray:
        """Return the field at the pixel centres of a rect of zoom z (float32 (h, w))."""
        rows, cols = _rows_cols(z, rect)
        scale = self.m / grid_width(z)
        if scale == 1.0:
            return self.data[np.ix_(rows, cols)]
        gy = (rows + 0.5) * scale - 0.5
        gx = (cols + 0.5) * scale - 0.5
        if self.order == 0:  # nearest cell
            ri = np.clip(np.floor(gy + 0.5).astype(np.int64), 0, self.m - 1)
            return self.data[np.ix_(ri, np.floor(gx + 0.5).astype(np.int64) % self.m)]
        # keep x continuous across the wrap within this rect
        if gx.max() - gx.min() > self.m / 2:
            gx = np.where(gx < self.m / 2, gx + self.m, gx)
        wy, ly = self._weights(gy)
        wx, lx = self._weights(gx)
        p = self.PAD
        ri = np.clip(np.arange(ly, ly + wy.shape[1]) + p, 0, self.coef.shape[0] - 1)
        ci = (np.arange(lx, lx + wx.shape[1]) % self.m) + p
        sub = self.coef[np.ix_(ri, ci)].astype(np.float64)
        return (wy @ sub @ wx.T).astype(np.float32)


def block_mean(data: np.ndarray, z: int, rect: Rect) -> np.ndarray:
    """Return the mean of the cells of an M×M world grid under each pixel of a coarser zoom.

    Zoom z's grid must be no finer than the data (M = f · grid_width(z), f a power of two): each
    pixel is the exact average of the f × f cells it covers, so coarse zooms aggregate the grid.
    """
    m = data.shape[1]
    f = m // grid_width(z)
    rows, cols = _rows_cols(z, rect)
    ri = (rows[:, None] * f + np.arange(f)[None, :]).ravel()
    ci = (cols[:, None] * f + np.arange(f)[None, :]).ravel()
    sub = data[np.ix_(ri, ci)]
    return sub.reshape(rect.h, f, rect.w, f).mean(axis=(1, 3), dtype=np.float64).astype(np.float32)
