"""Train the built-in model: one command, resumable checkpoints, a log, a progress bar.

``orbis train --out DIR [--steps N] [--minutes M] [--run runs/train]``

The loop is plain: draw pairs (``PairSampler``), noise the scaled residual with the stock
scheduler's ``add_noise``, predict v, MSE, AdamW with cosine decay, an EMA copy of the weights.
Every ``--checkpoint-every`` steps the run folder gets ``checkpoint.pt`` (model, EMA, optimiser,
step, RNG state) written atomically, so a killed run resumes where it stopped. At the end the EMA
weights are saved with ``save_pretrained`` into ``--out``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ..imagery import all_scenes
from ..models.sr_model import (
    ModelInfo,
    SuperResolutionModel,
    build_scheduler,
    build_unet,
    resolution_label,
)
from ..resample import up2
from .dataset import PairSampler

log = logging.getLogger("orbis.train")


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(
    out: Path,
    run_dir: Path = Path("runs/train"),
    steps: int = 6000,
    minutes: float = 55.0,
    batch: int = 16,
    crop: int = 64,
    lr: float = 1e-3,
    residual_scale: float = 0.1,
    channels: tuple[int, ...] = (16, 32, 64, 128),
    checkpoint_every: int = 200,
    version: str = "1",
    seed: int = 0,
) -> Path:
    """Train (or resume) and save the EMA model to ``out``; return ``out``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    unet = build_unet(channels)
    ema = copy.deepcopy(unet).requires_grad_(False)
    scheduler = build_scheduler()
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-4)
    sampler = PairSampler(all_scenes("train"), crop=crop, seed=seed)
    holdout = PairSampler(all_scenes("holdout"), crop=crop, seed=seed + 1)
    start, elapsed_before = 0, 0.0
    ckpt_path = run_dir / "checkpoint.pt"
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=False)
        unet.load_state_dict(ck["unet"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        sampler.rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        start, elapsed_before = ck["step"], ck["elapsed"]
        log.info("resumed from step %d (%.1f min already)", start, elapsed_before / 60)
    alphas = scheduler.alphas_cumprod
    t0 = time.time()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="train", mininterval=5)
    step = start
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))
            if step < 100:
                g["lr"] *= (step + 1) / 100
        kid, par, mpp = sampler.sample(batch)
        cond = up2(par)
        x0 = (kid - cond) / residual_scale
        noise = torch.randn_like(x0)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (batch,))
        xt = scheduler.add_noise(x0, noise, t)
        a = alphas[t].sqrt().view(-1, 1, 1, 1)
        s = (1 - alphas[t]).sqrt().view(-1, 1, 1, 1)
        v = a * noise - s * x0
        pred = unet(torch.cat([xt, cond], 1), t, class_labels=resolution_label(mpp)).sample
        loss = torch.nn.functional.mse_loss(pred, v)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pu in zip(ema.parameters(), unet.parameters(), strict=True):
                pe.lerp_(pu, 1 - decay)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        elapsed = elapsed_before + time.time() - t0
        if (step + 1) % 50 == 0:
            log.info(
                "step %d loss %.4f lr %.2e %.1f min",
                step + 1,
                loss.item(),
                opt.param_groups[0]["lr"],
                elapsed / 60,
            )
        last = step + 1 == steps or elapsed > minutes * 60
        if (step + 1) % checkpoint_every == 0 or last:
            _save_atomic(
                {
                    "unet": unet.state_dict(),
                    "ema": ema.state_dict(),
                    "opt": opt.state_dict(),
                    "rng": sampler.rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                    "step": step + 1,
                    "elapsed": elapsed,
                },
                ckpt_path,
            )
        if last:
            break
    val = _holdout_loss(ema, scheduler, holdout, residual_scale)
    info = ModelInfo(
        model_id="orbis-sr",
        version=version,
        residual_scale=residual_scale,
        num_inference_steps=4,
        trained_mpp=(10.0, 15000.0),
        notes={
            "steps": str(step + 1),
            "train_minutes": f"{(elapsed_before + time.time() - t0) / 60:.1f}",
            "holdout_v_mse": f"{val:.4f}",
            "data": "Blue Marble NG (NASA, public domain); Sentinel-2 (Copernicus); "
            "Landsat-8 (USGS)",
        },
    )
    SuperResolutionModel(ema, scheduler, info).save_pretrained(out)
    (run_dir / "summary.json").write_text(json.dumps(info.notes, indent=2))
    log.info("saved %s (holdout v-MSE %.4f)", out, val)
    return out


@torch.no_grad()
def _holdout_loss(unet, scheduler, sampler: PairSampler, residual_scale: float) -> float:
    gen = torch.Generator().manual_seed(123)
    losses = []
    for _ in range(8):
        kid, par, mpp = sampler.sample(16)
        cond = up2(par)
        x0 = (kid - cond) / residual_scale
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, 1000, (x0.shape[0],), generator=gen)
        xt = scheduler.add_noise(x0, noise, t)
        a = scheduler.alphas_cumprod[t].sqrt().view(-1, 1, 1, 1)
        s = (1 - scheduler.alphas_cumprod[t]).sqrt().view(-1, 1, 1, 1)
        pred = unet(torch.cat([xt, cond], 1), t, class_labels=resolution_label(mpp)).sample
        losses.append(torch.nn.functional.mse_loss(pred, a * noise - s * x0).item())
    return sum(losses) / len(losses)
