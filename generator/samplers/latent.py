"""The denoising loop of diffusers checkpoints (SD, Text2Earth, SD ×4 upscaler), one level step.

Why not the stock pipelines: they draw their starting noise from a ``torch.Generator``, while in
orbis the noise of a window must be its crop of the world's noise field (so that two overlapping
windows start from the same noise where they overlap, and a window is a pure function of its
address), and Text2Earth's class labels must come from the tile's real ground resolution. The
loop is otherwise the pipelines' own, in their numbered style:

- **text-to-image layouts** (``sd``, ``text2earth``) refine the ×2-upsampled parent as img2img:
  the parent is VAE-encoded (the posterior's mode: no sampling), noised to the timestep that
  ``strength`` picks with the window's noise crop, then denoised. ``strength = 1`` starts from
  pure noise (text-to-image; the parent then enters through the parent correction only).
- **Text2Earth**: the prompt's text is encoded as is and the UNet gets ``class_labels = L``
  (its timestep class embedding) for the conditional half of classifier-free guidance and 0 for
  the unconditional half, as Text2Earth's pipeline does with ``"{L}_GOOGLE_LEVEL_{text}"``.
- **upscaler**: the parent, area-resampled to the latent grid, is noised to ``noise_level`` with
  the ``low_res_scheduler`` (noise again from the field) and concatenated to the latents; the
  noise level is the class label.

Sampling is DDIM with η = 0 (``DDIMScheduler.from_config`` of the checkpoint's scheduler config:
its betas, prediction type and spacing), so the only randomness is the noise passed in; every
evaluation runs with the fixed intra-op thread count of ``generator.parallel``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler

from ..models.diffusers_backend import DiffusersModel
from ..parallel import pin_threads
from ..resample import up2


@dataclass(frozen=True)
class LatentSampling:
    """Sampling settings of one zoom range (from the world config)."""

    prompt: str = ""
    negative_prompt: str = ""
    steps: int = 20
    guidance_scale: float = 4.0
    #: img2img strength of the text-to-image layouts (1 = from pure noise)
    strength: float = 0.6
    #: noise level of the upscaler's low-res image (its class label)
    noise_level: int = 20
    #: Text2Earth: a fixed resolution label (a prompt written "{L}_GOOGLE_LEVEL_{text}");
    #: None → each window's label from its ground resolution
    level: int | None = None


def run_steps(steps: int, strength: float) -> int:
    """Return the number of model steps img2img runs: ``int(steps · strength)`` (≥ 1)."""
    return max(1, min(int(steps * strength), steps))


@torch.inference_mode()
def encode_pixels(model: DiffusersModel, pixels: torch.Tensor) -> torch.Tensor:
    """Return the scaled latents of (B, 3, H, W) pixels in [-1, 1] (the posterior's mode)."""
    pin_threads()
    vae = model.vae
    x = pixels.to(device=model.device, dtype=vae.dtype)
    lat = vae.encode(x).latent_dist.mode()
    shift = vae.config.get("shift_factor") or 0.0
    return ((lat - shift) * vae.config.scaling_factor).float()


@torch.inference_mode()
def decode_latents(model: DiffusersModel, latents: torch.Tensor) -> torch.Tensor:
    """Return (B, 3, f·h, f·w) pixels in [-1, 1] (float32, CPU) of scaled latents."""
    pin_threads()
    vae = model.vae
    shift = vae.config.get("shift_factor") or 0.0
    z = latents.to(device=model.device, dtype=vae.dtype) / vae.config.scaling_factor + shift
    return vae.decode(z).sample.float().clamp(-1.0, 1.0).cpu()


def lowres_image(model: DiffusersModel, parent: torch.Tensor, size: int) -> torch.Tensor:
    """Return the upscaler's low-res input: the parent crop area-resampled to the latent grid.

    The ×4 upscaler's latents have the low-res image's size (VAE factor 4), and an orbis level
    step is ×2: a window of W px has W/4 latent px, its parent W/2 px, so the parent is 2×2
    box-averaged (exactly ``box_down2``); with a factor-2 VAE it is used as is.
    """
    k = parent.shape[-1] // size
    if k * size != parent.shape[-1]:
        raise ValueError(f"parent {parent.shape[-1]} px is not a multiple of the latent {size}")
    return F.avg_pool2d(parent, k) if k > 1 else parent


@torch.inference_mode()
def sample_latent_windows(
    model: DiffusersModel,
    settings: LatentSampling,
    *,
    parent: torch.Tensor,
    noise: torch.Tensor,
    levels: list[int] | None = None,
    lowres_noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return the final latents (B, C, h, w) of a batch of windows (float32, CPU).

    Args:
        model: a loaded checkpoint.
        settings: prompt, steps, guidance scale, strength, noise level.
        parent: (B, 3, H/2, W/2) parent pixels under the windows, in [-1, 1].
        noise: (B, C, h, w) crops of the latent noise field (h = H / VAE factor).
        levels: Text2Earth labels L per window (``text2earth`` only).
        lowres_noise: (B, 3, h, w) noise of the upscaler's low-res image (``upscaler`` only).

    Raises:
        ValueError: shapes that disagree, or sizes the UNet cannot take.
    """
    # 1. Check inputs; one intra-op thread, whichever thread calls (see generator.parallel)
    pin_threads()
    b, c, h, w = noise.shape
    if c != model.latent_channels:
        raise ValueError(f"noise has {c} channels, the VAE {model.latent_channels}")
    if h % model.unet_stride or w % model.unet_stride:
        raise ValueError(f"latent size {(h, w)} is not a multiple of {model.unet_stride}")
    if model.layout == "text2earth" and (levels is None or len(levels) != b):
        raise ValueError("text2earth needs one resolution label per window")
    if model.layout == "upscaler" and lowres_noise is None:
        raise ValueError("the upscaler needs the low-res image's noise")
    dev, dt = model.device, model.dtype
    # 2. Text conditioning and classifier-free guidance
    cfg = settings.guidance_scale > 1.0
    cond = model.embed(settings.prompt).expand(b, -1, -1)
    if cfg:
        uncond = model.embed(settings.negative_prompt).expand(b, -1, -1)
        cond = torch.cat([uncond, cond])
    # 3. Scheduler (DDIM, η = 0) and starting latents
    scheduler = DDIMScheduler.from_config(model.scheduler_config)
    scheduler.set_timesteps(settings.steps, device=dev)
    timesteps = scheduler.timesteps
    noise = noise.to(device=dev, dtype=torch.float32)
    class_labels = None
    extra = None
    if model.layout == "upscaler":
        low = lowres_image(model, parent, h).to(device=dev, dtype=torch.float32)
        level = torch.full((b,), settings.noise_level, dtype=torch.long, device=dev)
        low_sched = DDPMScheduler.from_config(model.low_res_scheduler_config)
        low = low_sched.add_noise(low, lowres_noise.to(device=dev, dtype=torch.float32), level)
        extra = torch.cat([low, low]) if cfg else low
        class_labels = torch.cat([level, level]) if cfg else level
        x = noise * scheduler.init_noise_sigma
    else:
        if model.layout == "text2earth":
            lab = torch.tensor(levels, dtype=torch.long, device=dev)
            class_labels = torch.cat([torch.zeros_like(lab), lab]) if cfg else lab
        if settings.strength >= 1.0:
            x = noise * scheduler.init_noise_sigma
        else:
            n = run_steps(settings.steps, settings.strength)
            timesteps = timesteps[settings.steps - n :]
            x0 = encode_pixels(model, up2(parent))
            x = scheduler.add_noise(x0, noise, timesteps[:1].repeat(b))
    # 4. Denoising loop
    for t in timesteps:
        inp = torch.cat([x, x]) if cfg else x
        inp = scheduler.scale_model_input(inp, t)
        if extra is not None:
            inp = torch.cat([inp, extra], dim=1)
        out = model.unet(
            inp.to(dt), t, encoder_hidden_states=cond, class_labels=class_labels
        ).sample.float()
        if cfg:
            out_u, out_c = out.chunk(2)
            out = out_u + settings.guidance_scale * (out_c - out_u)
        x = scheduler.step(out, t, x, eta=0.0).prev_sample
    return x.float().cpu()


def model_evals(model: DiffusersModel, settings: LatentSampling) -> int:
    """Return UNet evaluations per window (the cost unit): steps run × 2 with guidance."""
    n = settings.steps
    if model.layout != "upscaler" and settings.strength < 1.0:
        n = run_steps(settings.steps, settings.strength)
    return n * (2 if settings.guidance_scale > 1.0 else 1)
