"""Shared helpers of the benchmark scripts (run from the repository root)."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.models.sr_model import SuperResolutionModel  # noqa: E402
from generator.resample import up2  # noqa: E402
from generator.samplers import sample_window  # noqa: E402
from generator.world import World, load_model  # noqa: E402

RESULTS = ROOT / "bench" / "results"
IMG = ROOT / "docs" / "img"


def world(name: str, model: str = "builtin", store=None) -> World:
    """Load a world with a fresh in-memory cache (or the given store)."""
    return World.load(name, store=store, model=load_model(model))


def save(name: str, data: dict) -> Path:
    """Write a result file with the machine it was measured on."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, CPU",
        **data,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def independent_tile(w: World, t, memo: dict) -> np.ndarray:
    """The seam baseline: each tile sampled alone from its own parent tile's quadrant.

    No shared noise (each tile draws its own seeded noise), no margins, no blending, no parent
    correction; the base level is the same as orbis's.
    """
    from generator import tiles

    if t in memo:
        return memo[t]
    if t.z <= w.config.base.zoom:
        arr = w.pyramid.tile(t)
    else:
        p = tiles.parent(t)
        parr = independent_tile(w, p, memo)
        dx, dy = t.x - 2 * p.x, t.y - 2 * p.y
        q = parr[dy * 128 : (dy + 1) * 128, dx * 128 : (dx + 1) * 128]
        cond = up2(torch.from_numpy(q.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1)[None])
        gen = torch.Generator().manual_seed(hash((t.z, t.x, t.y)) & 0x7FFFFFFF)
        noise = torch.randn(cond.shape, generator=gen)
        out = sample_window(w.model, cond, noise, w.resolution(t.z, t.y))[0].numpy()
        arr = np.clip(np.rint((out + 1) * 127.5), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    memo[t] = arr
    return arr


__all__ = ["IMG", "RESULTS", "SuperResolutionModel", "independent_tile", "save", "world"]


def block_parent_psnrs(w: World, z: int, x0: int, y0: int, mosaic: np.ndarray) -> list[float]:
    """Return the parent PSNR of each of the four 2×2 parents of a 4×4 mosaic at (z, x0, y0)."""
    from generator import metrics, tiles

    out = []
    for pj in range(2):
        for pi in range(2):
            p = tiles.Tile(x0 // 2 + pi, y0 // 2 + pj, z - 1)
            kids = mosaic[pj * 512 : (pj + 1) * 512, pi * 512 : (pi + 1) * 512]
            out.append(metrics.parent_psnr(w.pyramid.tile(p), kids))
    return out


def measure_block(w: World, z: int, x0: int, y0: int, independent=independent_tile) -> dict:
    """Seam, strip and parent figures of a 4×4 block of tiles, for orbis and for a baseline.

    ``independent(world, tile, memo)`` makes the baseline's tiles (each alone from its parent).
    Returns the figures plus the two 1024² mosaics (``mosaic``, ``independent_mosaic``), which
    the caller may save and must drop before writing JSON.
    """
    from generator import metrics, tiles

    t0 = time.perf_counter()
    grid = [[w.tile_array(z, x0 + i, y0 + j) for i in range(4)] for j in range(4)]
    secs = time.perf_counter() - t0
    m = metrics.mosaic(grid)
    memo: dict = {}
    base = [
        [independent(w, tiles.Tile(x0 + i, y0 + j, z), memo) for i in range(4)] for j in range(4)
    ]
    b = metrics.mosaic(base)
    psnrs, base_psnrs = [], []
    for pj in range(2):
        for pi in range(2):
            p = tiles.Tile(x0 // 2 + pi, y0 // 2 + pj, z - 1)
            kids = m[pj * 512 : (pj + 1) * 512, pi * 512 : (pi + 1) * 512]
            psnrs.append(metrics.parent_psnr(w.pyramid.tile(p), kids))
            bkids = b[pj * 512 : (pj + 1) * 512, pi * 512 : (pi + 1) * 512]
            base_psnrs.append(metrics.parent_psnr(independent(w, p, memo), bkids))
    return {
        "mosaic": m,
        "independent_mosaic": b,
        "orbis": {
            "seam_ratio": metrics.seam_ratio(m),
            "strip_ratio": metrics.strip_ratio(m),
            "parent_psnr_min": min(psnrs),
            "parent_psnr": psnrs,
        },
        "independent": {
            "seam_ratio": metrics.seam_ratio(b),
            "strip_ratio": metrics.strip_ratio(b),
            "parent_psnr_min": min(base_psnrs),
        },
        "seconds_cold": secs,
    }
