"""Ramp-weighted blending of overlapping windows and the parent correction.

A pixel's value is the weighted mean of the windows covering it. In each M-px overlap the newer
window's weight rises along a smoothstep ``r`` that is exactly 0 on its first two pixels and
exactly 1 on its last two, while the older window's is ``1 − r``: the weights sum to one, each
window's degraded border pixels get no weight, and the 2-px border around a tile (read by the
parent correction) depends only on the windows that make the tile.

Windows are summed in sorted (row, col) order: float addition is not associative, and a tile must
be byte-identical whatever was computed or cached before it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .planner import Geometry, Rect, Window
from .resample import box_down2, up2


@lru_cache(maxsize=16)
def ramp(margin: int) -> np.ndarray:
    """Return the rising ramp over an overlap of ``margin`` px (0,0,…,1,1)."""
    t = np.clip((np.arange(margin, dtype=np.float64) - 1.5) / (margin - 4), 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)


@lru_cache(maxsize=16)
def _weights_1d(geometry: Geometry, flat_start: bool) -> np.ndarray:
    w = np.ones(geometry.window, dtype=np.float32)
    r = ramp(geometry.margin)
    if not flat_start:
        w[: geometry.margin] = r
    w[geometry.tile :] = 1.0 - r
    return w


def window_weight(geometry: Geometry, win: Window) -> np.ndarray:
    """Return the (W, W) blend weight of a window (no top ramp on row 0: nothing above it)."""
    return np.outer(_weights_1d(geometry, win.row == 0), _weights_1d(geometry, False))


def blend(geometry: Geometry, z: int, rect: Rect, windows: dict[Window, np.ndarray]) -> np.ndarray:
    """Return the (C, h, w) weighted mean of windows over a rect (rows inside the grid).

    Windows are (C, W, W): pixels (C = 3) or a latent model's latents. They are placed with x
    wrapping; a window may touch the rect at more than one placement on the smallest grids.
    """
    grid = (1 << z) * geometry.tile
    channels = next(iter(windows.values())).shape[0] if windows else 3
    acc = np.zeros((channels, rect.h, rect.w), dtype=np.float32)
    wsum = np.zeros((rect.h, rect.w), dtype=np.float32)
    for win in sorted(windows, key=lambda w: (w.row, w.col)):
        wr = geometry.window_rect(win)
        weight = window_weight(geometry, win)
        data = windows[win]
        y0, y1 = max(wr.y0, rect.y0), min(wr.y0 + wr.h, rect.y0 + rect.h)
        if y0 >= y1:
            continue
        base = wr.x0 - rect.x0
        base -= ((base + wr.w) // grid) * grid  # leftmost placement that can still reach the rect
        for bx in range(base, rect.w, grid):
            x0, x1 = max(bx, 0), min(bx + wr.w, rect.w)
            if x0 >= x1:
                continue
            wy, wx = slice(y0 - wr.y0, y1 - wr.y0), slice(x0 - bx, x1 - bx)
            ry, rx = slice(y0 - rect.y0, y1 - rect.y0), slice(x0, x1)
            wgt = weight[wy, wx]
            acc[:, ry, rx] += wgt * data[:, wy, wx].astype(np.float32)
            wsum[ry, rx] += wgt
    if np.any(wsum <= 0):
        raise ValueError("blend region not covered by the given windows")
    return acc / wsum


def parent_correct(blended: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Return the tile made consistent with its parent: ``out + up2(parent − box_down2(out))``.

    Args:
        blended: (3, T+4, T+4) blended pixels of the tile and a 2-px border, in [-1, 1].
        parent: (3, T/2+2, T/2+2) parent pixels under it, with a 1-px border, in [-1, 1].

    Returns:
        (3, T, T): the tile's pixels, low frequencies replaced by the parent's. The border makes
        the bilinear upsample of the correction continuous across tile edges.
    """
    b = torch.from_numpy(blended)[None]
    d = torch.from_numpy(parent)[None] - box_down2(b)
    out = b + up2(d)
    return out[0, :, 2:-2, 2:-2].numpy()
