"""Seams and zoom coherence of diffusers layouts (tiny random checkpoints) in the planet world.

    .venv/bin/python bench/diffusers_layouts.py [--steps 4]

For the SD-2, Text2Earth and SD ×4 upscaler layouts (``save_tiny_checkpoint``: stock diffusers
classes, random weights, a few hundred kB), the ``planet`` world with that checkpoint for every
level below the base (``--model``), the prompt "green forest by a river" and ``--steps`` DDIM
steps: a 4×4 z6 block's seam ratio and strip ratio, and the parent PSNR of its four z5 parents;
beside them the independent-tile baseline (each tile one latent window of exactly the tile,
conditioned on its parent's quadrant, its own noise, no margins, blending or correction).
Random weights make noise, not imagery: what this measures is the mechanism (shared latent noise,
latent blending, decoding with context, the parent correction), not a model's quality.
Writes bench/results/diffusers_layouts.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from common import ROOT, measure_block, save

from generator import tiles
from generator.models.diffusers_tiny import save_tiny_checkpoint
from generator.samplers.latent import decode_latents, sample_latent_windows
from generator.world import World

PROMPT = "green forest by a river"
Z, X0, Y0 = 6, 32, 20  # a 4×4 block (x0, y0 even: its 2×2 parents are whole)


def independent_tile(w: World, t: tiles.Tile, memo: dict) -> np.ndarray:
    """One latent window of exactly the tile from its parent's quadrant; no shared anything."""
    if t in memo:
        return memo[t]
    if t.z <= w.config.base.zoom:
        arr = w.pyramid.tile(t)
    else:
        st = w.pyramid.stage_for(t.z)
        p = tiles.parent(t)
        parr = independent_tile(w, p, memo)
        dx, dy = t.x - 2 * p.x, t.y - 2 * p.y
        q = parr[dy * 128 : (dy + 1) * 128, dx * 128 : (dx + 1) * 128]
        parent = torch.from_numpy(q.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1)[None]
        n = 256 // st.model.vae_scale
        gen = torch.Generator().manual_seed((t.z * 1_000_003 + t.y * 4099 + t.x) & 0x7FFFFFFF)
        noise = torch.randn((1, st.model.latent_channels, n, n), generator=gen)
        low = torch.randn((1, 3, n, n), generator=gen)
        lat = sample_latent_windows(
            st.model, st.sampling, parent=parent, noise=noise, levels=[10], lowres_noise=low
        )
        out = decode_latents(st.model, lat)[0].numpy()
        arr = np.clip(np.rint((out + 1) * 127.5), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    memo[t] = arr
    return arr


def run_layout(layout: str, tmp: Path, steps: int) -> dict:
    ckpt = save_tiny_checkpoint(tmp / layout, layout)
    cfg = tmp / "config"
    (cfg / "worlds").mkdir(parents=True, exist_ok=True)
    text = (ROOT / "config" / "worlds" / "planet.toml").read_text()
    (cfg / "worlds" / "planet.toml").write_text(
        text.replace('path = "builtin"\n', f"steps = {steps}\n")
    )
    w = World.load("planet", cfg, model=str(ckpt), prompt=PROMPT)
    r = measure_block(w, Z, X0, Y0, independent=independent_tile)
    del r["mosaic"], r["independent_mosaic"]
    st = w.pyramid.stage_for(Z)
    geo = w.pyramid._latent_geometry(st)
    return {
        "block": f"planet z{Z} x{X0}-{X0 + 3} y{Y0}-{Y0 + 3}",
        "model": st.model.identity,
        "vae_factor": geo.factor,
        "latent_tile_margin_context": [geo.latent.tile, geo.latent.margin, geo.context],
        "sampling": st.sampling.__dict__,
        **r,
        "stats": w.pyramid.stats.snapshot(),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    out = {"prompt": PROMPT, "steps": args.steps}
    with tempfile.TemporaryDirectory() as tmp:
        for layout in ("sd", "text2earth", "upscaler"):
            out[layout] = run_layout(layout, Path(tmp), args.steps)
            print(layout, out[layout]["orbis"], out[layout]["independent"])
    print(save("diffusers_layouts", out))
