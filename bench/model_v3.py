"""Model v3 beside v2 in `earth`: eight places, seams over flat ground and coasts, speed.

    OMP_NUM_THREADS=2 .venv/bin/python bench/model_v3.py [--models v2=builtin,v3=PATH]
        [--parts gallery,seams,speed] [--places po,paris,...]

1. **gallery**: for each place the z17 tile over it is rendered cold (its whole cone from the
   base: seconds and model evaluations recorded), then the z8, z11 and z14 tiles over the same
   point (in that cone). One strip per place, ``docs/img/v3/{place}.jpg``: a row per model,
   columns z8, z11, z14, z17, and after the last model's tiles a contrast-stretched copy (×3
   around its mean) so tile grids in flat ground show.
2. **seams**: a 4×4 block of tiles at ``--seam-zoom`` (default z12, 7–8 levels below the base)
   over open sea, desert, an ice sheet, snow-covered mountains, a coastline, farmland and a
   town: :func:`generator.metrics.seam_ratio` (target 0.85–1.2),
   :func:`~generator.metrics.strip_ratio` (≤ 1.3) and the parent PSNR of the four 2×2 parents
   (:func:`~generator.metrics.parent_psnr`, ≥ 33 dB). Mosaics (plain and stretched) go to
   ``docs/img/v3/seams-*.jpg``.
3. **speed**: a cold deep link at z18 over the Po valley (fresh in-memory cache: every level
   from the base, layers included; the data indices loaded first, as in a running server),
   then panning: eight new z18 tiles beside it, each with its
   parents mostly cached, timed one by one; with the model evaluations each took.

Every model gets its own fresh cache, so no figure reuses another model's tiles. Writes
``bench/results/model_v3.json``.
"""

from __future__ import annotations

import argparse
import time

import mercantile
import numpy as np
from common import IMG, block_parent_psnrs, save
from PIL import Image

from generator import metrics
from generator.world import World, load_model

PLACES = {
    "po": ("the Po valley (farmland)", 10.2, 45.05),
    "paris": ("Paris", 2.35, 48.86),
    "como": ("Lake Como", 9.26, 46.0),
    "alps": ("the Bernese Alps", 7.9, 46.5),
    "nile": ("the Nile delta", 31.0, 30.8),
    "sahara": ("the Sahara", 5.5, 25.0),
    "fjord": ("the Sognefjord", 6.75, 61.17),
    "forest": ("the Landes forest", -0.9, 44.5),
}
ZOOMS = (8, 11, 14, 17)
BLOCKS = {
    "sea": ("open Atlantic", -30.0, 40.0),
    "desert": ("the Sahara", 5.5, 25.0),
    "ice": ("the Greenland ice sheet", -40.0, 72.0),
    "snow": ("the Bernese Alps", 7.9, 46.5),
    "coast": ("the coast of Brittany", -4.5, 48.45),
    "farmland": ("the Po valley", 10.2, 45.05),
    "town": ("Paris", 2.35, 48.86),
}


def stretch(a: np.ndarray, k: float = 3.0) -> np.ndarray:
    """Return the image with its contrast stretched ×k around its mean (seams show)."""
    f = a.astype(np.float32)
    return np.clip((f - f.mean((0, 1))) * k + 128.0, 0, 255).astype(np.uint8)


def _evals(w: World) -> int:
    return int(w.pyramid.stats.snapshot()["model_evals"])


def gallery(worlds: dict[str, World], places: list[str]) -> dict:
    """Render the strips; return cold seconds and model evaluations per place and model."""
    out_dir = IMG / "v3"
    out_dir.mkdir(parents=True, exist_ok=True)
    res: dict = {}
    for key in places:
        _, lon, lat = PLACES[key]
        rows = []
        for label, w in worlds.items():
            e0, t0 = _evals(w), time.perf_counter()
            deep = mercantile.tile(lon, lat, ZOOMS[-1])
            w.tile_array(deep.z, deep.x, deep.y)
            secs = time.perf_counter() - t0
            row = [w.tile_array(z, *mercantile.tile(lon, lat, z)[:2]) for z in ZOOMS]
            res.setdefault(key, {})[label] = {
                "z17_cold_s": round(secs, 1),
                "model_evals": _evals(w) - e0,
            }
            print(f"{key} {label}: {secs:.0f} s", flush=True)
            rows.append(row)
        rows[-1] = rows[-1] + [stretch(rows[-1][-1])]
        blank = np.full((256, 256, 3), 255, np.uint8)
        rows = [r + [blank] * (len(rows[-1]) - len(r)) for r in rows]
        strip = np.concatenate(
            [
                np.concatenate(
                    [np.pad(a, ((3, 3), (3, 3), (0, 0)), constant_values=255) for a in r], 1
                )
                for r in rows
            ],
            0,
        )
        Image.fromarray(strip).save(out_dir / f"{key}.jpg", quality=85)
    return res


def seams(worlds: dict[str, World], z: int) -> dict:
    """Seam, strip and parent figures of a 4×4 block over each of :data:`BLOCKS`."""
    res: dict = {}
    for key, (_, lon, lat) in BLOCKS.items():
        t = mercantile.tile(lon, lat, z)
        x0, y0 = t.x // 2 * 2 - 2, t.y // 2 * 2 - 2  # even: the 2×2 parents are whole
        for label, w in worlds.items():
            t0 = time.perf_counter()
            grid = [[w.tile_array(z, x0 + i, y0 + j) for i in range(4)] for j in range(4)]
            m = metrics.mosaic(grid)
            psnrs = block_parent_psnrs(w, z, x0, y0, m)
            res.setdefault(key, {})[label] = {
                "block": f"z{z} x{x0}-{x0 + 3} y{y0}-{y0 + 3}",
                "seam_ratio": round(metrics.seam_ratio(m), 3),
                "strip_ratio": round(metrics.strip_ratio(m), 3),
                "parent_psnr_min": round(min(psnrs), 2),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print(key, label, res[key][label], flush=True)
            small = np.asarray(Image.fromarray(m).resize((512, 512), Image.Resampling.BOX))
            pair = np.concatenate([small, stretch(small)], 1)
            Image.fromarray(pair).save(IMG / "v3" / f"seams-{key}-{label}.jpg", quality=85)
    return res


def speed(worlds: dict[str, World]) -> dict:
    """Cold z18 deep link over the Po valley, then eight panned z18 tiles beside it."""
    res: dict = {}
    lon, lat = 10.2, 45.05
    for label, w in worlds.items():
        if w.geography is not None:  # data indices loaded first, as a running server has them
            for name in ("water", "rivers", "elevation", "landcover"):
                w.geography.tile(name, 8, 120, 60)  # the Norwegian Sea, far from the Po
        t = mercantile.tile(lon, lat, 18)
        e0, t0 = _evals(w), time.perf_counter()
        w.tile_array(18, t.x, t.y)
        cold = time.perf_counter() - t0
        evals = _evals(w) - e0
        pans = []
        for dx in range(1, 9):  # eastward: each new tile's parents are mostly cached
            e1, t1 = _evals(w), time.perf_counter()
            w.tile_array(18, t.x + dx, t.y)
            pans.append((time.perf_counter() - t1, _evals(w) - e1))
        res[label] = {
            "z18_cold_s": round(cold, 1),
            "z18_cold_model_evals": evals,
            "pan_s": [round(s, 2) for s, _ in pans],
            "pan_median_s": round(float(np.median([s for s, _ in pans])), 2),
            "pan_model_evals": [e for _, e in pans],
        }
        print(label, res[label], flush=True)
    return res


def main() -> None:
    """Measure, print and save."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="v2=builtin,v3=generator/weights/orbis-sr-v3")
    ap.add_argument("--parts", default="gallery,seams,speed")
    ap.add_argument("--places", default=",".join(PLACES))
    ap.add_argument("--seam-zoom", type=int, default=12)
    ap.add_argument("--out", default="model_v3")
    args = ap.parse_args()
    models = dict(kv.split("=", 1) for kv in args.models.split(","))
    parts = args.parts.split(",")
    result: dict = {"models": models}
    t0 = time.perf_counter()

    def fresh() -> dict[str, World]:
        return {label: World.load("earth", model=load_model(p)) for label, p in models.items()}

    if "speed" in parts:  # first, on fresh caches
        result["speed"] = speed(fresh())
    if "gallery" in parts:
        result["gallery"] = gallery(fresh(), args.places.split(","))
    if "seams" in parts:
        result["seams"] = seams(fresh(), args.seam_zoom)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(save(args.out, result))


if __name__ == "__main__":
    main()
