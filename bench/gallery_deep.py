"""Gallery: deep zoom over real places, the imagery before and after the geography edits.

    .venv/bin/python bench/gallery_deep.py [--places como,alps,fjord,sahara] [--cache DIR]

For each place the z17 tile over it is rendered in ``earth`` (its whole cone from the base),
then the tiles over the same point at z8, z12 and z15 are read (they lie in that cone, so they
cost almost nothing more). Two configs: *before* (``[geography] follow = false, paint = false``:
the layers exist but the imagery ignores them, the pixels of the release before issue 12) and
*after* (today's default: the water edit and the layout painting). Each place gives one strip
``docs/img/deep/{place}.jpg``: top row before, bottom row after, columns z8, z12, z15, z17, and
beside each after-tile a contrast-stretched copy (×3 around its mean) so seams and tile grids in
flat ground show. Tiles are kept in ``--cache`` (a diskcache folder), so a re-run only renders
what changed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import mercantile
import numpy as np
from common import IMG
from PIL import Image

from generator.world import World, load_model

PLACES = {
    "como": ("Lake Como", 9.26, 46.0),
    "alps": ("the Bernese Alps", 7.9, 46.5),
    "fjord": ("the Sognefjord", 6.75, 61.17),
    "sahara": ("the Sahara", 5.5, 25.0),
    "nile": ("the Nile delta", 31.0, 30.8),
    "po": ("the Po valley", 10.2, 45.05),
    "paris": ("Paris", 2.35, 48.86),
    "erg": ("the Grand Erg Occidental", 0.78, 30.82),
    "jafurah": ("Al Jafurah, Arabia", 50.0, 24.84),
}
ZOOMS = (8, 12, 15, 17)
CONFIGS = {
    "before": "[geography]\nfollow = false\npaint = false\nshade = false\n\n",
    "after": "",
}


def load(label: str, model, cache: Path) -> World:
    """Return ``earth`` with a config block and its own tile store under ``cache``."""
    from generator.stores import open_store
    from tests.helpers import CONFIG_DIR, write_world

    cfg = Path(tempfile.mkdtemp())
    text = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
    write_world(cfg, "earth", text.replace("[model]", CONFIGS[label] + "[model]"))
    store = open_store(str(cache / label))
    return World.load("earth", config_dir=cfg, model=model, store=store)


def stretch(a: np.ndarray, k: float = 3.0) -> np.ndarray:
    """Return the tile with its contrast stretched ×k around its mean (seams show)."""
    f = a.astype(np.float32)
    return np.clip((f - f.mean((0, 1))) * k + 128.0, 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--places", default="como,alps,fjord,sahara")
    ap.add_argument("--cache", default="/tmp/orbis-gallery-deep")
    ap.add_argument("--model", default="builtin")
    args = ap.parse_args()
    cache = Path(args.cache)
    model = load_model(args.model)
    out = IMG / "deep"
    out.mkdir(parents=True, exist_ok=True)
    worlds = {label: load(label, model, cache) for label in CONFIGS}
    for key in args.places.split(","):
        _, lon, lat = PLACES[key]
        rows = []
        for label, w in worlds.items():
            t0 = time.perf_counter()
            deep = mercantile.tile(lon, lat, ZOOMS[-1])
            w.tile_array(deep.z, deep.x, deep.y)
            row = []
            for z in ZOOMS:
                t = mercantile.tile(lon, lat, z)
                a = w.tile_array(z, t.x, t.y)
                row.append(a)
                if label == "after":
                    row.append(stretch(a))
            print(f"{key} {label}: {time.perf_counter() - t0:.0f} s", flush=True)
            rows.append(row)
        # before: tiles in the columns of the after row's plain tiles, blanks under the stretches
        blank = np.full((256, 256, 3), 255, np.uint8)
        before = [x for a in rows[0] for x in (a, blank)]
        grid = [before, rows[1]]
        strip = np.concatenate(
            [
                np.concatenate(
                    [np.pad(a, ((3, 3), (3, 3), (0, 0)), constant_values=255) for a in r], 1
                )
                for r in grid
            ],
            0,
        )
        Image.fromarray(strip).save(out / f"{key}.jpg", quality=85)
        print("wrote", out / f"{key}.jpg")


if __name__ == "__main__":
    main()
