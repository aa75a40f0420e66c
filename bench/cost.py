"""Cost on this CPU: a cold deep link, and panning an 8×8 block with parents cached.

    .venv/bin/python bench/cost.py [--model builtin] [--zoom 14]

Cold: one tile at --zoom over the Alps with an empty cache (its whole cone down from the base).
Panning: an 8×8 block at the same zoom next to it, after its parent tiles are cached; model
evaluations, windows and seconds per tile. Writes bench/results/cost.json.
"""

from __future__ import annotations

import argparse
import time

from common import save, world

from generator import tiles


def run(model: str, z: int) -> dict:
    w = world("earth", model)
    # the Alps at this zoom
    import mercantile

    t = mercantile.tile(8.0, 46.5, z)
    # warm the base imagery under the block (Blue Marble reprojection is not what we measure)
    b = mercantile.tile(8.0, 46.5, w.config.base.zoom)
    w.pyramid.tile(tiles.Tile(b.x, b.y, b.z))
    s0 = w.pyramid.stats.snapshot()
    t0 = time.perf_counter()
    w.tile_array(z, t.x, t.y)
    cold_s = time.perf_counter() - t0
    s1 = w.pyramid.stats.snapshot()
    # block to the east, parents cached first (not timed)
    bx, by = t.x + 2, t.y - 4
    g = w.geometry
    block = [tiles.Tile(bx + i, by + j, z) for j in range(8) for i in range(8)]
    # every parent tile the block's windows and corrections read
    parents = {p for t in block for win in g.windows_for_tile(t) for p in g.parents_for_window(win)}
    parents |= {p for t in block for p in g.parents_for_tile(t)}
    for p in sorted(parents, key=lambda p: (p.y, p.x)):
        w.pyramid.tile(p)
    s2 = w.pyramid.stats.snapshot()
    t0 = time.perf_counter()
    for j in range(8):
        for i in range(8):
            w.tile_array(z, bx + i, by + j)
    pan_s = time.perf_counter() - t0
    s3 = w.pyramid.stats.snapshot()
    res = {
        "zoom": z,
        "cold": {
            "tile": f"{z}/{t.x}/{t.y}",
            "seconds": cold_s,
            "windows": s1["windows_generated"] - s0["windows_generated"],
            "model_evals": s1["model_evals"] - s0["model_evals"],
            "tiles_generated": s1["tiles_generated"] - s0["tiles_generated"],
        },
        "pan_8x8": {
            "seconds_per_tile": pan_s / 64,
            "windows_per_tile": (s3["windows_generated"] - s2["windows_generated"]) / 64,
            "model_evals_per_tile": (s3["model_evals"] - s2["model_evals"]) / 64,
        },
        "steps_per_window": w.pyramid.steps,
    }
    print(res)
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--zoom", type=int, default=14)
    args = ap.parse_args()
    print(save("cost", {"model": args.model, **run(args.model, args.zoom)}))
