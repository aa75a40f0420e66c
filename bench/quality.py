"""Realism of one cascade step on held-out real imagery (ARCHITECTURE §6).

    .venv/bin/python bench/quality.py [--model builtin]

For each held-out scene part (never read in training) and each resolution: R = a real crop,
P = box_down2(R), G = one orbis step from P (`orbis upscale`'s code path), B = bicubic ×2 of P.
Reports the spectral gap and gradient distance of G and B against R (and their ratio, lower is
better), the parent PSNR of G (box_down2(G) vs P) and the mean per-channel colour shift.
Writes bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from common import save
from PIL import Image

from generator import imagery, metrics, tiles
from generator.resample import box_down2_np
from generator.upscale import upscale_array
from generator.world import load_model


def zoom_for(mpp: float) -> int:
    return max(1, round(math.log2(tiles.equator_resolution(0) / mpp)))


def crops(rgb: np.ndarray, size: int = 256) -> list[np.ndarray]:
    h, w = rgb.shape[:2]
    out = []
    for y in range(0, h - size + 1, size):
        for x in range(0, w - size + 1, size):
            out.append(rgb[y : y + size, x : x + size])
    return out


def run(model_path: str) -> dict:
    model = load_model(model_path)
    results = {}
    for scene in imagery.all_scenes("holdout")[1:]:  # Blue Marble hold-out is mostly ocean
        level = scene.rgb
        for k in range(2):
            mpp = scene.mpp * 2**k
            real = [(c * 255).round().astype(np.uint8) for c in crops(level)][:6]
            if not real:
                break
            g_gap, b_gap, g_gd, b_gd, ppsnr, shift = [], [], [], [], [], []
            for i, R in enumerate(real):
                P = np.clip(np.rint(metrics.box_down2(R)), 0, 255).astype(np.uint8)
                G = upscale_array(P, zoom_for(mpp), model, lat=0.0, seed=i)
                B = np.asarray(Image.fromarray(P).resize(R.shape[1::-1], Image.Resampling.BICUBIC))
                g_gap.append(metrics.spectral_gap(G, R))
                b_gap.append(metrics.spectral_gap(B, R))
                g_gd.append(metrics.gradient_distance(G, R))
                b_gd.append(metrics.gradient_distance(B, R))
                ppsnr.append(metrics.parent_psnr(P, G))
                shift.append(float(np.abs(G.mean((0, 1)) - R.mean((0, 1))).max()))
            key = f"{scene.name}@{mpp:g}m"
            results[key] = {
                "crops": len(real),
                "spectral_gap_ratio": float(np.mean(g_gap) / np.mean(b_gap)),
                "gradient_distance_ratio": float(np.mean(g_gd) / np.mean(b_gd)),
                "parent_psnr_min": float(min(ppsnr)),
                "colour_shift_max": float(max(shift)),
            }
            print(key, results[key])
            level = box_down2_np(level)
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin")
    args = ap.parse_args()
    print(save("quality", {"model": args.model, **run(args.model)}))
