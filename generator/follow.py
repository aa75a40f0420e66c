"""Make the imagery follow the geography's water: coasts, lakes and rivers as the layer draws them.

A ×2 cascade from Blue Marble (7.4 km/px) cannot invent a 1 km lake or a 200 m river: the parent
never shows it, so the model never draws it. This module edits pixels toward the water layer at
the level being made, at two places of the cascade (ARCHITECTURE §9):

* **before a window is sampled**: the ×2-upsampled parent (the model's conditioning) is edited,
  so the model renders water texture where water is and land texture where land is;
* **after the parent correction** of a tile: the same edit again, so the low-frequency replace
  toward the parent (which knew only the coarser mask) cannot undo a shore the finer level
  resolves.

The edit is soft and local. Each pixel has a water coverage ``cov`` (1 on ocean and lake pixels
of the water layer, the river coverage on rivers) and a *waterness* ``w(px)`` from the colour
rule calibrated on Blue Marble (:func:`waterness`). Inside water, pixels that look like land are
pulled toward the local water colour (by ``1 − w``); on land, pixels that look like water are
pulled toward the local land colour (by ``w``); pixels that already agree are left to the model
(on water, to a quarter of their texture: :data:`WATER_FLATTEN`).
Local colours are normalised convolutions of the agreeing pixels of the *parent level* around the
tile (falling back smoothly to Blue Marble's mean ocean and land colours), so they are a pure
function of the parent level near each pixel: two tiles computing the same pixel get the same
colour and no seam appears at tile edges.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from .geography import Geography, classes
from .planner import Rect
from .resample import up2

#: Blue Marble's mean open-ocean and land colours (0–255), the fallbacks of the local colours.
OCEAN_RGB = np.array([10, 26, 60], np.float32)
LAND_RGB = np.array([70, 75, 45], np.float32)
#: Rivers and small lakes are shallower and greener than the open sea.
RIVER_RGB = np.array([40, 62, 70], np.float32)
#: σ of the local-colour blur, in parent pixels (its 4σ support must fit the parent margin).
SIGMA = 4.0
#: Parent pixels read around a tile for its local colours (≥ 4σ).
PARENT_MARGIN = 16
#: River coverage below this is not drawn (a 1/20-pixel river is invisible; skipping it lets
#: most land tiles skip the edit altogether).
MIN_COVERAGE = 0.05
#: Inside water every pixel moves at least this far toward the local water colour: a ×2 model
#: conditioned on a blurry parent paints land-like grain on lakes; real water at 1–100 m/px is
#: nearly flat, so only a quarter of the model's texture is kept there.
WATER_FLATTEN = 0.75


def waterness(rgb: np.ndarray) -> np.ndarray:
    """Return how much each pixel looks like water, 0..1, from its colour (0–255, (3, h, w)).

    Calibrated on Blue Marble against the GSHHS water layer at its own resolution (bench
    ``bench/follow.py``): water is dark and blue-dominant; dark forest has B < R, ice and cloud
    are bright and grey, desert is red-dominant.
    """
    r, g, b = rgb[0], rgb[1], rgb[2]
    lum = 0.299 * r + 0.587 * g + 0.114 * b
    blue = np.clip((b - r - 8.0) / 10.0, 0.0, 1.0)
    not_green = np.clip((b - 0.8 * g + 4.0) / 8.0, 0.0, 1.0)
    dark = np.clip((150.0 - lum) / 30.0, 0.0, 1.0)
    return blue * not_green * dark


def is_water(rgb: np.ndarray) -> np.ndarray:
    """Return the water mask a user's classifier of the imagery would give (waterness ≥ 0.5)."""
    return waterness(rgb) >= 0.5


def _to255(img: np.ndarray) -> np.ndarray:
    return (img + 1.0) * 127.5


def _local_colour(parent255: np.ndarray, weight: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Normalised convolution: the mean colour of the weighted parent pixels near each pixel,
    blending smoothly into ``fallback`` where there are none."""
    eps = 0.05
    # one call for the weight and its three weighted channels (σ 0 across the stack: scipy
    # filters each plane exactly as four separate calls would, at a quarter of the overhead)
    stack = np.concatenate([weight[None], parent255 * weight[None]])
    blur = gaussian_filter(stack, (0.0, SIGMA, SIGMA), mode="nearest", truncate=4.0)
    return (blur[1:] + eps * fallback[:, None, None]) / (blur[0] + eps)


#: Reach of the local-colour blur in parent pixels (scipy's radius: int(truncate · σ + 0.5)).
_REACH = int(4.0 * SIGMA + 0.5)


def _colours_at(
    par: np.ndarray, weight: np.ndarray, fallback: np.ndarray, need: np.ndarray, m: int
) -> np.ndarray:
    """Return the local colour (:func:`_local_colour`, ×2-upsampled as :func:`_up_crop` does)
    at the pixels of the rect where ``need`` is set, as (3, need.sum()).

    Only the parent region those pixels read is blurred and upsampled: a blurred value needs the
    parent within :data:`_REACH` pixels (edge-clamped at the parent's own border, which the
    region keeps), an upsampled one its two parent neighbours; so the values are bit for bit
    those of the whole rect, at the cost of the pixels that change.
    """
    rows, cols = np.nonzero(need.any(axis=1))[0], np.nonzero(need.any(axis=0))[0]
    # an even-aligned box of output pixels, so the ×2 grid keeps its phase
    i0, i1 = rows[0] // 2 * 2, (rows[-1] + 2) // 2 * 2
    j0, j1 = cols[0] // 2 * 2, (cols[-1] + 2) // 2 * 2
    # parent pixels read by the upsampling of that box (one extra each side), then the blur's
    # reach around them, clamped to the parent
    py0, py1 = m - 1 + i0 // 2, m + i1 // 2 + 1
    px0, px1 = m - 1 + j0 // 2, m + j1 // 2 + 1
    H, W = par.shape[1:]
    by0, by1 = max(py0 - _REACH, 0), min(py1 + _REACH, H)
    bx0, bx1 = max(px0 - _REACH, 0), min(px1 + _REACH, W)
    lc = _local_colour(par[:, by0:by1, bx0:bx1], weight[by0:by1, bx0:bx1], fallback)
    crop = lc[:, py0 - by0 : py1 - by0, px0 - bx0 : px1 - bx0]
    up = up2(torch.from_numpy(np.ascontiguousarray(crop))[None])[0].numpy()
    box = up[:, 2 : 2 + i1 - i0, 2 : 2 + j1 - j0]
    return box[:, need[i0:i1, j0:j1]]


class WaterFollower:
    """Edits imagery of a zoom level toward the geography's water layer there."""

    def __init__(self, geography: Geography, tile_size: int = 256) -> None:
        self.geography = geography
        self.tile_size = tile_size

    def coverage(
        self, z: int, rect: Rect, context: Rect | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (water coverage 0..1, river share 0..1) of each pixel of a rect at zoom z.

        Ocean and lake pixels of the ``water`` layer cover their pixel wholly; rivers by their
        coverage (anti-aliased where they are narrower than a pixel). ``context`` is a larger
        rect holding ``rect`` whose layers are already cached (a tile lies in the top-left
        corner of its own window): the layers are read there and cropped, so a tile costs no
        geography work of its own.
        """
        if context is None:
            context = rect
        dy, dx = rect.y0 - context.y0, rect.x0 - context.x0
        crop = (slice(dy, dy + rect.h), slice(dx, dx + rect.w))
        kind = self.geography.window("water", z, context)[crop]
        rivers = self.geography.window("rivers", z, context)[crop]
        shore = ((kind == classes.OCEAN) | (kind == classes.LAKE)).astype(np.float32)
        cov = np.maximum(shore, rivers)
        river_share = np.clip(rivers - shore, 0.0, 1.0) * (cov > 0)
        return cov.astype(np.float32), river_share.astype(np.float32)

    def edit(
        self,
        z: int,
        rect: Rect,
        img: np.ndarray,
        parent: np.ndarray,
        context: Rect | None = None,
    ) -> np.ndarray:
        """Return ``img`` ((3, h, w) in [-1, 1], pixels of ``rect`` at zoom z) edited to follow
        the water layer; ``parent`` ((3, h/2 + 2m, w/2 + 2m), m = :data:`PARENT_MARGIN`) is the
        parent level under the rect with that margin, the source of the local colours;
        ``context``: see :meth:`coverage`."""
        cov, river_share = self.coverage(z, rect, context)
        cov = np.where(cov >= MIN_COVERAGE, cov, 0.0).astype(np.float32)
        px = _to255(img.astype(np.float32))
        w = waterness(px)
        # only pixels with water, or looking like water, change: everywhere else the formula
        # below is exactly the identity, so it runs on those pixels alone
        todo = (cov > 0) | (w > 0)
        if not todo.any():
            return img.astype(np.float32)  # dry land that looks dry
        par = _to255(parent.astype(np.float32))
        wpar = waterness(par)
        m = (parent.shape[1] - rect.h // 2) // 2
        # the water colour matters only where there is water, the land colour only where the
        # pixel is not wholly water (elsewhere each is multiplied by an exact 0 below), so each
        # is computed only where it is read; the rest of the vector keeps the fallback
        cv_todo = cov[todo]
        water_c = np.repeat(OCEAN_RGB[:, None], len(cv_todo), axis=1)
        land_c = np.repeat(LAND_RGB[:, None], len(cv_todo), axis=1)
        wet, dry = cv_todo > 0, cv_todo < 1
        if wet.any():
            need = np.zeros_like(todo)
            need[todo] = wet
            water_c[:, wet] = _colours_at(par, wpar, OCEAN_RGB, need, m)
        if dry.any():
            need = np.zeros_like(todo)
            need[todo] = dry
            land_c[:, dry] = _colours_at(par, 1.0 - wpar, LAND_RGB, need, m)
        # a local "water" colour that does not read as water (a coast of dark forest) or a
        # "land" colour that does is replaced by the fallback, so the edit always agrees with
        # the classifier of :func:`is_water`
        water_c = np.where(waterness(water_c)[None] >= 0.9, water_c, OCEAN_RGB[:, None])
        land_c = np.where(waterness(land_c)[None] <= 0.1, land_c, LAND_RGB[:, None])
        water_c = water_c + (RIVER_RGB[:, None] - water_c) * river_share[todo][None]
        p, wt, cv = px[:, todo], w[todo][None], cov[todo][None]
        to_water = p + (water_c - p) * np.maximum(1.0 - wt, WATER_FLATTEN)
        to_land = p + (land_c - p) * wt
        px[:, todo] = cv * to_water + (1.0 - cv) * to_land
        return (px / 127.5 - 1.0).astype(np.float32)


def _up_crop(a: np.ndarray, m: int, h: int, w: int) -> np.ndarray:
    """Return the cascade's bilinear ×2 (:func:`~generator.resample.up2`) of the parent-level
    field ``a`` cropped to the rect (margin ``m`` ≥ 1 parent px): one extra parent pixel each
    side, so every output pixel is interpolated from its true neighbours, as a neighbour tile
    would do it."""
    crop = a[:, m - 1 : m + h // 2 + 1, m - 1 : m + w // 2 + 1]
    up = up2(torch.from_numpy(np.ascontiguousarray(crop))[None])[0].numpy()
    return up[:, 2 : 2 + h, 2 : 2 + w]


def pad_parent(parent: np.ndarray, margin: int = PARENT_MARGIN) -> np.ndarray:
    """Return a (3, h, w) parent region padded by ``margin`` (edge values): for windows, whose
    edit only conditions the model (their outputs are blended, so their edges never show)."""
    return np.pad(parent, ((0, 0), (margin, margin), (margin, margin)), mode="edge")
