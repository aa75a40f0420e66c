"""The water edit's per-pixel arithmetic (:mod:`.follow`), compiled with numba into one pass.

The numpy form of the edit made about twenty full-size temporaries per call (the colour rule of
the image, two interpolated colour planes, the fallbacks, the two targets and the blend): over a
cold deep link's 240 edits that was about a quarter of what the water edit cost beyond the
layers it reads. Here each pixel is computed once, in the same float32 operations in the same
order (numpy's float32 arithmetic with float32 constants, no fused multiply-adds), so the output
is the numpy form's bit for bit (``tests/test_follow.py`` holds the numpy form and compares).
The kernels release the GIL (``nogil``), as numpy's loops did, so the other evaluation thread's
model calls go on while a window is edited.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_F0 = np.float32(0.0)
_F1 = np.float32(1.0)
_K255 = np.float32(127.5)
_LR, _LG, _LB = np.float32(0.299), np.float32(0.587), np.float32(0.114)
_B_OFF, _B_DIV = np.float32(8.0), np.float32(10.0)
_G_MUL, _G_OFF, _G_DIV = np.float32(0.8), np.float32(4.0), np.float32(8.0)
_D_TOP, _D_DIV = np.float32(150.0), np.float32(30.0)
_WATER_MIN, _LAND_MAX = np.float32(0.9), np.float32(0.1)


@njit(cache=True, inline="always")
def _clip01(x: np.float32) -> np.float32:
    return min(max(x, _F0), _F1)


@njit(cache=True, inline="always")
def _wness(r: np.float32, g: np.float32, b: np.float32) -> np.float32:
    """:func:`.follow.waterness` of one pixel (0–255), in its float32 operations."""
    lum = _LR * r + _LG * g + _LB * b
    blue = _clip01((b - r - _B_OFF) / _B_DIV)
    not_green = _clip01((b - _G_MUL * g + _G_OFF) / _G_DIV)
    dark = _clip01((_D_TOP - lum) / _D_DIV)
    return blue * not_green * dark


@njit(cache=True, nogil=True)
def waterness255(rgb: np.ndarray) -> np.ndarray:
    """Return :func:`.follow.waterness` of a (3, h, w) float32 image in 0–255, bit for bit."""
    _, h, w = rgb.shape
    out = np.empty((h, w), np.float32)
    for i in range(h):
        for j in range(w):
            out[i, j] = _wness(rgb[0, i, j], rgb[1, i, j], rgb[2, i, j])
    return out


@njit(cache=True, inline="always")
def _at(blk: np.ndarray, ch: int, r0: int, r1: int, c0: int, c1: int, ti, tj) -> np.float32:
    """Bilinear value of block colours, rows first then columns, as two strided passes do."""
    lo = blk[ch, r0, c0]
    va = lo + (blk[ch, r1, c0] - lo) * ti
    lo = blk[ch, r0, c1]
    vb = lo + (blk[ch, r1, c1] - lo) * ti
    return va + (vb - va) * tj


@njit(cache=True, nogil=True)
def edit_pixels(
    img: np.ndarray,
    wness: np.ndarray,
    cov: np.ndarray,
    river_share: np.ndarray,
    wblk: np.ndarray,
    lblk: np.ndarray,
    use_w: bool,
    use_l: bool,
    k0: int,
    skip: int,
    phases: np.ndarray,
    ocean: np.ndarray,
    land: np.ndarray,
    river: np.ndarray,
    flatten: np.float32,
) -> np.ndarray:
    """Return the edited (3, h, w) image in [-1, 1] (see :meth:`.follow.WaterFollower.edit`);
    ``wness``: the image's :func:`waterness255` (the caller has it for its early exit).

    ``wblk`` / ``lblk``: the local water and land colours on the parent's 2×2 blocks (used where
    ``use_w`` / ``use_l``, else the fallbacks ``ocean`` / ``land``); pixel i of either axis lies
    at block ``k0 + (skip + i) // 4`` (clamped to the grid) plus phase ``phases[(skip + i) % 4]``.
    """
    _, h, w = img.shape
    out = np.empty((3, h, w), np.float32)
    grid = wblk if use_w else lblk  # both have the blocks' shape where they are used
    hb, wb = grid.shape[1], grid.shape[2]
    wc = np.empty(3, np.float32)
    lc = np.empty(3, np.float32)
    for i in range(h):
        qi = skip + i
        ti = phases[qi % 4]
        r0 = min(max(k0 + qi // 4, 0), hb - 1)
        r1 = min(max(k0 + qi // 4 + 1, 0), hb - 1)
        for j in range(w):
            r = (img[0, i, j] + _F1) * _K255
            g = (img[1, i, j] + _F1) * _K255
            b = (img[2, i, j] + _F1) * _K255
            wv = wness[i, j]
            c = cov[i, j]
            if c == _F0 and wv == _F0:
                # the blend below is then exactly the pixel: 0 · (finite) + (p + (x − p) · 0)
                out[0, i, j] = r / _K255 - _F1
                out[1, i, j] = g / _K255 - _F1
                out[2, i, j] = b / _K255 - _F1
                continue
            qj = skip + j
            tj = phases[qj % 4]
            c0 = min(max(k0 + qj // 4, 0), wb - 1)
            c1 = min(max(k0 + qj // 4 + 1, 0), wb - 1)
            # a colour whose weight is an exact 0 here (water where c = 0, land where c = 1)
            # is left at its (finite) fallback: 0 · finite adds a zero, as before
            for ch in range(3):
                wc[ch] = ocean[ch]
                lc[ch] = land[ch]
            if use_w and c > _F0:
                for ch in range(3):
                    wc[ch] = _at(wblk, ch, r0, r1, c0, c1, ti, tj)
                # a local colour that disagrees with the colour rule falls back (see edit)
                if not _wness(wc[0], wc[1], wc[2]) >= _WATER_MIN:
                    for ch in range(3):
                        wc[ch] = ocean[ch]
            if use_l and c < _F1:
                for ch in range(3):
                    lc[ch] = _at(lblk, ch, r0, r1, c0, c1, ti, tj)
                if not _wness(lc[0], lc[1], lc[2]) <= _LAND_MAX:
                    for ch in range(3):
                        lc[ch] = land[ch]
            rs = river_share[i, j]
            pull = max(_F1 - wv, flatten)
            for ch in range(3):
                p = r if ch == 0 else (g if ch == 1 else b)
                wcc = wc[ch] + (river[ch] - wc[ch]) * rs
                to_water = p + (wcc - p) * pull
                to_land = p + (lc[ch] - p) * wv
                v = c * to_water + (_F1 - c) * to_land
                out[ch, i, j] = v / _K255 - _F1
    return out
