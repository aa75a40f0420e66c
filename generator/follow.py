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
tile (falling back smoothly to Blue Marble's mean ocean and land colours), computed on the
parent's 2×2 blocks (the blur is wide: a half-resolution grid costs an eighth and loses nothing)
and interpolated linearly to the pixels, so they are a pure function of the parent level near
each pixel: two tiles computing the same pixel get the same colour and no seam appears at tile
edges. The per-pixel arithmetic runs compiled, in one pass (:mod:`.follow_kernel`, bit for bit
the numpy form that ``tests/test_follow.py`` keeps).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from . import follow_kernel
from .geography import Geography, classes
from .geography.layout import MARGIN as LAYOUT_MARGIN
from .planner import Rect

#: Blue Marble's mean open-ocean and land colours (0–255), the fallbacks of the local colours.
OCEAN_RGB = np.array([10, 26, 60], np.float32)
LAND_RGB = np.array([70, 75, 45], np.float32)
#: Rivers and small lakes are shallower and greener than the open sea.
RIVER_RGB = np.array([40, 62, 70], np.float32)
#: σ of the local-colour blur, in parent pixels (its 3.5σ support must fit the parent margin).
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
    """Normalised convolution on the 2×2 blocks of the parent (the blur is wide and smooth, so a
    half-resolution grid loses nothing and costs an eighth): the mean colour of the weighted
    parent pixels near each block, blending smoothly into ``fallback`` where there are none.

    Blocks are 2×2 parent pixels from the array's first pixel; a tile's parent starts on an even
    global pixel (a multiple of 128 minus :data:`PARENT_MARGIN`), so its blocks are the same for
    every tile and the colours have no seam. Returns (3, H//2, W//2).
    """
    eps = 0.05
    h, w = weight.shape[0] // 2 * 2, weight.shape[1] // 2 * 2
    stack = np.concatenate([weight[None], parent255 * weight[None]])[:, :h, :w]
    blocks = 0.25 * (
        stack[:, 0::2, 0::2] + stack[:, 1::2, 0::2] + stack[:, 0::2, 1::2] + stack[:, 1::2, 1::2]
    )
    # σ 0 across the stack: each plane is blurred on its own, in one call
    blur = gaussian_filter(blocks, (0.0, SIGMA / 2, SIGMA / 2), mode="nearest", truncate=_TRUNCATE)
    return (blur[1:] + eps * fallback[:, None, None]) / (blur[0] + eps)


#: Truncation of the block blur (radius int(3.5 · σ/2 + 0.5) = 7 blocks, 14 parent pixels: the
#: reach of a tile's pixels stays inside its PARENT_MARGIN, so no tile sees the edge clamp).
_TRUNCATE = 3.5


#: Where the rect's pixels fall between block centres: rect pixel i sits at parent pixel
#: m + (i + 0.5)/2 − 0.5 and block k's centre at parent 2k + 0.5, so at block (m − 0.75)/2 + i/4:
#: four pixels per block, at these fractions past a block centre.
_PHASES = np.array([0.125, 0.375, 0.625, 0.875], np.float32)


def _up4_origin(m: int) -> tuple[int, int]:
    """Return (k0, skip): rect pixel i lies in block ``k0 + (skip + i) // 4`` of the parent's
    2×2 blocks, at phase ``_PHASES[(skip + i) % 4]`` past its centre (margin ``m``)."""
    q0 = (m - 0.75) / 2  # a multiple of 1/8: exact
    k0 = int(np.floor(q0 - 0.125))
    return k0, int(round((q0 - 0.125 - k0) * 4))


def _up4(a: np.ndarray, axis: int, n: int, m: int) -> np.ndarray:
    """Return ``a`` (blocks of the parent, margin ``m`` parent pixels) linearly interpolated at
    the ``n`` rect pixels along ``axis`` (1 or 2): one strided write per phase, no gathers.
    Blocks past the array's edge repeat its last one."""
    k0, skip = _up4_origin(m)
    nb = (skip + n + 3) // 4
    lo = a.take(np.arange(k0, k0 + nb), axis=axis, mode="clip")
    d = a.take(np.arange(k0 + 1, k0 + 1 + nb), axis=axis, mode="clip") - lo
    shape = list(a.shape)
    shape[axis] = nb * 4
    out = np.empty(shape, np.float32)
    for p, t in enumerate(_PHASES):
        sl = [slice(None)] * 3
        sl[axis] = slice(p, None, 4)
        out[tuple(sl)] = lo + d * t
    sl = [slice(None)] * 3
    sl[axis] = slice(skip, skip + n)
    return out[tuple(sl)]


def local_colour_up(
    par: np.ndarray, weight: np.ndarray, fallback: np.ndarray, h: int, w: int, m: int
) -> np.ndarray:
    """Return the local colour (:func:`_local_colour`) at every pixel of an (h, w) rect whose
    parent is ``par`` with margin ``m``: bilinear between block centres (rows, then columns)."""
    lc = _local_colour(par, weight, fallback)
    return _up4(_up4(lc, 1, h, m), 2, w, m)


#: Placeholder block colours where a colour is not needed (its fallback is used).
_NO_BLOCKS = np.zeros((3, 1, 1), np.float32)


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
        # read on the context grown by the layout's margin: the rect the layout (and so the
        # painter) reads its water and land cover on, so one computation serves both edits
        m = LAYOUT_MARGIN
        grown = Rect(context.y0 - m, context.x0 - m, context.h + 2 * m, context.w + 2 * m)
        dy, dx = rect.y0 - grown.y0, rect.x0 - grown.x0
        crop = (slice(dy, dy + rect.h), slice(dx, dx + rect.w))
        kind = self.geography.window("water", z, grown)[crop]
        rivers = self.geography.window("rivers", z, grown)[crop]
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
        *,
        final: bool = False,
    ) -> np.ndarray:
        """Return ``img`` ((3, h, w) in [-1, 1], pixels of ``rect`` at zoom z) edited to follow
        the water layer; ``parent`` ((3, h/2 + 2m, w/2 + 2m), m = :data:`PARENT_MARGIN`) is the
        parent level under the rect with that margin, the source of the local colours;
        ``context``: see :meth:`coverage`. ``final`` (a finished tile, not a window's
        conditioning) does not change this edit: it is applied at both places alike."""
        cov, river_share = self.coverage(z, rect, context)
        cov = np.where(cov >= MIN_COVERAGE, cov, 0.0).astype(np.float32)
        img = np.ascontiguousarray(img, np.float32)
        # only pixels with water, or looking like water, change: everywhere else the formula
        # is exactly the identity (and a tile with no such pixel is returned as it is)
        w = follow_kernel.waterness255(np.ascontiguousarray(_to255(img)))
        wet = bool((cov > 0).any())
        if not wet and not (w > 0).any():
            return img.copy()  # dry land that looks dry
        par = np.ascontiguousarray(_to255(parent.astype(np.float32)))
        wpar = follow_kernel.waterness255(par)
        m = (parent.shape[1] - rect.h // 2) // 2
        # the water colour matters only where there is water; the land colour only where a
        # pixel is not wholly water and is water or looks like it (elsewhere each is
        # multiplied by an exact 0)
        dry = bool(((cov < 1) & ((cov > 0) | (w > 0))).any())
        water_b = _local_colour(par, wpar, OCEAN_RGB) if wet else _NO_BLOCKS
        land_b = _local_colour(par, 1.0 - wpar, LAND_RGB) if dry else _NO_BLOCKS
        k0, skip = _up4_origin(m)
        # per pixel (compiled, bit for bit the numpy form of tests/test_follow.py): the local
        # colours interpolated between block centres; a local "water" colour that does not read
        # as water (a coast of dark forest) or a "land" colour that does replaced by the
        # fallback, so the edit always agrees with the classifier of :func:`is_water`; rivers
        # tinted toward RIVER_RGB; pixels pulled toward water by max(1 − w, WATER_FLATTEN) and
        # toward land by w, blended by the coverage
        return follow_kernel.edit_pixels(
            img,
            w,
            cov,
            np.ascontiguousarray(river_share, np.float32),
            np.ascontiguousarray(water_b, np.float32),
            np.ascontiguousarray(land_b, np.float32),
            wet,
            dry,
            k0,
            skip,
            _PHASES,
            OCEAN_RGB,
            LAND_RGB,
            RIVER_RGB,
            np.float32(WATER_FLATTEN),
        )


def pad_parent(parent: np.ndarray, margin: int = PARENT_MARGIN) -> np.ndarray:
    """Return a (3, h, w) parent region padded by ``margin`` (edge values): for windows, whose
    edit only conditions the model (their outputs are blended, so their edges never show)."""
    return np.pad(parent, ((0, 0), (margin, margin), (margin, margin)), mode="edge")
