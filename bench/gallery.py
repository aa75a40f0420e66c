"""Gallery: the same place at four zoom levels, and real / bicubic / orbis side by side.

    .venv/bin/python bench/gallery.py [--model builtin]

Writes docs/img/zoom-{world}.png (four 256-px tiles side by side: the tile containing the same
point at each zoom) and docs/img/compare-{set}.png: for real images orbis never trained on, the
real crop, bicubic and orbis (previous and current model) from the ×2-reduced crop (one step),
and the same from the ×8-reduced crop (three chained steps), each 256 px.
"""

from __future__ import annotations

import argparse

import mercantile
import numpy as np
from common import IMG, ROOT, world
from PIL import Image
from quality import _bicubic, _down, image_sets

from generator.models.sr_model import PREVIOUS_MODEL, weights_path
from generator.upscale import upscale_array
from generator.world import load_model

PLACES = {"earth": (9.3, 45.9, (5, 7, 9, 11)), "planet": (-0.3, 0.3, (5, 7, 9, 11))}


def run(model: str) -> None:
    for name, (lon, lat, zooms) in PLACES.items():
        w = world(name, model)
        row = []
        for z in zooms:
            t = mercantile.tile(lon, lat, z)
            row.append(w.tile_array(z, t.x, t.y))
            print(name, z, t)
        strip = np.concatenate(
            [np.pad(a, ((4, 4), (4, 4), (0, 0)), constant_values=255) for a in row], axis=1
        )
        Image.fromarray(strip).save(IMG / f"zoom-{name}.png")


def _pad(a: np.ndarray) -> np.ndarray:
    if a.shape[0] != 256:
        a = np.asarray(Image.fromarray(a).resize((256, 256), Image.Resampling.NEAREST))
    return np.pad(a, ((4, 4), (4, 4), (0, 0)), constant_values=255)


def compare(model: str) -> None:
    """Real / bicubic / previous / current, one step and three steps, per evaluation set."""
    models = [load_model(str(weights_path(PREVIOUS_MODEL))), load_model(model)]
    picks = {"unseen aerial (SpaceNet)": [0, 2, 3], "held-out neon": [1], "held-out sentinel2": [2]}
    done = set()
    for name, mpp, real, zoom, lat in image_sets(ROOT / "data" / "orbis-v2"):
        if name not in picks or name in done:
            continue
        done.add(name)
        rows = []
        for i in picks[name]:
            R = real[i]
            for k in (1, 3):
                P = _down(R, k)
                row = [R, _bicubic(P, R.shape)]
                for m in models:
                    G = P
                    for j in range(k):
                        G = upscale_array(G, zoom - k + 1 + j, m, lat=lat, seed=i)
                    row.append(G)
                rows.append(np.concatenate([_pad(a) for a in row], axis=1))
        slug = name.split(" ")[-1].strip("()").lower()
        Image.fromarray(np.concatenate(rows, axis=0)).save(IMG / f"compare-{slug}.png")
        print("compare", name, mpp, zoom, round(lat, 1))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin")
    a = ap.parse_args()
    run(a.model)
    compare(a.model)
