"""The two resampling operators of the cascade, shared by training and sampling.

``up2`` (bilinear ×2, half-pixel centres) makes the parent conditioning and ``box_down2`` (2×2
mean) defines what a parent is; training and inference must use the very same functions, or the
model is conditioned on something it never saw.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def up2(x: torch.Tensor) -> torch.Tensor:
    """Bilinear ×2 upsample of (B, C, H, W), ``align_corners=False``."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def box_down2(x: torch.Tensor) -> torch.Tensor:
    """2×2 box mean of (B, C, H, W); H and W must be even."""
    return F.avg_pool2d(x, 2)


def box_down2_np(a: np.ndarray) -> np.ndarray:
    """2×2 box mean of an (H, W, C) or (H, W) array, cropping a trailing odd row/column."""
    h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    a = a[:h, :w].astype(np.float32)
    return 0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2])
