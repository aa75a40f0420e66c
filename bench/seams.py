"""Seams and zoom coherence (ARCHITECTURE §6) on 4×4 mosaics several levels below the base.

    .venv/bin/python bench/seams.py [--model builtin]

For `planet` z9 and `earth` z7 over the Alps: seam ratio and strip ratio of orbis's mosaic and of
the independent-tile baseline (no shared noise, no margins, no blending), and parent PSNR of every
parent whose four children are in the mosaic. Writes bench/results/seams.json and mosaics to
docs/img/.
"""

from __future__ import annotations

import argparse

from common import IMG, measure_block, save, world
from PIL import Image

BLOCKS = {
    # world: (z, x0, y0) of a 4×4 block; x0, y0 even so the 2×2 parents are whole
    "planet": (9, 248, 248),
    "earth": (7, 66, 44),  # the Alps
}


def run(model: str) -> dict:
    out = {}
    for name, (z, x0, y0) in BLOCKS.items():
        w = world(name, model)
        r = measure_block(w, z, x0, y0)
        m, b = r.pop("mosaic"), r.pop("independent_mosaic")
        Image.fromarray(m).save(IMG / f"mosaic-{name}-z{z}.png")
        Image.fromarray(b).save(IMG / f"mosaic-{name}-z{z}-independent.png")
        out[name] = {
            "block": f"z{z} x{x0}-{x0 + 3} y{y0}-{y0 + 3}",
            "levels_below_base": z - w.config.base.zoom,
            **r,
            "stats": w.pyramid.stats.snapshot(),
        }
        print(name, out[name])
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin")
    args = ap.parse_args()
    print(save("seams", {"model": args.model, **run(args.model)}))
