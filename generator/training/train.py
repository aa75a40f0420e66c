"""Train the built-in model: one command, two phases, resumable checkpoints, a log, a progress bar.

``orbis train --data data/orbis-v2 --out DIR [--minutes M] [--distil-minutes D] [--run runs/train]``

1. **Teacher** (``phase="teacher"``): draw pairs (:class:`PairSampler`), noise the scaled residual
   with the stock scheduler's ``add_noise``, predict v, MSE, AdamW with cosine decay, an EMA copy
   of the weights. It is sampled with 4 DDIM steps.
2. **Distillation** (``phase="distil"``): a student, initialised from the teacher's EMA weights,
   learns to reach in *one* evaluation what the teacher's deterministic 4-step DDIM trajectory
   reaches from the same noise and parent (knowledge distillation of the probability-flow ODE,
   Luhman & Luhman 2021; progressive distillation's 4→1 in one stage). The student is evaluated at
   the sampler's own first timestep and its loss is taken on the output of that one DDIM step, so
   what is trained is exactly what ``sample_window(..., steps=1)`` computes. A small spectral
   term (log radial power of the top octave against the real child) keeps the student from
   regressing to the blurred mean of the teacher's outputs; it is generic, not tuned to a scene.

Each phase writes ``checkpoint-<phase>.pt`` (model, EMA, optimiser, step, RNG states) atomically
every ``checkpoint_every`` steps and when its time is up, so a killed run resumes where it stopped.
A finished phase leaves ``<phase>-done.pt`` and is skipped on the next call. The student's EMA
weights are saved with ``save_pretrained`` into ``--out``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from ..models import conditions
from ..models.sr_model import (
    ModelInfo,
    SuperResolutionModel,
    build_scheduler,
    build_unet,
    class_labels,
)
from ..resample import up2
from ..samplers.ddim import pixel_shuffle, pixel_unshuffle
from . import data, data_v3
from .config import TrainConfig
from .dataset import PairSampler
from .dataset_v3 import LabelledPairSampler

log = logging.getLogger("orbis.train")


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _lr(base: float, step: int, total: int, warmup: int = 100) -> float:
    lr = base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step, total) / total)))
    return lr * min(1.0, (step + 1) / warmup)


def _coefficients(scheduler, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a = scheduler.alphas_cumprod[t].sqrt().view(-1, 1, 1, 1)
    s = (1 - scheduler.alphas_cumprod[t]).sqrt().view(-1, 1, 1, 1)
    return a, s


def _batch(sampler: PairSampler, cfg: TrainConfig, n: int | None = None):
    """Return (target residual x0, condition, m/px, real child) in the UNet's (unshuffled) space.

    The condition is the unshuffled upsampled parent, followed for a conditioned model (v3) by
    the pair's features on the UNet's grid (its first ``x0.shape[1]`` channels are the parent).
    """
    kid, par, mpp, *rest = sampler.sample(n or cfg.batch)
    up = up2(par)
    x0 = (kid - up) / cfg.residual_scale
    cond = pixel_unshuffle(up, cfg.unshuffle)
    if cfg.conditions:
        cond = torch.cat([cond, conditions.to_grid(rest[0], cfg.unshuffle)], 1)
    return pixel_unshuffle(x0, cfg.unshuffle), cond, mpp, kid


def diffusion_loss(unet, scheduler, x0, cond, mpp, gen: torch.Generator | None = None):
    """Return the v-prediction MSE at uniformly drawn timesteps (the teacher's objective)."""
    noise = torch.randn(x0.shape, generator=gen)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (x0.shape[0],), generator=gen)
    xt = scheduler.add_noise(x0, noise, t)
    a, s = _coefficients(scheduler, t)
    pred = unet(torch.cat([xt, cond], 1), t, class_labels=class_labels(unet, mpp)).sample
    return torch.nn.functional.mse_loss(pred, a * noise - s * x0)


def ddim_one_step(unet, scheduler, x: torch.Tensor, cond, mpp, t: int, t_prev: int):
    """Return the DDIM (η = 0) update of ``x`` from ``t`` to ``t_prev`` (−1: the final step).

    The same arithmetic as ``DDIMScheduler.step`` with v-prediction, written out so it is
    differentiable and batched (the scheduler object is not). ``tests/test_training.py`` checks
    the two agree.
    """
    ac = scheduler.alphas_cumprod
    a_t = ac[t]
    a_prev = ac[t_prev] if t_prev >= 0 else scheduler.final_alpha_cumprod
    v = unet(torch.cat([x, cond], 1), t, class_labels=class_labels(unet, mpp)).sample
    x0 = a_t.sqrt() * x - (1 - a_t).sqrt() * v
    eps = a_t.sqrt() * v + (1 - a_t).sqrt() * x
    return a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps


def timesteps(scheduler, steps: int) -> list[int]:
    """Return the sampler's timesteps for ``steps`` DDIM steps, then −1 (the end)."""
    s = copy.deepcopy(scheduler)
    s.set_timesteps(steps)
    return [int(t) for t in s.timesteps] + [-1]


@torch.no_grad()
def teacher_sample(unet, scheduler, noise, cond, mpp, steps: int) -> torch.Tensor:
    """Run the teacher's deterministic DDIM trajectory from ``noise`` (batched)."""
    ts = timesteps(scheduler, steps)
    x = noise * scheduler.init_noise_sigma
    for t, t_prev in zip(ts[:-1], ts[1:], strict=True):
        x = ddim_one_step(unet, scheduler, x, cond, mpp, t, t_prev)
    return x


def _log_power(img: torch.Tensor) -> torch.Tensor:
    """Return log10 radially binned power of the top octave of each image's luma (B, bins)."""
    lum = 0.299 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2]
    h, w = lum.shape[-2:]
    win = torch.outer(torch.hann_window(h, periodic=False), torch.hann_window(w, periodic=False))
    f = torch.fft.fft2((lum - lum.mean((-2, -1), keepdim=True)) * win)
    p = f.real**2 + f.imag**2
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.fftfreq(w)[None, :]
    r = torch.sqrt(fx**2 + fy**2)
    edges = torch.linspace(0.25, 0.5, 5)
    bands = [
        p[:, (r >= lo) & (r < hi)].mean(-1) for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    return torch.log10(torch.stack(bands, -1) + 1e-8)


def spectral_loss(img: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Return mean |log10 P_img − log10 P_real| over the top octave (ARCHITECTURE §6's gap)."""
    return (_log_power(img) - _log_power(real)).abs().mean()


class PatchDiscriminator(torch.nn.Module):
    """A small conditional patch discriminator (PatchGAN, Isola et al. 2017) for the one-step
    student: it sees a child image beside its upsampled parent and scores each ~22-px patch
    real or generated. Spectral normalisation (Miyato et al. 2018) keeps it Lipschitz, so a
    few thousand CPU steps stay stable without pretrained features (none are available)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        sn = torch.nn.utils.parametrizations.spectral_norm
        w = width
        self.net = torch.nn.Sequential(
            sn(torch.nn.Conv2d(6, w, 4, 2, 1)),
            torch.nn.LeakyReLU(0.2),
            sn(torch.nn.Conv2d(w, 2 * w, 4, 2, 1)),
            torch.nn.LeakyReLU(0.2),
            sn(torch.nn.Conv2d(2 * w, 2 * w, 3, 1, 1)),
            torch.nn.LeakyReLU(0.2),
            sn(torch.nn.Conv2d(2 * w, 1, 3, 1, 1)),
        )

    def forward(self, img: torch.Tensor, parent_up: torch.Tensor) -> torch.Tensor:
        """Return patch logits (B, 1, H/4, W/4) of ``img`` given its upsampled parent."""
        return self.net(torch.cat([img, parent_up], 1))


def _phase_done(run_dir: Path, phase: str) -> Path:
    return run_dir / f"{phase}-done.pt"


def _run_phase(
    phase: str,
    cfg: TrainConfig,
    run_dir: Path,
    unet,
    step_fn,
    sampler: PairSampler,
    steps: int,
    minutes: float,
    lr: float,
    extras: dict | None = None,
) -> tuple[torch.nn.Module, dict]:
    """Train ``unet`` with ``step_fn(unet, batch) -> (loss, logs)``; resumable; return the EMA.

    ``extras`` (name → module or optimiser, e.g. the adversarial phase's discriminator) are
    saved in and restored from the checkpoint with the rest, so a resumed run continues them.
    """
    extras = extras or {}
    run_dir.mkdir(parents=True, exist_ok=True)
    done = _phase_done(run_dir, phase)
    ema = copy.deepcopy(unet).requires_grad_(False)
    if done.exists():
        ck = torch.load(done, weights_only=False)
        ema.load_state_dict(ck["ema"])
        log.info("%s: already done (%d steps, %.1f min)", phase, ck["step"], ck["elapsed"] / 60)
        return ema, {"steps": ck["step"], "minutes": ck["elapsed"] / 60}
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-4)
    ckpt_path = run_dir / f"checkpoint-{phase}.pt"
    start, elapsed_before = 0, 0.0
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=False)
        unet.load_state_dict(ck["unet"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        sampler.rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        start, elapsed_before = ck["step"], ck["elapsed"]
        for name, obj in extras.items():
            obj.load_state_dict(ck["extras"][name])
        log.info("%s: resumed from step %d (%.1f min already)", phase, start, elapsed_before / 60)
    t0 = time.time()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=phase, mininterval=5)
    step, elapsed = start, elapsed_before
    for step in bar:
        # the schedule runs over the expected number of steps in the time budget, not `steps`
        horizon = min(steps, max(step + 1, int(step / max(elapsed, 1e-6) * minutes * 60)))
        for g in opt.param_groups:
            g["lr"] = _lr(lr, step, horizon if step > 200 else steps)
        loss, logs = step_fn(unet)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pu in zip(ema.parameters(), unet.parameters(), strict=True):
                pe.lerp_(pu, 1 - decay)
        bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
        elapsed = elapsed_before + time.time() - t0
        if (step + 1) % 50 == 0:
            parts = " ".join(f"{k} {v:.4f}" for k, v in logs.items())
            lr_now = opt.param_groups[0]["lr"]
            log.info("%s step %d %s lr %.2e %.1f min", phase, step + 1, parts, lr_now, elapsed / 60)
        last = step + 1 >= steps or elapsed > minutes * 60
        if last:
            _save_atomic({"ema": ema.state_dict(), "step": step + 1, "elapsed": elapsed}, done)
            ckpt_path.unlink(missing_ok=True)
            break
        if (step + 1) % cfg.checkpoint_every == 0:
            state = {
                "unet": unet.state_dict(),
                "ema": ema.state_dict(),
                "opt": opt.state_dict(),
                "rng": sampler.rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "step": step + 1,
                "elapsed": elapsed,
                "extras": {name: obj.state_dict() for name, obj in extras.items()},
            }
            _save_atomic(state, ckpt_path)
    return ema, {"steps": step + 1, "minutes": elapsed / 60}


def make_sampler(cfg: TrainConfig, data_dir: Path, split: str, seed: int) -> PairSampler:
    """Return the pair sampler of a split: v3's labelled pairs for a conditioned model."""
    if cfg.conditions:
        return LabelledPairSampler(
            data_v3.load(data_dir, split),
            crop=cfg.crop,
            seed=seed,
            other_kernels=cfg.other_kernels if split == "train" else 0.0,
            augment_conditions=split == "train",
        )
    kernels = cfg.other_kernels if split == "train" else 0.0
    return PairSampler(data.load(data_dir, split), crop=cfg.crop, seed=seed, other_kernels=kernels)


def new_unet(cfg: TrainConfig):
    """Return the UNet a run starts from: random, or ``cfg.init_from``'s weights.

    A conditioned model warm-started from an unconditioned one (v3 from v2) gets the old
    weights for every layer and zeros for the new input planes' kernels, so at step 0 it
    computes exactly what the old model did and training only has to learn what the
    conditions add.
    """
    k = len(conditions.FEATURES) if cfg.conditions else 0
    unet = build_unet(
        cfg.channels, 1, cfg.attention, cfg.unshuffle, cfg.resolution_embedding, cond_channels=k
    )
    if cfg.init_from:
        old = SuperResolutionModel.from_pretrained(cfg.init_from).unet.state_dict()
        mine = unet.state_dict()
        for key, val in old.items():
            if key not in mine:
                raise ValueError(f"{cfg.init_from}: layer {key} is not in the new UNet")
            if mine[key].shape == val.shape:
                mine[key] = val.clone()
            elif key == "conv_in.weight" and mine[key].shape[1] > val.shape[1]:
                w = torch.zeros_like(mine[key])
                w[:, : val.shape[1]] = val
                mine[key] = w
            else:
                raise ValueError(f"{cfg.init_from}: layer {key} has another shape")
        unet.load_state_dict(mine)
        log.info("initialised from %s", cfg.init_from)
    return unet


def train_teacher(cfg: TrainConfig, data_dir: Path, run_dir: Path):
    """Phase 1: return (teacher EMA UNet, scheduler, summary)."""
    torch.manual_seed(cfg.seed)
    unet = new_unet(cfg)
    scheduler = build_scheduler()
    sampler = make_sampler(cfg, data_dir, "train", cfg.seed)

    def step_fn(model):
        x0, cond, mpp, _ = _batch(sampler, cfg)
        loss = diffusion_loss(model, scheduler, x0, cond, mpp)
        return loss, {"loss": loss.item()}

    ema, summary = _run_phase(
        "teacher",
        cfg,
        run_dir,
        unet,
        step_fn,
        sampler,
        cfg.teacher_steps,
        cfg.teacher_minutes,
        cfg.lr,
    )
    return ema, scheduler, summary


def distil(cfg: TrainConfig, teacher, scheduler, data_dir: Path, run_dir: Path):
    """Phase 2: return (one-step student EMA UNet, summary)."""
    torch.manual_seed(cfg.seed + 1)
    teacher = teacher.eval().requires_grad_(False)
    student = copy.deepcopy(teacher).requires_grad_(True).train()
    sampler = make_sampler(cfg, data_dir, "train", cfg.seed + 1)
    ts = timesteps(scheduler, cfg.student_steps)
    extras: dict = {}
    if cfg.adversarial_weight > 0:
        disc = PatchDiscriminator()
        d_opt = torch.optim.AdamW(disc.parameters(), lr=cfg.distil_lr, betas=(0.5, 0.99))
        extras = {"disc": disc, "disc_opt": d_opt}

    def step_fn(model):
        x0, cond, mpp, kid = _batch(sampler, cfg)
        noise = torch.randn_like(x0)
        target = teacher_sample(teacher, scheduler, noise, cond, mpp, cfg.teacher_sampling_steps)
        x = noise * scheduler.init_noise_sigma
        for t, t_prev in zip(ts[:-1], ts[1:], strict=True):
            x = ddim_one_step(model, scheduler, x, cond, mpp, t, t_prev)
        mse = torch.nn.functional.mse_loss(x, target)
        up = pixel_shuffle(cond[:, : x.shape[1]], cfg.unshuffle)
        img = up + pixel_shuffle(x, cfg.unshuffle) * cfg.residual_scale
        spec = spectral_loss(img, kid)
        loss = mse + cfg.spectral_weight * spec
        logs = {"mse": mse.item(), "spec": spec.item()}
        if extras:
            # hinge loss (Lim & Ye 2017): the discriminator on real children and the
            # student's (detached) outputs, then the student against the updated one
            d_loss = (
                torch.relu(1 - disc(kid, up)).mean() + torch.relu(1 + disc(img.detach(), up)).mean()
            )
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
            g_adv = -disc(img, up).mean()
            loss = loss + cfg.adversarial_weight * g_adv
            logs |= {"d": d_loss.item(), "adv": g_adv.item()}
        return loss, logs

    ema, summary = _run_phase(
        "distil",
        cfg,
        run_dir,
        student,
        step_fn,
        sampler,
        cfg.distil_steps,
        cfg.distil_minutes,
        cfg.distil_lr,
        extras,
    )
    return ema, summary


@torch.no_grad()
def holdout_loss(unet, scheduler, data_dir: Path, cfg: TrainConfig, batches: int = 8) -> float:
    """Return the teacher objective on held-out pairs (fixed draws, all noise levels)."""
    sampler = make_sampler(cfg, data_dir, "holdout", cfg.seed + 7)
    gen = torch.Generator().manual_seed(123)
    losses = [
        diffusion_loss(unet, scheduler, *_batch(sampler, cfg, 16)[:3], gen=gen).item()
        for _ in range(batches)
    ]
    return sum(losses) / len(losses)


def train(
    out: Path,
    data_dir: Path = Path("data/orbis-v2"),
    run_dir: Path = Path("runs/train"),
    cfg: TrainConfig | None = None,
) -> Path:
    """Train (or resume) both phases and save the one-step student to ``out``; return ``out``."""
    cfg = cfg or TrainConfig()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    teacher, scheduler, t_sum = train_teacher(cfg, data_dir, run_dir)
    val = holdout_loss(teacher, scheduler, data_dir, cfg)
    log.info("teacher hold-out v-MSE %.4f", val)
    teacher_info = _info(cfg, cfg.teacher_sampling_steps, {"holdout_v_mse": f"{val:.4f}"})
    SuperResolutionModel(teacher, scheduler, teacher_info).save_pretrained(run_dir / "teacher")
    student, d_sum = distil(cfg, teacher, scheduler, data_dir, run_dir)
    notes = {
        "teacher_steps": str(t_sum["steps"]),
        "teacher_minutes": f"{t_sum['minutes']:.1f}",
        "distil_steps": str(d_sum["steps"]),
        "distil_minutes": f"{d_sum['minutes']:.1f}",
        "teacher_holdout_v_mse": f"{val:.4f}",
        "this_call_minutes": f"{(time.time() - t0) / 60:.1f}",
        "dataset": f"orbis data v{_dataset_version(cfg, data_dir)}",
        "config": json.dumps({k: v for k, v in asdict(cfg).items() if k != "notes"}),
    }
    info = _info(cfg, cfg.student_steps, notes)
    SuperResolutionModel(student.eval(), scheduler, info).save_pretrained(out)
    (run_dir / "summary.json").write_text(json.dumps(notes, indent=2) + "\n")
    log.info("saved %s", out)
    return out


def _dataset_version(cfg: TrainConfig, data_dir: Path) -> str:
    return data_v3.DATASET_VERSION if cfg.conditions else data.version(data_dir)


def _info(cfg: TrainConfig, steps: int, notes: dict[str, str]) -> ModelInfo:
    return ModelInfo(
        model_id="orbis-sr",
        version=cfg.version,
        residual_scale=cfg.residual_scale,
        num_inference_steps=steps,
        trained_mpp=(0.1, 15000.0),
        pixel_unshuffle=cfg.unshuffle,
        conditions=conditions.VERSION if cfg.conditions else "",
        notes={**cfg.notes, **notes},
    )
