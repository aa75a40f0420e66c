"""Deterministic multi-octave noise defined on the whole world, independent of zoom.

The geography's detail below each source's resolution is fractal noise that is a pure function of
(seed, position): value noise on lattices aligned with the tile pyramid (lattice level L has 2**L
cells across the world, one per tile of zoom L, and wraps in x like the world), each lattice value
a counter-based hash of (seed, L, ix, iy) — no state, no order, any crop is O(crop) and two tiles
or two zooms that sample the same ground point get the same number. The noise field of
:mod:`generator.noise` is per-zoom white noise for the sampler; this is band-limited noise for the
layers, so a coarse tile of a layer is the average of its children up to the octaves the
children add.

Coordinates are normalised Web Mercator: u = x / world width in [0, 1), v = row / grid height in
[0, 1] (0 at the north edge); :func:`uv` gives them for a pixel rect.
"""

from __future__ import annotations

import numpy as np

from ..planner import Rect
from .grid import grid_width

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def _mix(h: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser: a bijective avalanche on uint64 (wrapping arithmetic is intended)
    h = (h ^ (h >> np.uint64(30))) * _M1
    h = (h ^ (h >> np.uint64(27))) * _M2
    return h ^ (h >> np.uint64(31))


def hash_uniform(seed: int, level: int, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """Return a uniform value in [-1, 1) for each integer lattice point (float64)."""
    with np.errstate(over="ignore"):
        h = _mix(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) ^ (np.uint64(level) * _GOLD))
        h = _mix(h ^ (ix.astype(np.int64).astype(np.uint64) * _M1))
        h = _mix(h ^ (iy.astype(np.int64).astype(np.uint64) * _M2))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 52) - 1.0


def uv(z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
    """Return normalised (u of each column, v of each row) of a rect's pixel centres."""
    w = grid_width(z)
    u = ((np.arange(rect.x0, rect.x0 + rect.w) % w) + 0.5) / w
    v = (np.arange(rect.y0, rect.y0 + rect.h) + 0.5) / w
    return u, v


def runs(u: np.ndarray) -> list[slice]:
    """Return the slices of a 1-D ``u`` between its wraps (where it falls back, 1 → 0).

    A rect across the antimeridian has u near 1 then near 0: a lattice spanned from its min to
    its max would be the whole world's width at that level (GiB at fine levels). Each run is
    evaluated alone instead; every column's value is computed the same way, so it is the same.
    """
    if u.ndim != 1 or len(u) < 2:
        return [slice(None)]
    cuts = (np.nonzero(np.diff(u) < 0)[0] + 1).tolist()
    ends = [0, *cuts, len(u)]
    return [slice(a, b) for a, b in zip(ends[:-1], ends[1:], strict=True)]


def value_noise(seed: int, level: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Return smooth value noise of lattice level ``level`` on the grid u (columns) × v (rows).

    ``u`` and ``v`` are 1-D (the result is (len(v), len(u))) or 2-D arrays of the same shape
    (then the result has that shape). Quintic interpolation makes it C²; x wraps at 2**level.
    """
    n = 1 << level
    if u.ndim == 1 and v.ndim == 1 and len(pieces := runs(u)) > 1:
        return np.concatenate([value_noise(seed, level, u[p], v) for p in pieces], axis=1)
    if u.ndim == 1 and v.ndim == 1:
        # separable grid: hash only the lattice points under the rect, then interpolate
        fx, fy = u * n, v * n
        ix, iy = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
        sx, sy = _fade(fx - ix), _fade(fy - iy)
        kx0, ky0 = int(ix.min()), int(iy.min())
        lx = np.arange(kx0, int(ix.max()) + 2)
        ly = np.arange(ky0, int(iy.max()) + 2)
        lat = hash_uniform(seed, level, (lx % n)[None, :], ly[:, None])
        jx, jy = ix - kx0, iy - ky0
        # x interpolation once per lattice row, then whole rows gathered for y: the same
        # float64 operations in the same order as the 2-D path, ≈ 5× fewer gathers
        a = lat[:, jx]
        rows = a + (lat[:, jx + 1] - a) * sx[None, :]
        top, bot = rows[jy], rows[jy + 1]
        return (top + (bot - top) * sy[:, None]).astype(np.float32)
    else:
        fx, fy = u * n, v * n
        ix, iy = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
        sx, sy = _fade(fx - ix), _fade(fy - iy)
        x0, x1 = ix % n, (ix + 1) % n
        a = hash_uniform(seed, level, x0, iy)
        b = hash_uniform(seed, level, x1, iy)
        c = hash_uniform(seed, level, x0, iy + 1)
        d = hash_uniform(seed, level, x1, iy + 1)
    top = a + (b - a) * sx
    bot = c + (d - c) * sx
    return (top + (bot - top) * sy).astype(np.float32)


def smoothstep(t: np.ndarray) -> np.ndarray:
    """Return the cubic ramp 3t² − 2t³ of ``t`` clipped to 0..1 (0 below, 1 above): the soft
    threshold every layer fades its rules in and out with."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _fade(t: np.ndarray) -> np.ndarray:
    return t * t * t * (t * (t * 6 - 15) + 10)


def fbm(
    seed: int,
    u: np.ndarray,
    v: np.ndarray,
    levels: range,
    gain: float = 0.5,
    ridged: bool = False,
) -> np.ndarray:
    """Return the sum of value-noise octaves at lattice ``levels``, amplitude × ``gain`` per octave.

    The first level has amplitude 1. ``ridged`` folds each octave (1 − 2|n|), the classic ridged
    multifractal look of mountain ranges. The result is not normalised; its standard deviation is
    about 0.35 × sqrt(sum of squared amplitudes).
    """
    out = None
    amp = 1.0
    for lv in levels:
        n = value_noise(seed, lv, u, v)
        if ridged:
            n = 1.0 - 2.0 * np.abs(n)
        out = n * amp if out is None else out + n * amp
        amp *= gain
    if out is None:
        shape = (len(v), len(u)) if u.ndim == 1 and v.ndim == 1 else u.shape
        return np.zeros(shape, np.float32)
    return out.astype(np.float32)


def level_for_wavelength(z: int, pixels: float) -> int:
    """Return the lattice level whose cell is about ``pixels`` px of zoom z (e.g. 8 px → z + 5)."""
    return max(0, int(round(z + 8 - np.log2(max(pixels, 1e-9)))))
