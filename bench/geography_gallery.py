"""Gallery of the geography: ten places at z6, z9, z12, imagery before and after beside its layers.

    .venv/bin/python bench/geography_gallery.py [--model builtin] [--zooms 6,9,12]

For each place and zoom, one row of 256-px panels: the imagery before this change (the same
world without the water edit: ``[geography] follow = false``, whose pixels equal the previous
release's), the imagery now, the water layer (ocean, lake, river), a hillshade of the elevation
layer and the land-cover layer. Writes docs/img/geo-{place}.jpg (three rows) and
docs/img/geo-planet.jpg for the synthetic world.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import mercantile
import numpy as np
from common import IMG, world
from PIL import Image

from generator.geography import classes

PLACES = {
    "po-valley": (10.5, 45.1),
    "paris": (2.35, 48.86),
    "lake-como": (9.26, 46.0),
    "alps": (7.9, 46.5),
    "nile-delta": (31.2, 30.9),
    "sahara": (5.5, 25.0),
    "sognefjord": (6.3, 61.15),
    "stockholm": (18.6, 59.35),
    "san-francisco-bay": (-122.3, 37.75),
    "mekong-delta": (106.5, 9.8),
}
PLANET = (-0.3, 0.3)


def palette(items) -> np.ndarray:
    lut = np.zeros((256, 3), np.uint8)
    for k in items:
        lut[k.id] = k.color
    return lut


WATER_LUT = palette(classes.WATER_KINDS)
WATER_LUT[0] = (235, 230, 215)
LAND_LUT = palette(classes.LANDCOVER)


def hillshade(elev: np.ndarray, mpp: float) -> np.ndarray:
    """Lambertian hillshade (sun from the north-west at 45°), exaggerated for coarse zooms."""
    gy, gx = np.gradient(elev.astype(np.float64), mpp)
    exaggeration = max(1.0, mpp / 30.0) ** 0.5
    nx, ny, nz = -gx * exaggeration, -gy * exaggeration, np.ones_like(gx)
    norm = np.sqrt(nx**2 + ny**2 + nz**2)
    light = np.array([-1.0, 1.0, 1.0]) / np.sqrt(3)
    shade = (nx * light[0] + ny * -light[1] + nz * light[2]) / norm
    grey = np.clip(shade, 0, 1) * 255
    tint = np.where(elev[..., None] < 0, [60, 90, 150], [255, 255, 255]) / 255.0
    return np.clip(grey[..., None] * tint, 0, 255).astype(np.uint8)


def panels(before, after, z: int, lon: float, lat: float) -> np.ndarray:
    t = mercantile.tile(lon, lat, z)
    row = [before.tile_array(z, t.x, t.y)] if before is not None else []
    row.append(after.tile_array(z, t.x, t.y))
    row.append(WATER_LUT[after.layer("water", z, t.x, t.y)])
    row.append(hillshade(after.layer("elevation", z, t.x, t.y), after.resolution(z, t.y)))
    row.append(LAND_LUT[after.layer("landcover", z, t.x, t.y)])
    return np.concatenate(
        [np.pad(a, ((2, 2), (2, 2), (0, 0)), constant_values=255) for a in row], 1
    )


def before_world(name: str, model: str):
    from generator.world import World, load_model
    from tests.helpers import CONFIG_DIR, write_world

    cfg = Path(tempfile.mkdtemp())
    text = (CONFIG_DIR / "worlds" / f"{name}.toml").read_text()
    write_world(cfg, name, text.replace("[model]", "[geography]\nfollow = false\n\n[model]"))
    return World.load(name, config_dir=cfg, model=load_model(model))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--zooms", default="6,9,12")
    ap.add_argument("--only", default="", help="comma-separated place slugs")
    args = ap.parse_args()
    zooms = [int(z) for z in args.zooms.split(",")]
    after, before = world("earth", args.model), before_world("earth", args.model)
    only = set(filter(None, args.only.split(",")))
    for slug, (lon, lat) in PLACES.items():
        if only and slug not in only:
            continue
        rows = [panels(before, after, z, lon, lat) for z in zooms]
        Image.fromarray(np.concatenate(rows, 0)).save(IMG / f"geo-{slug}.jpg", quality=90)
        print(slug, flush=True)
    if not only or "planet" in only:
        after, before = world("planet", args.model), before_world("planet", args.model)
        rows = [panels(before, after, z, *PLANET) for z in zooms]
        Image.fromarray(np.concatenate(rows, 0)).save(IMG / "geo-planet.jpg", quality=90)
        print("planet")


if __name__ == "__main__":
    main()
