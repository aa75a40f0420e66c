"""A world whose base is the user's imagery: the source over a fallback world, feathered.

:class:`SourceBase` is the base level of a ``raster`` or ``xyz`` world. Its zoom is the
source's native zoom, and unlike the built-in bases it answers *every* zoom at or above it
(:meth:`SourceBase.tile_at`, which the pyramid asks instead of box-meaning children: a native
zoom of 14 would otherwise need 4^14 tiles for zoom 0). Each tile is

* the fallback world's bytes, exactly, where the tile holds no data (outside the footprint, or
  nodata everywhere in it);
* the source's pixels, exactly, where every pixel lies at least ``feather`` native-zoom pixels
  inside the data;
* in between, ``w·source + (1 − w)·fallback`` with ``w`` a smoothstep of the distance to the
  nearest no-data pixel (``scipy.ndimage.distance_transform_edt``) over ``feather`` pixels,
  measured on a read of the tile with a margin of that width, so that a pixel gets the same
  weight whichever tile holds it (no seam at tile edges) and the footprint edge fades over the
  feather instead of cutting.

The feather is a ground distance (native-zoom pixels): at zoom ``z`` it is ``feather / 2^(nz-z)``
pixels, so levels agree (a parent is the mean of its children within resampling error) and at
coarse zooms the edge is a pixel wide, as the data's extent is.

Below the native zoom the pyramid's cascade runs from these tiles as from any base. Where a
tile's cone at the native zoom holds no data, its windows see exactly the fallback's pixels,
noise and model, so when the raster world's seed, model, sampler and geography are the
fallback's (``orbis world new`` writes them so) its generated tiles there equal the fallback
world's bytes; within about two native-zoom tiles of the footprint (the cascade's reach: each
level reads its parent's neighbourhood) they follow the composited imagery instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.ndimage import distance_transform_edt, map_coordinates

from .. import tiles
from ..planner import Rect
from . import ImagerySource

#: bump when the composition changes bytes (hashed into the world's identity)
COMPOSE_VERSION = "1"

#: (z, x, y) → uint8 (S, S, 3): a fallback world's tile
TileFn = Callable[[int, int, int], np.ndarray]


def black(size: int = 256) -> TileFn:
    """Return the ``fallback = "none"`` world: black everywhere (a no-data colour)."""

    def tile(z: int, x: int, y: int) -> np.ndarray:
        return np.zeros((size, size, 3), np.uint8)

    return tile


def feather_weight(inside: np.ndarray, width: float) -> np.ndarray:
    """Return the source's weight: 0 outside, a smoothstep over ``width`` px inside the edge.

    ``inside`` is the boolean data mask of a window that extends at least ``width`` px past the
    pixels whose weights are used (farther no-data pixels cannot change them). A pixel next to
    a no-data pixel is at distance 1, so its weight is ``s((1 − 0.5) / width)``.
    """
    if width <= 0 or inside.all() or not inside.any():
        return inside.astype(np.float32)
    d = distance_transform_edt(inside)
    u = np.clip((d - 0.5) / width, 0.0, 1.0).astype(np.float32)
    return u * u * (3.0 - 2.0 * u)


class SourceBase:
    """The base level of a raster/xyz world (see the module docstring)."""

    def __init__(
        self,
        source: ImagerySource,
        fallback: TileFn,
        *,
        feather: int = 32,
        fallback_identity: str = "none",
    ) -> None:
        self.source = source
        self.fallback = fallback
        self.feather = int(feather)
        self.fallback_identity = fallback_identity
        self.zoom = int(source.native_zoom)
        self.tile_size = int(source.tile_size)
        self._bounds = source.bounds()
        self._weights: dict[tuple[int, int], np.ndarray] = {}

    def identity(self) -> dict[str, object]:
        """Return what decides the base's bytes: source, fallback, feather, native zoom."""
        return {
            "kind": "source",
            "source": self.source.identity(),
            "native_zoom": self.zoom,
            "fallback": self.fallback_identity,
            "feather": self.feather,
            "compose": COMPOSE_VERSION,
            "follow": "outside the data",  # FootprintFollower
        }

    def tile(self, x: int, y: int) -> np.ndarray:
        """Return the composited tile (x, y) of the native zoom."""
        return self.tile_at(self.zoom, x, y)

    def width_at(self, z: int) -> float:
        """Return the feather width in pixels of zoom z (a ground distance)."""
        return self.feather / float(1 << max(self.zoom - z, 0))

    def touches(self, z: int, x: int, y: int, margin_px: float = 0.0) -> bool:
        """Return False when tile (z, x, y) plus ``margin_px`` surely lies off the footprint."""
        w, s, e, n = self._bounds
        b = tiles.tms().bounds(x, y, z)
        pad = (b.right - b.left) * margin_px / self.tile_size + 1e-9
        if w > e:  # footprint across the antimeridian: keep it simple, read
            return True
        return not (b.right + pad < w or b.left - pad > e or b.top + pad < s or b.bottom - pad > n)

    def _read(self, z: int, x: int, y: int, m: int) -> tuple[np.ndarray, np.ndarray]:
        """The source's tile with ``m`` px around it: its own ``read_margin`` when it has one,
        else the 3×3 neighbourhood of ``read`` (x wraps; rows beyond the poles hold no data)."""
        fast = getattr(self.source, "read_margin", None)
        if fast is not None:
            return fast(z, x, y, m)
        s, n = self.tile_size, 1 << z
        if m == 0:
            return self.source.read(z, x, y)
        big = np.zeros((3 * s, 3 * s, 3), np.uint8)
        alpha = np.zeros((3 * s, 3 * s), np.float32)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ty = y + dy
                if not 0 <= ty < n or not self.touches(z, (x + dx) % n, ty):
                    continue
                rgb, a = self.source.read(z, (x + dx) % n, ty)
                sl = np.s_[(dy + 1) * s : (dy + 2) * s, (dx + 1) * s : (dx + 2) * s]
                big[sl], alpha[sl] = rgb, a
        c = np.s_[s - m : 2 * s + m, s - m : 2 * s + m]
        return big[c], alpha[c]

    def weight_tile(self, x: int, y: int) -> np.ndarray:
        """Return the source's feather weight over native tile (x, y) ((S, S) float32, memoised:
        the follow mask below reads each native tile's weights for many windows)."""
        key = (x, y)
        w = self._weights.get(key)
        if w is None:
            s, m = self.tile_size, min(self.tile_size, self.feather)
            if not self.touches(self.zoom, x, y, m):
                w = np.zeros((s, s), np.float32)
            else:
                inside = self._read(self.zoom, x, y, m)[1] >= 0.5
                w = np.ascontiguousarray(
                    feather_weight(inside, float(self.feather))[m : m + s, m : m + s]
                )
            if len(self._weights) > 4096:
                self._weights.clear()
            self._weights[key] = w
        return w

    def weight_rect(self, z: int, rect: Rect) -> np.ndarray | None:
        """Return the source's weight over ``rect`` of zoom z > native ((h, w), bilinear from the
        native zoom's), or None where the rect surely holds no data."""
        s, k = self.tile_size, z - self.zoom
        f = float(1 << k)
        y0, x0 = math.floor(rect.y0 / f) - 1, math.floor(rect.x0 / f) - 1
        y1, x1 = math.ceil((rect.y0 + rect.h) / f) + 1, math.ceil((rect.x0 + rect.w) / f) + 1
        n = 1 << self.zoom
        ty = range(max(y0 // s, 0), min((y1 - 1) // s, n - 1) + 1)
        tx = range(x0 // s, (x1 - 1) // s + 1)
        if not any(self.touches(self.zoom, i % n, j) for j in ty for i in tx):
            return None
        big = np.zeros(((ty.stop - ty.start) * s, len(tx) * s), np.float32)
        for a, j in enumerate(ty):
            for b, i in enumerate(tx):
                big[a * s : (a + 1) * s, b * s : (b + 1) * s] = self.weight_tile(i % n, j)
        if not big.any():
            return None
        # pixel centres of the rect in the native grid, relative to the mosaic's corner
        rows = (rect.y0 + np.arange(rect.h) + 0.5) / f - 0.5 - ty.start * s
        cols = (rect.x0 + np.arange(rect.w) + 0.5) / f - 0.5 - tx.start * s
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        return map_coordinates(big, [rr, cc], order=1, mode="nearest").astype(np.float32)

    def tile_at(self, z: int, x: int, y: int) -> np.ndarray:
        """Return the composited tile (z, x, y) for any z ≤ the native zoom (uint8 (S, S, 3))."""
        s = self.tile_size
        width = self.width_at(z)
        m = min(s, math.ceil(width)) if width > 0 else 0
        if not self.touches(z, x, y, m):
            return self.fallback(z, x, y)
        rgb, alpha = self._read(z, x, y, m)
        inside = alpha >= 0.5
        core = np.s_[m : m + s, m : m + s]
        if not inside[core].any():
            return self.fallback(z, x, y)
        if inside.all():
            return np.ascontiguousarray(rgb[core])
        w = feather_weight(inside, width)[core]
        if bool((w >= 1.0).all()):
            return np.ascontiguousarray(rgb[core])
        fb = self.fallback(z, x, y).astype(np.float32)
        out = fb + w[..., None] * (rgb[core].astype(np.float32) - fb)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)


class FootprintFollower:
    """The water edit of the geography (``generator.follow``) outside the user's data only.

    Inside the footprint the imagery below the native zoom comes from real pixels, which already
    show their water; the packaged shorelines and rivers are coarser than a 10 m scene, and the
    edit's "looks like water" test takes cloud shadows for water. So the edit is faded out by
    the source's own feather weight (1 inside the data: the unedited pixels, exactly; 0 outside:
    the edit, exactly, so far from the data the bytes are the fallback world's).
    """

    def __init__(self, inner: object, base: SourceBase) -> None:
        self.inner = inner
        self.base = base

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def edit(self, z: int, rect: Rect, img: np.ndarray, *args: object, **kw: object) -> np.ndarray:
        """Return the inner edit of ``img`` with the data's pixels left as they were."""
        w = self.base.weight_rect(z, rect) if z > self.base.zoom else None
        src = img.astype(np.float32)
        if w is not None and float(w.min()) >= 1.0:  # wholly in the data: no edit to run
            return src
        out = self.inner.edit(z, rect, img, *args, **kw)  # type: ignore[attr-defined]
        if w is None:
            return out
        mixed = (out + w[None] * (src - out)).astype(np.float32)
        return np.where(w[None] >= 1.0, src, np.where(w[None] <= 0.0, out, mixed))
