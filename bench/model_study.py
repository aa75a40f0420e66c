"""The model study of issue 4: which layout should the built-in model have?

    .venv/bin/python bench/model_study.py [--minutes 3] [--jobs 2] [--data data/orbis-v2]

Each variant's teacher objective is trained for the same wall-clock budget on one thread (two
variants at a time on the 2-core machine), then measured on the same held-out pairs: hold-out
v-MSE (lower is better) and the time of one evaluation on a 288×288 window (the pyramid's window)
on one thread. The "tiny latent" question is answered by what a latent costs before any
diffusion: a small convolutional autoencoder (×4 down, 8 latent channels, the shape of a tiny SD
VAE) trained for the same budget, measured by its reconstruction PSNR and the spectral gap of its
reconstructions on held-out crops — every output of a latent model passes through that decoder.
Writes bench/results/model_study.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from common import save

VARIANTS = {
    "pixel 16/32/64/128 + attn (v1 layout)": {"channels": (16, 32, 64, 128), "unshuffle": 1},
    "s2d×2 32/64/128/128 + attn": {"channels": (32, 64, 128, 128), "unshuffle": 2},
    "s2d×2 32/64/128/128, no attn": {
        "channels": (32, 64, 128, 128),
        "unshuffle": 2,
        "attention": False,
    },
    "s2d×2 32/64/128/128 + attn, no m/px embedding": {
        "channels": (32, 64, 128, 128),
        "unshuffle": 2,
        "resolution_embedding": False,
    },
    "s2d×2 48/96/192/192 + attn": {"channels": (48, 96, 192, 192), "unshuffle": 2},
}


def _variant(args: tuple[str, dict, float, str]) -> dict:
    name, kw, minutes, data_dir = args
    torch.set_num_threads(1)
    from generator.models.sr_model import build_unet
    from generator.training.train import TrainConfig, holdout_loss, train_teacher

    cfg = TrainConfig(teacher_minutes=minutes, teacher_steps=10**6, checkpoint_every=10**9, **kw)
    run = Path("runs/study") / name.replace("/", "-").replace(" ", "_")
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    teacher, scheduler, summary = train_teacher(cfg, Path(data_dir), run)
    val = holdout_loss(teacher, scheduler, Path(data_dir), cfg, batches=16)
    unet = build_unet(cfg.channels, 1, cfg.attention, cfg.unshuffle, cfg.resolution_embedding)
    c = 3 * cfg.unshuffle**2
    x = torch.randn(1, 2 * c, 288 // cfg.unshuffle, 288 // cfg.unshuffle)
    labels = torch.tensor([40.0]) if cfg.resolution_embedding else None
    with torch.inference_mode():
        unet.eval()(x, 10, class_labels=labels)
        t0 = time.perf_counter()
        for _ in range(5):
            unet(x, 10, class_labels=labels)
        ms = (time.perf_counter() - t0) / 5 * 1000
    return {
        "variant": name,
        "params_M": sum(p.numel() for p in unet.parameters()) / 1e6,
        "steps": summary["steps"],
        "holdout_v_mse": val,
        "eval_ms_288_1thread": ms,
    }


class TinyAE(torch.nn.Module):
    """×4-down, 8-channel convolutional autoencoder (the size class of a tiny SD VAE)."""

    def __init__(self) -> None:
        super().__init__()
        act = torch.nn.SiLU
        self.enc = torch.nn.Sequential(
            torch.nn.Conv2d(3, 64, 3, 2, 1), act(), torch.nn.Conv2d(64, 128, 3, 2, 1), act(),
            torch.nn.Conv2d(128, 8, 3, 1, 1),
        )  # fmt: skip
        self.dec = torch.nn.Sequential(
            torch.nn.Conv2d(8, 128, 3, 1, 1), act(), torch.nn.Upsample(scale_factor=2),
            torch.nn.Conv2d(128, 64, 3, 1, 1), act(), torch.nn.Upsample(scale_factor=2),
            torch.nn.Conv2d(64, 3, 3, 1, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.enc(x))


def _latent(args: tuple[float, str]) -> dict:
    minutes, data_dir = args
    torch.set_num_threads(1)
    torch.manual_seed(0)
    from generator import metrics
    from generator.training import data
    from generator.training.dataset import PairSampler

    train = PairSampler(data.load(Path(data_dir), "train"), crop=64, seed=0)
    ae = TinyAE()
    opt = torch.optim.AdamW(ae.parameters(), lr=1e-3)
    t0, steps = time.time(), 0
    while time.time() - t0 < minutes * 60:
        kid, _, _ = train.sample(16)
        loss = torch.nn.functional.l1_loss(ae(kid), kid)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    held = PairSampler(data.load(Path(data_dir), "holdout"), crop=128, seed=5)
    kid, _, _ = held.sample(32)
    with torch.no_grad():
        rec = ae(kid).clamp(-1, 1)
    to8 = lambda t: np.rint((t.permute(0, 2, 3, 1).numpy() + 1) * 127.5).astype(np.uint8)  # noqa: E731
    R, A = to8(kid), to8(rec)
    psnr = float(np.mean([metrics.psnr(a, r) for a, r in zip(A, R, strict=True)]))
    gap = float(np.mean([metrics.spectral_gap(a, r) for a, r in zip(A, R, strict=True)]))
    from quality import _bicubic, _down

    b_gap = float(np.mean([metrics.spectral_gap(_bicubic(_down(r, 1), r.shape), r) for r in R]))
    return {"variant": "tiny latent AE ×4 (reconstruction only)", "steps": steps,
            "recon_psnr_db": psnr, "recon_spectral_gap": gap,
            "bicubic_x2_spectral_gap_same_crops": b_gap}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--data", default="data/orbis-v2")
    a = ap.parse_args()
    jobs = [(n, kw, a.minutes, a.data) for n, kw in VARIANTS.items()]
    ctx = mp.get_context("spawn")
    with ctx.Pool(a.jobs) as pool:
        lat = pool.apply_async(_latent, ((a.minutes, a.data),))
        rows = pool.map(_variant, jobs)
        rows.append(lat.get())
    for r in rows:
        print(json.dumps(r))
    print(save("model_study", {"minutes_per_variant": a.minutes, "rows": rows}))


if __name__ == "__main__":
    main()
