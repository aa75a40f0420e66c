"""Which model makes which zoom levels, and the latent geometry of diffusers models.

A world's levels below the base are made by its default model, except the zoom ranges that
``[[model.ranges]]`` gives to other models. Each level is conditioned on the level above it
whichever model made that one, so a split world (the built-in model down to z9, Text2Earth below)
is one pyramid with one noise field, one planner and one cache.

Latent models (SD, Text2Earth, the ×4 upscaler) sample windows in latent space: a window
``(z, col, row)`` is the same window as in pixel space, scaled down by the VAE factor f, with its
own noise field (a separate stream of the world seed, with the VAE's channel count, on the latent
grid). Windows are blended in latent space with the same ramps, and each tile decodes its blended
latents with a context border, so the VAE decoder sees across the tile edge (see
:class:`LatentGeometry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .noise import NoiseField
from .planner import Geometry, Rect, Window

if TYPE_CHECKING:
    from .models.diffusers_backend import DiffusersModel
    from .models.sr_model import SuperResolutionModel
    from .samplers.latent import LatentSampling

#: the smallest latent overlap (px): the blend ramp is flat on its first and last two pixels, so
#: 8 latent px leave a 4-px transition (a world margin of 32 px is 4 latent px for SD's VAE)
MIN_LATENT_MARGIN = 8


def derive_seed(seed: int, stream: str) -> int:
    """Return the seed of a named noise stream of a world (latents, the upscaler's low-res).

    A SeedSequence of (seed, the stream's bytes): independent of the pixel field, stable across
    processes and machines.
    """
    words = [seed & 0xFFFFFFFFFFFFFFFF, *stream.encode()]
    return int(np.random.SeedSequence(words).generate_state(2, np.uint64)[0] >> np.uint64(1))


@dataclass(frozen=True)
class Stage:
    """The model of one zoom range, with its sampling settings."""

    zooms: tuple[int, int]
    model: SuperResolutionModel | DiffusersModel
    #: sampler steps of the built-in model (diffusers models carry theirs in ``sampling``)
    steps: int
    sampling: LatentSampling | None = None

    @property
    def latent(self) -> bool:
        """Return True for diffusers (latent) models."""
        return self.sampling is not None


class LatentGeometry:
    """Window geometry, noise fields and decode region of a latent model in one world.

    With VAE factor f, tile T px and world margin M px, the latent tile is t = T/f and the latent
    margin m = max(M/f, 8), widened until t + m is a multiple of the UNet's stride. The windows
    are the pixel windows with margin m·f; they read the same parent tiles as the world's
    windows (m·f ≤ T), so the planner's cone is unchanged.

    A tile decodes the blend of its four windows over the tile plus ``context`` = m − 2 latent px
    on every side. In the right/bottom context the next window (not part of the tile) is missing,
    but its weight is exactly zero on the first two pixels and the blend normalises the weights
    of the windows present, so the decoder sees the final latents across the edge for two pixels
    and smoothly diverging ones beyond: both tiles of an edge decode it from (nearly) the same
    latents, and the seam stays at the level of the interior.
    """

    def __init__(self, model: DiffusersModel, world: Geometry, seed: int) -> None:
        f = model.vae_scale
        if world.tile % f:
            raise ValueError(f"tile size {world.tile} is not a multiple of the VAE factor {f}")
        t = world.tile // f
        m = max(world.margin // f, MIN_LATENT_MARGIN)
        while (t + m) % model.unet_stride:
            m += 1
        if m * f > world.tile:
            raise ValueError(f"latent margin {m} px × VAE factor {f} exceeds the tile")
        self.factor = f
        self.channels = model.latent_channels
        self.latent = Geometry(t, m)
        self.pixel = Geometry(world.tile, m * f)
        self.context = m - 2
        self.noise = NoiseField(derive_seed(seed, "latent"), t)
        self.lowres_noise = NoiseField(derive_seed(seed, "lowres"), t)

    def window_noise(self, w: Window) -> np.ndarray:
        """Return the (C, n, n) latent noise crop of a window."""
        r = self.latent.window_rect(w)
        return self.noise.crop(w.z, r.y0, r.x0, r.h, r.w, channels=self.channels)

    def window_lowres_noise(self, w: Window) -> np.ndarray:
        """Return the (3, n, n) noise of the upscaler's low-res image under a window."""
        r = self.latent.window_rect(w)
        return self.lowres_noise.crop(w.z, r.y0, r.x0, r.h, r.w, channels=3)

    def decode_rect(self, z: int, x: int, y: int) -> tuple[Rect, int, int]:
        """Return the latent rect a tile decodes (rows clamped to the grid) and its top/bottom
        padding (rows past the poles, filled by repeating the edge row)."""
        t, c = self.latent.tile, self.context
        grid = (1 << z) * t
        y0, y1 = y * t - c, (y + 1) * t + c
        cy0, cy1 = max(y0, 0), min(y1, grid)
        return Rect(cy0, x * t - c, cy1 - cy0, t + 2 * c), cy0 - y0, y1 - cy1
