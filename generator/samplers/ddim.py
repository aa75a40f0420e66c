"""DDIM (η = 0) sampling of one window of the built-in model.

Deterministic by construction: the only randomness is the initial noise, which the caller cuts
from the global noise field, so two overlapping windows start from the same noise in their
overlap, and it runs with an intra-op thread count the model's floats do not depend on (1, or 2
when a core is idle: ``generator.parallel``), so they do not depend on the machine's cores.
The loop follows diffusers' numbered pipeline habit around a stock scheduler, rebuilt per call
with ``from_config`` (schedulers carry per-run state and must not be shared across threads).
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler

from ..models import conditions
from ..models.sr_model import SuperResolutionModel, class_labels
from ..parallel import eval_threads


@torch.inference_mode()
def sample_window(
    model: SuperResolutionModel,
    parent_up: torch.Tensor,
    noise: torch.Tensor,
    mpp: float,
    num_inference_steps: int | None = None,
    features: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return one window (B, 3, H, W) in [-1, 1], given its ×2-upsampled parent and noise crop.

    Args:
        model: the super-resolution model.
        parent_up: (B, 3, H, W) bilinear ×2 upsample of the parent imagery, in [-1, 1].
        noise: (B, 3, H, W) standard normal crop of the noise field.
        mpp: ground resolution of the output in m/px.
        num_inference_steps: DDIM steps; the model's default when None.
        features: (B, F, H, W) conditioning features (:mod:`generator.models.conditions`)
            for a conditioned model (v3); None tells it nothing is known (every flag 0).
            Ignored by a model without conditioning.

    Raises:
        ValueError: shapes disagree or H, W are not multiples of the UNet's stride.
    """
    # 1. Check inputs
    if parent_up.shape != noise.shape:
        raise ValueError(f"parent {tuple(parent_up.shape)} and noise {tuple(noise.shape)} differ")
    stride = model.stride
    if parent_up.shape[-1] % stride or parent_up.shape[-2] % stride:
        raise ValueError(f"window size {tuple(parent_up.shape[-2:])} is not a multiple of {stride}")
    steps = num_inference_steps or model.info.num_inference_steps
    # 2. Prepare the scheduler and the resolution label
    scheduler = DDIMScheduler.from_config(model.scheduler.config)
    scheduler.set_timesteps(steps)
    labels = class_labels(model.unet, torch.full((parent_up.shape[0],), float(mpp)))
    # 3. Denoising loop over the residual (space-to-depth when the model works on s×s blocks; a
    #    permutation of pixels, so the noise stays standard normal and the loop is unchanged)
    s = model.info.pixel_unshuffle
    x = pixel_unshuffle(noise * scheduler.init_noise_sigma, s)
    cond = pixel_unshuffle(parent_up, s)
    if model.conditioned:
        if features is None:
            b, _, h, w = parent_up.shape
            features = torch.zeros((b, len(conditions.FEATURES), h, w))
        elif features.shape[-2:] != parent_up.shape[-2:] or features.shape[0] != parent_up.shape[0]:
            raise ValueError(
                f"features {tuple(features.shape)} do not match the window {tuple(parent_up.shape)}"
            )
        cond = torch.cat([cond, conditions.to_grid(features.float(), s)], dim=1)
    with eval_threads(model.invariant_threads):  # 1 or 2 threads: the same floats (see parallel)
        for t in scheduler.timesteps:
            v = model.unet(torch.cat([x, cond], dim=1), t, class_labels=labels).sample
            x = scheduler.step(v, t, x, eta=0.0).prev_sample
    # 4. Residual back to image space
    return (parent_up + pixel_shuffle(x, s) * model.info.residual_scale).clamp(-1.0, 1.0)


def pixel_unshuffle(x: torch.Tensor, s: int) -> torch.Tensor:
    """Return the space-to-depth view of ``x`` (identity for s = 1)."""
    return torch.nn.functional.pixel_unshuffle(x, s) if s > 1 else x


def pixel_shuffle(x: torch.Tensor, s: int) -> torch.Tensor:
    """Invert :func:`pixel_unshuffle`."""
    return torch.nn.functional.pixel_shuffle(x, s) if s > 1 else x
