"""Before/after strips of two painter versions from ``bench/layout_seams.py``'s mosaics.

    .venv/bin/python bench/paint_compare.py --png DIR --before paint5 --after paint9 \
        [--blocks po_z12,po_z14,po_z16,delaware_z16] [--crop 512]

``bench/layout_seams.py --label L --png DIR`` writes each block's 1024² mosaic as
``seams_L_<place>_z<z>.png`` (and ``_s`` contrast-stretched). For each block this writes
``docs/img/paint/<before>-<after>-<place>_z<z>.jpg``: the central ``--crop`` pixels of the
*before* mosaic, of the *after* one, and of the *after* one with the contrast stretched
(2–98 %, where seams and staircases show), side by side at full resolution.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import IMG
from PIL import Image


def crop(path: Path, size: int) -> np.ndarray:
    """Return the central size² pixels of a mosaic."""
    a = np.asarray(Image.open(path).convert("RGB"))
    y0, x0 = (a.shape[0] - size) // 2, (a.shape[1] - size) // 2
    return a[y0 : y0 + size, x0 : x0 + size]


def main() -> None:
    """Compose and save the strips."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--png", type=Path, required=True)
    ap.add_argument("--before", default="paint5")
    ap.add_argument("--after", default="paint9")
    ap.add_argument("--blocks", default="po_z12,po_z14,po_z16,delaware_z16")
    ap.add_argument("--crop", type=int, default=512)
    args = ap.parse_args()
    out = IMG / "paint"
    out.mkdir(parents=True, exist_ok=True)
    for b in args.blocks.split(","):
        before = crop(args.png / f"seams_{args.before}_{b}.png", args.crop)
        after = crop(args.png / f"seams_{args.after}_{b}.png", args.crop)
        stretched = crop(args.png / f"seams_{args.after}_{b}_s.png", args.crop)
        gap = np.full((args.crop, 8, 3), 255, np.uint8)
        strip = np.concatenate([before, gap, after, gap, stretched], axis=1)
        path = out / f"{args.before}-{args.after}-{b}.jpg"
        Image.fromarray(strip).save(path, quality=85, optimize=True)
        print(path)


if __name__ == "__main__":
    main()
