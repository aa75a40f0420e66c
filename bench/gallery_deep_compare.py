"""Gallery: the default imagery of two code versions at z8/z12/z15/z17, and their difference.

    .venv/bin/python bench/gallery_deep_compare.py render ROOT OUT.npz [--places po,paris]
    .venv/bin/python bench/gallery_deep_compare.py compose BEFORE.npz AFTER.npz [--name perf]

``render`` imports the code under ROOT (this tree, or a ``git worktree`` of an older commit),
renders each place's z17 cone in ``earth`` with its default config (as ``gallery_deep.py``
does), and saves the tiles over the same point at z8, z12, z15 and z17. ``compose`` writes
``docs/img/deep/{name}-{place}.jpg`` (rows: before, after, |after − before| × 20) and prints
the largest difference and the changed pixels per tile.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ZOOMS = (8, 12, 15, 17)


def render(root: str, out: str, places: str) -> None:
    sys.path[:0] = [root, root + "/bench"]
    import mercantile
    from gallery_deep import PLACES, load

    from generator.world import load_model

    w = load("after", load_model("builtin"), Path(tempfile.mkdtemp()))
    tiles = {}
    for key in places.split(","):
        _, lon, lat = PLACES[key]
        t0 = time.perf_counter()
        d = mercantile.tile(lon, lat, ZOOMS[-1])
        w.tile_array(d.z, d.x, d.y)
        for z in ZOOMS:
            t = mercantile.tile(lon, lat, z)
            tiles[f"{key}/{z}"] = w.tile_array(z, t.x, t.y)
        print(key, f"{time.perf_counter() - t0:.0f} s", flush=True)
    np.savez(out, **tiles)


def compose(before: str, after: str, name: str = "perf") -> None:
    from common import IMG
    from PIL import Image

    a, b = np.load(before), np.load(after)
    places = sorted({k.split("/")[0] for k in a.files} & {k.split("/")[0] for k in b.files})
    stats = {}

    def pad(x: np.ndarray) -> np.ndarray:
        return np.pad(x, ((3, 3), (3, 3), (0, 0)), constant_values=255)

    for p in places:
        rows: list[list[np.ndarray]] = [[], [], []]
        for z in ZOOMS:
            x, y = a[f"{p}/{z}"], b[f"{p}/{z}"]
            d = np.abs(x.astype(np.int16) - y.astype(np.int16)).max(-1)
            stats[f"{p}/{z}"] = {"max": int(d.max()), "changed_px": int((d > 0).sum())}
            diff = np.clip(d * 20, 0, 255).astype(np.uint8)[..., None].repeat(3, -1)
            for row, img in zip(rows, (x, y, diff), strict=True):
                row.append(pad(img))
        strip = np.concatenate([np.concatenate(r, 1) for r in rows], 0)
        Image.fromarray(strip).save(IMG / "deep" / f"{name}-{p}.jpg", quality=85)
    print(json.dumps(stats))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("root")
    r.add_argument("out")
    r.add_argument("--places", default="po,paris,como,alps,fjord,sahara")
    c = sub.add_parser("compose")
    c.add_argument("before")
    c.add_argument("after")
    c.add_argument("--name", default="perf", help="file prefix: docs/img/deep/NAME-{place}.jpg")
    args = ap.parse_args()
    if args.cmd == "render":
        render(args.root, args.out, args.places)
    else:
        compose(args.before, args.after, args.name)


if __name__ == "__main__":
    main()
