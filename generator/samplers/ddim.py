"""DDIM (η = 0) sampling of one window of the built-in model.

Deterministic by construction: the only randomness is the initial noise, which the caller cuts
from the global noise field, so two overlapping windows start from the same noise in their
overlap. The loop follows diffusers' numbered pipeline habit around a stock scheduler, rebuilt per
call with ``from_config`` (schedulers carry per-run state and must not be shared across threads).
"""

from __future__ import annotations

import torch
from diffusers import DDIMScheduler

from ..models.sr_model import SuperResolutionModel, resolution_label


@torch.inference_mode()
def sample_window(
    model: SuperResolutionModel,
    parent_up: torch.Tensor,
    noise: torch.Tensor,
    mpp: float,
    num_inference_steps: int | None = None,
) -> torch.Tensor:
    """Return one window (B, 3, H, W) in [-1, 1], given its ×2-upsampled parent and noise crop.

    Args:
        model: the super-resolution model.
        parent_up: (B, 3, H, W) bilinear ×2 upsample of the parent imagery, in [-1, 1].
        noise: (B, 3, H, W) standard normal crop of the noise field.
        mpp: ground resolution of the output in m/px.
        num_inference_steps: DDIM steps; the model's default when None.

    Raises:
        ValueError: shapes disagree or H, W are not multiples of the UNet's stride.
    """
    # 1. Check inputs
    if parent_up.shape != noise.shape:
        raise ValueError(f"parent {tuple(parent_up.shape)} and noise {tuple(noise.shape)} differ")
    stride = 2 ** (len(model.unet.config.block_out_channels) - 1)
    if parent_up.shape[-1] % stride or parent_up.shape[-2] % stride:
        raise ValueError(f"window size {tuple(parent_up.shape[-2:])} is not a multiple of {stride}")
    steps = num_inference_steps or model.info.num_inference_steps
    # 2. Prepare the scheduler and the resolution label
    scheduler = DDIMScheduler.from_config(model.scheduler.config)
    scheduler.set_timesteps(steps)
    labels = resolution_label(torch.full((parent_up.shape[0],), float(mpp)))
    # 3. Denoising loop over the residual
    x = noise * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        inp = torch.cat([x, parent_up], dim=1)
        v = model.unet(inp, t, class_labels=labels).sample
        x = scheduler.step(v, t, x, eta=0.0).prev_sample
    # 4. Residual back to image space
    return (parent_up + x * model.info.residual_scale).clamp(-1.0, 1.0)
