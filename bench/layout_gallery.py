"""Gallery of the layout beside the imagery (issue 13): farmland, a village, a city and a
mountain valley in both worlds at z12, z14, z16 and z17.

    OMP_NUM_THREADS=1 .venv/bin/python bench/layout_gallery.py [--model builtin] [--cache DIR]

For each place a 2 × 4 picture, ``docs/img/layout/gallery-{world}-{place}.jpg``: the layout
(legend colours, boundaries darkened, as ``bench/layout.py`` draws it) above the imagery of
the same tile, z12, z14, z16, z17 left to right. Cold deep tiles are slow on a small CPU (a z17
cone is minutes), so every tile is kept as a PNG under ``--cache`` (default
``/tmp/layout_gallery``) and reused; the deepest zoom is rendered first, its cone caching the
coarser levels in the world's store.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import morecantile
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from layout import EARTH, colour, near_site  # noqa: E402

from generator.geography.grid import tile_rect  # noqa: E402
from generator.geography.layout import layout_of  # noqa: E402

TMS = morecantile.tms.get("WebMercatorQuad")
ZOOMS = (17, 16, 14, 12)
IMG = ROOT / "docs" / "img" / "layout"


def places(world: str, lay) -> dict[str, tuple[float, float]]:
    """Return the gallery's four places of a world: slug → (lon, lat)."""
    if world == "earth":
        e = {what: (lon, lat) for what, lon, lat in EARTH.values()}
        return {
            "farmland": e["farmland"],  # the Po valley (the first farmland of EARTH)
            "village": near_site(lay, 13, 11.35, 48.25),
            "city": e["city"],
            "valley": (11.45, 47.28),  # the Inn valley at Innsbruck (the served seed's town)
        }
    # the served planet (seed 7): the densest cropland of its z4 land cover (farmland), the
    # lattice-11 town and lattice-13 village nearest to it, and a village in the roughest
    # cropland (found once from the z4 land cover and elevation)
    return {
        "farmland": (148.93, 23.685),
        "village": near_site(lay, 13, 149.2, 23.685),
        "city": near_site(lay, 11, 148.93, 23.685),
        "valley": near_site(lay, 13, -169.233, -23.524),
    }


def main() -> None:
    """Render (or reuse) every tile, compose and save the pictures."""
    from generator.world import World, load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/layout_gallery"))
    ap.add_argument("--worlds", default="earth,planet")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    IMG.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model)
    for world in args.worlds.split(","):
        w = World.load(world, model=model)
        lay = layout_of(w.geography)  # the world's own geography (its seed and config)
        for slug, (lon, lat) in places(world, lay).items():
            rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
            for z in ZOOMS:
                t = TMS.tile(lon, lat, z)
                img_p = args.cache / f"{world}_{slug}_z{z}_img.png"
                if img_p.exists():
                    rgb = np.asarray(Image.open(img_p).convert("RGB"))
                else:
                    rgb = w.tile_array(z, t.x, t.y)
                    Image.fromarray(rgb).save(img_p)
                lay_rgb = colour(lay.channels(z, tile_rect(z, t.x, t.y)))
                Image.fromarray(lay_rgb).save(args.cache / f"{world}_{slug}_z{z}_layout.png")
                rows[z] = (lay_rgb, rgb)
                print(world, slug, z, flush=True)
            pic = np.full((2 * 256 + 4, 4 * 256 + 3 * 4, 3), 255, np.uint8)
            for i, z in enumerate(sorted(rows)):
                pic[:256, i * 260 : i * 260 + 256] = rows[z][0]
                pic[260:, i * 260 : i * 260 + 256] = rows[z][1]
            Image.fromarray(pic).save(IMG / f"gallery-{world}-{slug}.jpg", quality=82)


if __name__ == "__main__":
    main()
