"""Realism of the cascade on real imagery it never trained on (ARCHITECTURE §6, issue 4).

    .venv/bin/python bench/quality.py [--model builtin] [--data data/orbis-v2]

Two sets of real images R:

* **unseen aerial, ≈1 m/px**: SpaceNet clips shipped as sample data in the PyPI package
  ``solaris`` (fetched with pip into data/wheels; CC BY-SA 4.0, evaluation only, never trained on):
  Rotterdam 1 m multispectral (colour) and 0.5 m panchromatic, Las Vegas 0.3 m and Atlanta 0.5 m
  panchromatic, area-resampled to 1 m (greys as RGB). Cities, which the training set lacks. They
  are run exactly as a user would: ``orbis upscale`` at ``--zoom 17 --lat 45``.
* **held-out parts of the training sources** at several ground resolutions: NEON 0.1 and 0.2 m,
  Sentinel-2 10 and 20 m, Landsat-8 15 and 30 m (``orbis data``'s ``holdout`` files; these strips
  are narrow, so their crops are 128 px).

For every crop R (256 px of unseen aerial, 128 px of held-out):

* **one step**: P = box_down2(R) (and, for the unseen aerial set once more, P = PIL's bicubic
  reduction, since a user's image may have been reduced either way); G = one cascade step of P
  (`orbis upscale`'s code path); B = bicubic ×2 of P.
* **three chained steps**: P8 = box_down8(R); G3 = three cascade steps (zoom z−2, z−1, z);
  B8 = bicubic ×8 of P8 — what a user sees zooming three levels past the real data.

Reported per set, model and case: spectral gap and gradient distance of G against R, divided by
bicubic's (lower is better; the issue asks ≤ 0.5 and ≤ 0.8), parent PSNR (box_down2(G) against
P; min over crops) and colour shift (largest per-channel mean difference from R, 0–255; max).
Models: the current one (``--model``, default the shipped one), the previous one (orbis-sr v1),
and bicubic.
Writes bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import io
import math
import zipfile
from pathlib import Path

import numpy as np
from common import ROOT, save
from PIL import Image

from generator import metrics, tiles
from generator.models.sr_model import PREVIOUS_MODEL, weights_path
from generator.resample import box_down2_np
from generator.training import data
from generator.upscale import upscale_array
from generator.world import load_model

SOLARIS_WHEEL = "solaris==0.4.0"
#: the same unseen aerial crops, reduced with PIL's bicubic instead of the box mean
BICUBIC_REDUCED = "unseen aerial, bicubic-reduced input"
#: SpaceNet clips in the solaris wheel: name → (file, native m/px, bands used)
SPACENET = {
    "rotterdam-ms-1m": ("solaris/data/preproc_tutorial/ms1.tif", 1.0, (0, 1, 2)),
    "rotterdam-pan": ("solaris/data/preproc_tutorial/pan1.tif", 0.5, (0,)),
    "las-vegas-pan": ("solaris/data/road_mask_input.tif", 0.3, (0,)),
    "atlanta-pan": ("solaris/data/sample_geotiff.tif", 0.5, (0,)),
}


def _stretch(bands: np.ndarray) -> np.ndarray:
    """Per-band 1–99 % stretch of (C, H, W) raw values to uint8 RGB (H, W, 3)."""
    lo = np.percentile(bands, 1, axis=(1, 2), keepdims=True)
    hi = np.percentile(bands, 99, axis=(1, 2), keepdims=True)
    x = np.clip((bands - lo) / np.maximum(hi - lo, 1e-6), 0, 1)
    if x.shape[0] == 1:
        x = np.repeat(x, 3, axis=0)
    return np.rint(x.transpose(1, 2, 0) * 255).astype(np.uint8)


def _area_resize(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Resample by ``factor`` (< 1 shrinks) with an area-averaging (box) filter."""
    h, w = rgb.shape[:2]
    size = (round(w * factor), round(h * factor))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))


def unseen_aerial(cache: Path = ROOT / "data" / "wheels") -> dict[str, np.ndarray]:
    """Return SpaceNet's sample clips at 1 m/px as uint8 RGB (read from the solaris wheel)."""
    import rasterio

    wheel = data.fetch_wheel(SOLARIS_WHEEL, cache, legacy_metadata=True)
    out = {}
    with zipfile.ZipFile(wheel) as zf:
        for name, (file, mpp, bands) in SPACENET.items():
            with rasterio.MemoryFile(io.BytesIO(zf.read(file))) as mem, mem.open() as ds:
                raw = ds.read().astype(np.float64)[list(bands)]
            rgb = _stretch(raw)
            out[name] = rgb if mpp == 1.0 else _area_resize(rgb, mpp / 1.0)
    return out


def crops(rgb: np.ndarray, size: int) -> list[np.ndarray]:
    h, w = rgb.shape[:2]
    return [
        rgb[y : y + size, x : x + size]
        for y in range(0, h - size + 1, size)
        for x in range(0, w - size + 1, size)
    ]


def _down(rgb: np.ndarray, times: int) -> np.ndarray:
    x = rgb.astype(np.float32)
    for _ in range(times):
        x = box_down2_np(x)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _pil_down(rgb: np.ndarray, times: int) -> np.ndarray:
    """Reduce by 2^times with PIL's (antialiased) bicubic, as many users' tools do."""
    h, w = rgb.shape[:2]
    size = (w >> times, h >> times)
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))


def _bicubic(p: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray(Image.fromarray(p).resize(shape[1::-1], Image.Resampling.BICUBIC))


def zoom_lat(mpp: float) -> tuple[int, float]:
    """Return (zoom, latitude) at which a Web Mercator tile has ``mpp`` m/px (z ≤ 18)."""
    for z in range(18, 0, -1):
        c = mpp / tiles.equator_resolution(z)
        if c <= 1.0:
            return z, math.degrees(math.acos(c))
    return 1, 0.0


def evaluate(model, real: list[np.ndarray], zoom: int, lat: float, reduce=None) -> dict[str, dict]:
    """Return the one-step and three-step measures of one model (or bicubic when None).

    ``reduce(R, k)`` makes the input from the real crop (default: box mean, ×2^k).
    """
    reduce = reduce or _down
    rows: dict[str, dict[str, list[float]]] = {"one step": {}, "three steps": {}}
    for i, R in enumerate(real):
        for case, k in (("one step", 1), ("three steps", 3)):
            P = reduce(R, k)
            B = _bicubic(P, R.shape)
            if model is None:
                G = B
                last_parent = reduce(R, 1) if k == 3 else P
            else:
                G = P
                for j in range(k):
                    last_parent = G
                    G = upscale_array(G, zoom - k + 1 + j, model, lat=lat, seed=i)
            r = rows[case]
            r.setdefault("gap", []).append(metrics.spectral_gap(G, R))
            r.setdefault("gap_b", []).append(metrics.spectral_gap(B, R))
            r.setdefault("gd", []).append(metrics.gradient_distance(G, R))
            r.setdefault("gd_b", []).append(metrics.gradient_distance(B, R))
            r.setdefault("ppsnr", []).append(metrics.parent_psnr(last_parent, G))
            r.setdefault("shift", []).append(float(np.abs(G.mean((0, 1)) - R.mean((0, 1))).max()))
    out = {}
    for case, r in rows.items():
        out[case] = {
            "spectral_gap_ratio": float(np.mean(r["gap"]) / np.mean(r["gap_b"])),
            "gradient_distance_ratio": float(np.mean(r["gd"]) / np.mean(r["gd_b"])),
            "spectral_gap": float(np.mean(r["gap"])),
            "gradient_distance": float(np.mean(r["gd"])),
            "parent_psnr_min": float(min(r["ppsnr"])),
            "colour_shift_max": float(max(r["shift"])),
        }
    return out


def image_sets(data_dir: Path) -> list[tuple[str, float, list[np.ndarray], int, float]]:
    """Return (set name, m/px, crops, zoom, latitude) for every evaluated set."""
    sets = []
    aerial = [c for img in unseen_aerial().values() for c in crops(img, 256)]
    sets.append(("unseen aerial (SpaceNet)", 1.0, aerial, 17, 45.0))
    sets.append((BICUBIC_REDUCED, 1.0, aerial, 17, 45.0))
    held = data.load(data_dir, "holdout")
    for prefix in ("neon", "sentinel2", "landsat8-15m"):
        for k in range(2):
            real = []
            mpp = 0.0
            for s in held:
                if not s.name.startswith(prefix):
                    continue
                rgb = np.rint(s.rgb * 255).astype(np.uint8)
                rgb = _down(rgb, k) if k else rgb
                real += crops(rgb, 128)
                mpp = s.mpp * 2**k
            if real:
                z, lat = zoom_lat(mpp)
                sets.append((f"held-out {prefix}", mpp, real[:8], z, lat))
    return sets


def run(model: str, data_dir: Path) -> dict:
    loaded = {
        "bicubic": None,
        "previous": load_model(str(weights_path(PREVIOUS_MODEL))),
        "current": load_model(model),
    }
    results = []
    for name, mpp, real, zoom, lat in image_sets(data_dir):
        for label, model in loaded.items():
            res = evaluate(model, real, zoom, lat, _pil_down if name == BICUBIC_REDUCED else None)
            row = {"set": name, "mpp": mpp, "zoom": zoom, "lat": round(lat, 2),
                   "crops": len(real), "model": label, **res}  # fmt: skip
            results.append(row)
            print(
                f"{name:26s} {mpp:>6g} m {label:9s} "
                + " | ".join(
                    f"{c}: gap {v['spectral_gap_ratio']:.2f}"
                    f" grad {v['gradient_distance_ratio']:.2f}"
                    f" pPSNR {v['parent_psnr_min']:.1f} shift {v['colour_shift_max']:.1f}"
                    for c, v in res.items()
                ),
                flush=True,
            )
    return {"rows": results}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="quality", help="bench/results/OUT.json")
    ap.add_argument("--model", default="builtin", help="the current model (default: shipped)")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "orbis-v2")
    args = ap.parse_args()
    current = load_model(args.model).identity
    previous = load_model(str(weights_path(PREVIOUS_MODEL))).identity
    res = run(args.model, args.data)
    print(save(args.out, {"model": args.model, "current": current, "previous": previous, **res}))
