"""Gallery: the same place at four zoom levels, for both worlds.

    .venv/bin/python bench/gallery.py [--model builtin]

Writes docs/img/zoom-{world}.png (four 256-px tiles side by side: the tile containing the same
point at each zoom) and the 2×2 mosaic of the deepest one.
"""

from __future__ import annotations

import argparse

import mercantile
import numpy as np
from common import IMG, world
from PIL import Image

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


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin")
    run(ap.parse_args().model)
