"""One cascade step applied to a user's own image (``orbis upscale``).

The image is taken to be imagery of zoom Z−1 at latitude φ; the output, twice its size, is what
orbis would make at zoom Z: the same windows, ramps, noise field and parent correction as the
pyramid, laid over the image instead of the global grid (no x wrap; windows at the image borders
have flat outer edges).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import tiles
from .blend import ramp
from .models.sr_model import SuperResolutionModel
from .noise import NoiseField
from .planner import Geometry
from .resample import box_down2, up2
from .samplers import sample_window


def _starts(size: int, window: int, stride: int) -> list[int]:
    if size <= window:
        return [0]
    starts = list(range(0, size - window, stride))
    starts.append(size - window)
    return sorted(set(starts))


def _weight_1d(start: int, window: int, size: int, margin: int) -> np.ndarray:
    w = np.ones(window, dtype=np.float32)
    r = ramp(margin)
    if start > 0:
        w[:margin] = r
    if start + window < size:
        w[-margin:] = np.minimum(w[-margin:], 1.0 - r)
    return w


def upscale_array(
    image: np.ndarray,
    zoom: int,
    model: SuperResolutionModel,
    lat: float = 0.0,
    seed: int = 0,
    steps: int | None = None,
    geometry: Geometry | None = None,
    mpp: float | None = None,
) -> np.ndarray:
    """Return the ×2 image (uint8 H·2×W·2×3) of an RGB uint8 image of zoom ``zoom − 1``.

    ``mpp`` is the output's ground resolution the model is told; by default that of a Web
    Mercator pixel of ``zoom`` at ``lat``. A georeferenced input knows its own (a UTM scene's
    10 m is not a zoom's cell size), so ``orbis upscale`` passes it.
    """
    geometry = geometry or Geometry()
    h, w = image.shape[:2]
    H, W = 2 * h, 2 * w
    win = geometry.window
    # pad the input by reflection so the output is at least one window each way
    ph, pw = max(0, (win // 2) - h), max(0, (win // 2) - w)
    src = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect") if ph or pw else image
    sh, sw = 2 * src.shape[0], 2 * src.shape[1]
    parent = torch.from_numpy(src.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0)[None]
    cond = up2(parent)
    if mpp is None:
        mpp = tiles.equator_resolution(zoom) * math.cos(math.radians(lat))
    field = NoiseField(seed)
    feats = _image_features(cond[0].numpy(), mpp) if getattr(model, "conditioned", False) else None
    acc = np.zeros((3, sh, sw), dtype=np.float32)
    wsum = np.zeros((sh, sw), dtype=np.float32)
    stride = model.stride
    hh, ww = min(win, sh) // stride * stride, min(win, sw) // stride * stride
    for y0 in _starts(sh, win, geometry.tile):
        for x0 in _starts(sw, win, geometry.tile):
            c = cond[:, :, y0 : y0 + hh, x0 : x0 + ww]
            noise = torch.from_numpy(field.crop(zoom, y0, x0, hh, ww))[None]
            f = None if feats is None else feats[:, :, y0 : y0 + hh, x0 : x0 + ww]
            out = sample_window(model, c, noise, mpp, steps, f)[0].numpy()
            wy = _weight_1d(y0, hh, sh, geometry.margin)
            wx = _weight_1d(x0, ww, sw, geometry.margin)
            wgt = np.outer(wy, wx)
            acc[:, y0 : y0 + hh, x0 : x0 + ww] += wgt * out
            wsum[y0 : y0 + hh, x0 : x0 + ww] += wgt
    missing = wsum <= 0
    blended = acc / np.where(missing, 1.0, wsum)
    blended[:, missing] = cond[0].numpy()[:, missing]
    b = torch.from_numpy(blended)[None]
    corrected = (b + up2(parent - box_down2(b)))[0].numpy()[:, :H, :W]
    return np.clip(np.rint((corrected + 1) * 127.5), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def _image_features(cond: np.ndarray, mpp: float) -> torch.Tensor:
    """Return (1, F, H, W) conditioning features of an image without layers (a user's photo).

    They are measured on the ×2-upsampled input the way the training labels were measured on
    the photos (:func:`generator.training.labels.from_image`: colour water and vegetation,
    edges, straight lines); what only layers know (land cover, roads) is marked unknown.
    """
    from .models import conditions
    from .training import labels

    rgb = np.clip((cond.transpose(1, 2, 0) + 1.0) * 127.5, 0, 255).astype(np.uint8)
    stack, have = labels.from_image(rgb, mpp)
    return torch.from_numpy(conditions.features(stack, have, mpp))[None]
