"""What the geography costs the imagery: panning and a cold deep link with and without it.

    .venv/bin/python bench/geography_cost.py [--model builtin] [--zoom 14] [--rounds 2]

Three configs of ``earth``: ``[geography] kind = "none"`` (the imagery before the geography
existed), ``follow = false`` (layers present, imagery not edited) and the default (the imagery
follows the water layer). For each, over Lake Como and over the Alps: a cold deep link at --zoom
(the whole cone from the base), then panning a 4×4 block next to it with its parents cached
(``--pan 8``: an 8×8 block).
Rounds alternate between the configs, so machine load hits them alike; wall and CPU seconds are
reported (CPU time is what the geography adds; wall time is what a user waits). Where the code base
has the layout painter (``[geography] paint``), the water follower is measured with it and the
relief shading off, and the default (every edit: water, layout, relief) separately. Writes
bench/results/geography_cost.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import mercantile
from common import save

from generator import tiles
from generator.world import World, load_model


def _configs() -> dict[str, str]:
    """Return the [geography] blocks compared: with a layout painter in the code base, the
    water follower is measured with it off (the 10 % target is the water's), and the default
    (every edit on) is measured too."""
    from generator.world_config import GeographyConfig

    if "paint" not in GeographyConfig.model_fields:
        return {
            "none": '[geography]\nkind = "none"\n\n',
            "layers, no edit": "[geography]\nfollow = false\n\n",
            "follow (default)": "",
        }
    return {
        "none": '[geography]\nkind = "none"\n\n',
        "layers, no edit": "[geography]\nfollow = false\npaint = false\nshade = false\n\n",
        "follow water": "[geography]\npaint = false\nshade = false\n\n",
        "default (water + layout)": "",
    }


CONFIGS = _configs()
PLACES = {"Lake Como": (9.26, 46.0), "Alps": (8.0, 46.5)}


def load(label: str, model) -> World:
    from tests.helpers import CONFIG_DIR, write_world

    cfg = Path(tempfile.mkdtemp())
    text = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
    write_world(cfg, "earth", text.replace("[model]", CONFIGS[label] + "[model]"))
    return World.load("earth", config_dir=cfg, model=model)


def measure(w: World, z: int, lon: float, lat: float, pan: int = 4) -> dict:
    t = mercantile.tile(lon, lat, z)
    b = mercantile.tile(lon, lat, w.config.base.zoom)
    w.pyramid.tile(tiles.Tile(b.x, b.y, b.z))  # Blue Marble reprojection is not measured
    s0 = w.pyramid.stats.snapshot()
    c0, t0 = time.process_time(), time.perf_counter()
    w.tile_array(z, t.x, t.y)
    cold = (time.perf_counter() - t0, time.process_time() - c0)
    s1 = w.pyramid.stats.snapshot()
    g = w.geometry
    bx, by = t.x + 2, t.y - 2
    block = [tiles.Tile(bx + i, by + j, z) for j in range(pan) for i in range(pan)]
    parents = {p for b in block for win in g.windows_for_tile(b) for p in g.parents_for_window(win)}
    parents |= {p for b in block for p in g.parents_for_tile(b)}
    for p in sorted(parents, key=lambda p: (p.y, p.x)):
        w.pyramid.tile(p)
    s2 = w.pyramid.stats.snapshot()
    c0, t0 = time.process_time(), time.perf_counter()
    for b in block:
        w.tile_array(z, b.x, b.y)
    pan = ((time.perf_counter() - t0) / len(block), (time.process_time() - c0) / len(block))
    s3 = w.pyramid.stats.snapshot()
    return {
        "cold_s": cold[0],
        "cold_cpu_s": cold[1],
        "cold_evals": s1["model_evals"] - s0["model_evals"],
        "pan_s_per_tile": pan[0],
        "pan_cpu_s_per_tile": pan[1],
        "pan_evals_per_tile": (s3["model_evals"] - s2["model_evals"]) / len(block),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--zoom", type=int, default=14)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--places", default=",".join(PLACES), help="comma-separated subset")
    ap.add_argument("--out", default="geography_cost", help="results name")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset")
    ap.add_argument(
        "--pan",
        type=int,
        default=4,
        help="side of the panned block (4: 16 tiles; 8: 64 tiles, where a routing cell's "
        "cost at the block's edge weighs a quarter as much per tile)",
    )
    args = ap.parse_args()
    places = {p: PLACES[p] for p in args.places.split(",")}
    configs = args.configs.split(",")
    model = load_model(args.model)
    rows: dict[str, dict[str, list[dict]]] = {p: {c: [] for c in configs} for p in places}
    for r in range(args.rounds):
        for place, (lon, lat) in places.items():
            for label in configs:
                w = load(label, model)  # a fresh, empty cache each round
                if w.geography is not None:  # data indices loaded before timing ("warm")
                    # (elevation too: the streams' routing reads it, and its first tile loads
                    # the WDBII lines its corridors follow; land cover loads the climate grid
                    # and glaciers the streams' sources read, 0.3 s once per process)
                    for name in ("water", "rivers", "elevation", "landcover"):
                        w.geography.tile(name, 8, 0, 0)
                res = measure(w, args.zoom, lon, lat, args.pan)
                rows[place][label].append(res)
                res["load_1min"] = os.getloadavg()[0]
                print(r, place, label, {k: round(v, 3) for k, v in res.items()}, flush=True)
    summary = {}
    for place in places:
        summary[place] = {}
        for label in configs:
            runs = rows[place][label]
            summary[place][label] = {
                k: min(run[k] for run in runs) for k in runs[0] if k != "load_1min"
            }  # best of the rounds: the least disturbed by other load
    print("| place | config | cold s | cold CPU s | pan s/tile | pan CPU s/tile | evals/tile |")
    print("|---|---|---|---|---|---|---|")
    for place, by in summary.items():
        for label, s in by.items():
            print(
                f"| {place} | {label} | {s['cold_s']:.1f} | {s['cold_cpu_s']:.1f} | "
                f"{s['pan_s_per_tile']:.3f} | {s['pan_cpu_s_per_tile']:.3f} | "
                f"{s['pan_evals_per_tile']:.2f} |"
            )
    load_avg = [round(v, 2) for v in os.getloadavg()]
    out = {"model": args.model, "zoom": args.zoom, "pan_block": args.pan}
    out |= {"load_average_end": load_avg, "best": summary}
    out["rounds"] = rows
    print(save(args.out, out))


if __name__ == "__main__":
    main()
