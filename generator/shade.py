"""Shade the imagery by the geography's relief: mountains, valleys and hills lit by the sun.

A ×2 cascade from Blue Marble knows only the relief its 7.4 km pixels show; below that the
model paints the same texture over a plain and a mountainside, so the Alps at z12 look like the
Po valley and a glacier at z16 is a flat grey. Every real photo from above shows the relief by
its shading: slopes facing the sun are brighter, those facing away darker. This edit puts that
shading, computed from the elevation layer, into each level's tiles.

**Lambert with sky light.** The factor of a pixel is ``A + (1 − A) · cos γ / cos θ``: ``γ`` the
angle between the ground's normal and the sun (azimuth :data:`SUN_AZIMUTH`, elevation
:data:`SUN_ELEVATION`), ``θ`` the sun's zenith angle (a flat pixel keeps factor 1) and ``A``
(:data:`AMBIENT`) the share of light that comes from the whole sky, not the sun, which is why
real shadowed slopes are dark, not black. The slope is the elevation layer's gradient over the
pixel's ground size in metres (its m/px at that latitude), so the same mountain is shaded alike
at every zoom; a neighbour that is water (sea bathymetry, a lake's bed) is not differenced
across: the shore's slope is the land's own.

**Each level adds its own band.** A level multiplies its pixels by its factor divided by the
factor's own 2×2 block means, upsampled as the cascade upsamples a parent (bilinear ×2): the
block means are kept to second order (the parent PSNR), and the level adds only the shading of
the relief its own resolution resolves inside its parent's pixels. Where the relief is smooth at
this scale those block means are the level above's factor, so down the cascade the gains
multiply up to the shading of the finest level (a telescoping product) and nothing is shaded
twice; the coarser levels' shading reaches each level through its parent (the base's own, from
the real photo, included). (A gain over the block means themselves, not upsampled, would keep
each parent pixel exactly, but its steps at the block edges pile up into a staircase grid,
level after level.)

**Tiles only.** The edit is applied to the finished tile (after the parent correction), not to
the model's conditioning: the model then renders the next level from an already shaded parent,
and the shading of a level is added exactly once (applied to both, it would be doubled where
the model keeps the conditioning's contrast).

**Water** has its own light: the sea and lakes show their shallows along the shore (the
bottom seen through the water, lighter and greener, within 24 m) and a surface that varies
over hundreds of metres to kilometres (wind slicks, the sky's reflection), where the water edit
(:mod:`generator.follow`) leaves one flat navy; rivers are left as they are. Unlike the
relief's, the water's factor is not a band over the parent's: at every level the water edit
pulls water pixels to the parent's local water colour (a blur of 8 pixels), which flattens all
that is finer, so each level applies the shallows whole and the surface octaves whose cells are
2–16 pixels of that level (coarser ones survive the blur, in the parent). The shallows end at
:data:`WATER_MAX_Z`; finer levels keep them through their parents.

The edit is a pure function of the elevation, water and distance layers around each pixel
(seamless) and of the world's lattice noise, so tiles meet without seams.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .geography import Geography, classes
from .geography.grid import ground_mpp
from .geography.layout import MARGIN as LAYOUT_MARGIN
from .planner import Rect
from .resample import up2

#: Version of the shading rule (part of the world's content hash).
SHADE_VERSION = "3"  # 2: the water's shallows and surface; 3: the dunes' crests and corridors
#: Where the light comes from: the cartographers' north-west (a relief lit from the south-east
#: reads as inverted to most eyes), 40° above the horizon (a mid-latitude morning overpass).
SUN_AZIMUTH = 315.0
SUN_ELEVATION = 40.0
#: Share of the light that comes from the whole sky rather than the sun.
AMBIENT = 0.45
#: Bounds of a pixel's factor (a cliff facing the sun would otherwise burn out).
FACTOR_RANGE = (0.35, 1.6)
#: First zoom shaded: the first generated level of the built-in worlds.
SHADE_MIN_Z = 5
#: Width (m) of the shallows along a shore, and their gain per channel at the shore (the
#: bottom seen through a metre of water: lighter and greener than open water's navy).
SHALLOW_M = 24.0
SHALLOW_GAIN = np.array([1.7, 1.56, 1.18], np.float32)
#: Lattice levels of the open water's surface variation (cells of 1.2 km down to 150 m at the
#: equator; coarser octaves read as cloud over the open sea at z8–z10), the first octave's
#: amplitude in log brightness and the decay per octave.
SURFACE_LEVELS = (15, 16, 17, 18)
SURFACE_AMPLITUDE = 0.1
SURFACE_DECAY = 0.85
#: Last zoom whose water gets a band of its own: the shallows are resolved whole (14 px at
#: 1.7 m/px) and the distance layer's cap, 48 px, twice past them at every latitude below
#: 65° (faded beyond); finer levels keep their parent's water light.
WATER_MAX_Z = 16


def slopes(elev: np.ndarray, dry: np.ndarray, mpp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (dz/dx east, dz/dy north) of an elevation raster (rows north to south).

    Central differences where both neighbours are dry land, one-sided where one of them is
    water, zero where both are: a shore's slope is the land's own, not the drop to a sea bed.
    ``mpp``: ground metres per pixel of each row.
    """

    def diff(e: np.ndarray, ok: np.ndarray, axis: int) -> np.ndarray:
        lo = np.roll(e, 1, axis)
        hi = np.roll(e, -1, axis)
        ok_lo = np.roll(ok, 1, axis)
        ok_hi = np.roll(ok, -1, axis)
        # the raster's own edge: no neighbour beyond it
        edge = [slice(None)] * 2
        edge[axis] = 0
        ok_lo[tuple(edge)] = False
        edge[axis] = -1
        ok_hi[tuple(edge)] = False
        both = ok_lo & ok_hi
        out = np.where(both, 0.5 * (hi - lo), 0.0)
        out = np.where(ok_hi & ~ok_lo, hi - e, out)
        out = np.where(ok_lo & ~ok_hi, e - lo, out)
        return out.astype(np.float32)

    e = elev.astype(np.float32)
    gx = diff(e, dry, 1) / mpp[:, None]
    gy = -diff(e, dry, 0) / mpp[:, None]  # rows run south: north is up the array
    return gx.astype(np.float32), gy.astype(np.float32)


def factor(
    elev: np.ndarray,
    dry: np.ndarray,
    mpp: np.ndarray,
    azimuth: float = SUN_AZIMUTH,
    elevation: float = SUN_ELEVATION,
    ambient: float = AMBIENT,
) -> np.ndarray:
    """Return each pixel's light factor (1 on flat ground; see the module docstring)."""
    gx, gy = slopes(elev, dry, mpp)
    az, alt = math.radians(azimuth), math.radians(elevation)
    # unit vector toward the sun: east, north, up
    sx, sy, sz = math.sin(az) * math.cos(alt), math.cos(az) * math.cos(alt), math.sin(alt)
    # the ground's normal is (−gx, −gy, 1) / |…|
    cos_g = (sz - sx * gx - sy * gy) / np.sqrt(1.0 + gx * gx + gy * gy)
    lit = ambient + (1.0 - ambient) * np.clip(cos_g, 0.0, None) / sz
    return np.clip(lit, *FACTOR_RANGE).astype(np.float32)


#: Pixels read around a rect: the half-resolution factor needs 2 half pixels (a difference
#: and the bilinear ×2's neighbour), i.e. 4 pixels (≤ the layout's margin, read anyway).
PAD = 4
assert PAD <= LAYOUT_MARGIN


def _half(a: np.ndarray) -> np.ndarray:
    """2×2 block means of an even-sized (h, w) array (its first pixel on an even row/col)."""
    return 0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2])


def _up2(a: np.ndarray) -> np.ndarray:
    """The cascade's bilinear ×2 (:func:`generator.resample.up2`) of an (h, w) array."""
    return up2(torch.from_numpy(np.ascontiguousarray(a, np.float32))[None, None])[0, 0].numpy()


def _band(f: np.ndarray, rect: Rect) -> np.ndarray:
    """Return a factor over the padded rect (PAD each side) divided by its 2×2 block means
    upsampled bilinearly ×2, on the rect: the band this level adds (module docstring)."""
    coarse = _half(f)
    # up: half pixels from one before the rect's to one after, as the cascade's up2 reads
    p = PAD // 2
    up = _up2(coarse[p - 1 : p + rect.h // 2 + 1, p - 1 : p + rect.w // 2 + 1])[2:-2, 2:-2]
    return f[PAD : PAD + rect.h, PAD : PAD + rect.w] / up


def water_factor(seed: int, z: int, rect: Rect, dist: np.ndarray, mpp: np.ndarray) -> np.ndarray:
    """Return the water's light factor (3, h, w) on a rect of zoom z: shallows and surface.

    * **Shallows**: within :data:`SHALLOW_M` of the shore (``dist``: metres into the water,
      at least half a pixel) the bottom shows through: a gain per channel toward
      :data:`SHALLOW_GAIN` (lighter, greener), by the share ``(1 − d / SHALLOW_M)²``. Rows whose
      distance cap (the layer's :data:`~.geography.water_earth.DIST_MARGIN_PX` pixels) is not
      well past the band fade it out, so a capped distance never reads as a shallow.
    * **Surface**: wind slicks and the sky's reflection vary the brightness of open water over
      hundreds of metres to kilometres: value-noise octaves of the world's own lattice
      (:func:`.geography.fractal.value_noise`, lattice levels :data:`SURFACE_LEVELS`), each
      faded in as its cells grow from 2 to 4 pixels of the zoom (an octave is added where it is
      resolved, never aliased) and out from 16 to 32 (there the water edit's local colour,
      from the parent, keeps it).
    """
    from .geography import fractal
    from .geography.water_earth import DIST_MARGIN_PX

    # a water pixel's centre is at least half a pixel from the shore (land reads as that too)
    d = np.maximum(dist, 0.5 * mpp[:, None])
    share = np.clip(1.0 - d / SHALLOW_M, 0.0, 1.0) ** 2
    cap = DIST_MARGIN_PX * mpp  # metres per row beyond which the layer reads its cap
    share = share * np.clip((cap - SHALLOW_M) / SHALLOW_M, 0.0, 1.0)[:, None]
    u, v = fractal.uv(z, rect)
    n = np.zeros(share.shape, np.float32)
    for i, level in enumerate(SURFACE_LEVELS):
        cell_px = 2.0 ** (z + 8 - level)
        # in from 2 to 4 px (resolved), out from 16 to 32 px (the water edit keeps it there)
        lg = np.log2(cell_px)
        fade = float(np.clip(lg - 1.0, 0.0, 1.0) * np.clip(5.0 - lg, 0.0, 1.0))
        if fade > 0.0:
            n += (
                fade
                * SURFACE_AMPLITUDE
                * SURFACE_DECAY**i
                * fractal.value_noise(seed ^ 0x5EA, level, u, v)
            )
    surface = np.exp(n)
    g = 1.0 + share[None] * (SHALLOW_GAIN[:, None, None] - 1.0)
    return (g * surface[None]).astype(np.float32)


class ReliefShader:
    """Shades each finished tile of a level by the relief, and its water by depth and surface."""

    def __init__(self, geography: Geography, tile_size: int = 256, seed: int = 0) -> None:
        self.geography = geography
        self.tile_size = tile_size
        self.seed = seed

    def gain(self, z: int, rect: Rect, context: Rect | None = None) -> np.ndarray:
        """Return the multiplicative gain (3, h, w) of each pixel of ``rect`` (even origin).

        On dry land, the relief's light factor (:func:`factor`; rivers and water flat for it,
        so a shore pixel's gain is not pulled by the water's light) over its own 2×2 block
        means, upsampled the way the cascade upsamples a parent (bilinear ×2). On the sea and
        lakes, the water's factor (:func:`water_factor`) whole, not a band (the module
        docstring says why). ``context`` (a rect holding ``rect``): the layers are read on it
        grown by the layout's margin, the rect the water edit reads, so the water layer is a
        cache hit and a tile's elevation is read once.
        """
        if context is None:
            context = rect
        m = LAYOUT_MARGIN
        grown = Rect(context.y0 - m, context.x0 - m, context.h + 2 * m, context.w + 2 * m)
        dy, dx = rect.y0 - grown.y0 - PAD, rect.x0 - grown.x0 - PAD
        h, w = rect.h + 2 * PAD, rect.w + 2 * PAD
        crop = (slice(dy, dy + h), slice(dx, dx + w))
        geo = self.geography
        kind = geo.window("water", z, grown)[crop]
        rivers = geo.window("rivers", z, grown)[crop]
        elev = np.asarray(geo.window("elevation", z, grown)[crop], np.float32)
        dry = kind == classes.LAND
        wet = np.where(dry, np.clip(rivers, 0.0, 1.0), 1.0).astype(np.float32)
        padded = Rect(rect.y0 - PAD, rect.x0 - PAD, h, w)
        mpp = ground_mpp(z, padded).astype(np.float32)
        inner = (slice(PAD, PAD + rect.h), slice(PAD, PAD + rect.w))
        # the relief's factor (the differences reach one pixel: the ring is inside the pad)
        fine = factor(elev, dry, mpp)
        sand = getattr(geo.source, "sand_albedo", None)
        if sand is not None:  # the dune fields' crests and corridors, banded with the light
            # on the rect the elevation was read on, whose dunes the source has just made
            fine = fine * np.asarray(sand(z, grown), np.float32)[crop]
        land = _band(fine * (1.0 - wet) + wet, rect)
        wet_in = wet[inner]
        out = np.repeat((land * (1.0 - wet_in) + wet_in)[None], 3, 0)
        open_water = (kind == classes.OCEAN) | (kind == classes.LAKE)
        if z <= WATER_MAX_Z and open_water[inner].any():
            dist = np.asarray(geo.window("distance", z, grown)[crop], np.float32)
            water = water_factor(self.seed, z, padded, dist, mpp)[:, PAD:-PAD, PAD:-PAD]
            out = np.where(open_water[inner][None], water, out)
        return out.astype(np.float32)

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
        """Return ``img`` ((3, h, w) in [-1, 1], pixels of ``rect`` at zoom z) shaded; only a
        ``final`` tile is (the model's conditioning is left alone: see the module docstring).
        ``parent`` is unused (the shading is the layer's, not the parent's).

        A gain below 1 multiplies; above 1 it brightens with a soft knee
        (``px · g / (1 + px (g − 1) / 255)``) that reaches white only at white: sunlit snow keeps
        its texture instead of burning out.
        """
        img = img.astype(np.float32)
        if not final or z < SHADE_MIN_Z:
            return img
        g = self.gain(z, rect, context)
        px = (img + 1.0) * 127.5
        lit = px * g / (1.0 + px * (np.maximum(g, 1.0) - 1.0) / 255.0)
        return (np.clip(lit, 0.0, 255.0) / 127.5 - 1.0).astype(np.float32)
