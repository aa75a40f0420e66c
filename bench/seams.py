"""Seams and zoom coherence (ARCHITECTURE §6) on 4×4 mosaics several levels below the base.

    .venv/bin/python bench/seams.py [--model builtin]

For `planet` z9 and `earth` z7 over the Alps: seam ratio and strip ratio of orbis's mosaic and of
the independent-tile baseline (no shared noise, no margins, no blending), and parent PSNR of every
parent whose four children are in the mosaic. Writes bench/results/seams.json and mosaics to
docs/img/.
"""

from __future__ import annotations

import argparse
import time

from common import IMG, independent_tile, save, world
from PIL import Image

from generator import metrics, tiles

BLOCKS = {
    # world: (z, x0, y0) of a 4×4 block; x0, y0 even so the 2×2 parents are whole
    "planet": (9, 248, 248),
    "earth": (7, 66, 44),  # the Alps
}


def run(model: str) -> dict:
    out = {}
    for name, (z, x0, y0) in BLOCKS.items():
        w = world(name, model)
        t0 = time.perf_counter()
        grid = [[w.tile_array(z, x0 + i, y0 + j) for i in range(4)] for j in range(4)]
        secs = time.perf_counter() - t0
        m = metrics.mosaic(grid)
        memo: dict = {}
        base = [
            [independent_tile(w, tiles.Tile(x0 + i, y0 + j, z), memo) for i in range(4)]
            for j in range(4)
        ]
        b = metrics.mosaic(base)
        psnrs, base_psnrs = [], []
        for pj in range(2):
            for pi in range(2):
                p = tiles.Tile(x0 // 2 + pi, y0 // 2 + pj, z - 1)
                kids = m[pj * 512 : (pj + 1) * 512, pi * 512 : (pi + 1) * 512]
                psnrs.append(metrics.parent_psnr(w.pyramid.tile(p), kids))
                bkids = b[pj * 512 : (pj + 1) * 512, pi * 512 : (pi + 1) * 512]
                base_psnrs.append(metrics.parent_psnr(independent_tile(w, p, memo), bkids))
        Image.fromarray(m).save(IMG / f"mosaic-{name}-z{z}.png")
        Image.fromarray(b).save(IMG / f"mosaic-{name}-z{z}-independent.png")
        out[name] = {
            "block": f"z{z} x{x0}-{x0 + 3} y{y0}-{y0 + 3}",
            "levels_below_base": z - w.config.base.zoom,
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
            "stats": w.pyramid.stats.snapshot(),
        }
        print(name, out[name])
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin")
    args = ap.parse_args()
    print(save("seams", {"model": args.model, **run(args.model)}))
