"""Copy Marble's level-3 ``srtm`` relief tiles into the repository (run once by a developer).

The ``earth`` elevation layer reads a global 2′ grey-coded relief (SRTM30 on land, bathymetry at
sea) that Marble ships in the Debian package ``marble-qt-data``:
``usr/share/marble/data/maps/earth/srtm/3/<row>/<row>_<col>.jpg``, 8 × 16 tiles of 675 px in plate
carrée (10800 × 5400 px, 2′ per pixel). The original JPEG tiles are the smallest honest form of
that grid (2.6 MB; re-encoding them as PNG would be ~8× bigger and an int16 PNG bigger still, and
any re-compression would add a second loss), so they are copied byte for byte; the grey → metre
calibration lives in :mod:`.relief`.

Usage::

    python -m generator.geography.build_relief --deb /path/to/marble-qt-data_*.deb
    python -m generator.geography.build_relief --marble-dir /usr/share/marble/data

    python -m generator.geography.build_relief --deb /path/to/marble-qt-data_*.deb --calibrate

The last fits the metre values of the legend stops against Marble's exact-metre ``srtm2`` layer
(see :func:`calibrate`). The ``.deb`` is read with ``dpkg-deb --fsys-tarfile`` (Debian's own
tool), the tar with :mod:`tarfile`.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Where the tiles go: ``generator/data/relief/srtm3``.
DEST = Path(__file__).resolve().parent.parent / "data" / "relief" / "srtm3"
LEVEL = 3
ROWS, COLS = 8, 16
_MEMBER = "usr/share/marble/data/maps/earth/srtm/3/{r:06d}/{r:06d}_{c:06d}.jpg"


def tile_name(row: int, col: int) -> str:
    """Return the committed file name of tile (row, col)."""
    return f"{row:06d}_{col:06d}.jpg"


def _from_deb(deb: Path) -> dict[str, bytes]:
    """Return the level-3 tiles' bytes from a ``marble-qt-data`` .deb."""
    tar_bytes = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True
    ).stdout
    wanted = {_MEMBER.format(r=r, c=c): tile_name(r, c) for r in range(ROWS) for c in range(COLS)}
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for member in tar.getmembers():
            name = member.name.lstrip("./")
            if name in wanted:
                f = tar.extractfile(member)
                if f is not None:
                    out[wanted[name]] = f.read()
    return out


def _from_dir(marble_data: Path) -> dict[str, bytes]:
    """Return the tiles' bytes from an installed Marble data folder (``.../marble/data``)."""
    base = marble_data / "maps" / "earth" / "srtm" / str(LEVEL)
    return {
        tile_name(r, c): (base / f"{r:06d}" / tile_name(r, c)).read_bytes()
        for r in range(ROWS)
        for c in range(COLS)
    }


def build(tiles: dict[str, bytes], dest: Path = DEST) -> dict[str, str]:
    """Write the tiles and a ``SHA256SUMS.json`` manifest to ``dest``; return the manifest."""
    missing = [
        tile_name(r, c) for r in range(ROWS) for c in range(COLS) if tile_name(r, c) not in tiles
    ]
    if missing:
        raise FileNotFoundError(f"{len(missing)} level-3 tiles missing, e.g. {missing[0]}")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    manifest = {}
    for name in sorted(tiles):
        (dest / name).write_bytes(tiles[name])
        manifest[name] = hashlib.sha256(tiles[name]).hexdigest()
    (dest / "SHA256SUMS.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    log.info("wrote %d tiles to %s", len(tiles), dest)
    return manifest


def _srtm2_level0(deb: Path) -> np.ndarray:
    """Return Marble's ``srtm2`` level 0 (exact metres, 16′, int16; −32768 = no data)."""
    from PIL import Image

    tar_bytes = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True
    ).stdout
    parts = []
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for c in (0, 1):
            name = f"./usr/share/marble/data/maps/earth/srtm2/0/000000/000000_{c:06d}.png"
            f = tar.extractfile(name)
            assert f is not None
            with Image.open(io.BytesIO(f.read())) as im:
                parts.append(np.asarray(im.convert("RGB")).astype(np.int32))
    rgb = np.concatenate(parts, axis=1)
    # Marble's ElevationModel: the low 16 bits of the pixel (green·256 + blue), signed
    return (rgb[..., 1] * 256 + rgb[..., 2]).astype(np.uint16).view(np.int16)


def calibrate(deb: Path) -> dict[str, object]:
    """Fit the metre value of the legend stops ≥ 1000 m against ``srtm2`` (least squares).

    Each srtm2 cell (16′, exact metres, SRTM land only) is compared with the mean over its
    8 × 8 block of 2′ cells of the piecewise-linear calibration; the model is linear in the knot
    values, so this is an ordinary least-squares fit. Returns the fitted knots and the errors.
    """
    from scipy.ndimage import minimum_filter

    from . import relief

    ref = _srtm2_level0(deb).astype(np.float64)
    grey = relief.decode_grey().astype(np.float64)
    rows, cols = ref.shape
    valid = (minimum_filter(ref, 3) > -1000) & (ref < 9000) & (ref != 0)

    def block(a: np.ndarray) -> np.ndarray:
        return a.reshape(rows, 8, cols, 8).mean((1, 3))

    knots, values = relief.GREY_KNOTS, relief.METRE_KNOTS.copy()
    free = [i for i, g in enumerate(knots) if 178 <= g < 250]  # no grey ≥ 248 exists
    values[free] = 0.0
    base = block(np.interp(grey, knots, values))[valid]
    cols_ = []
    for i in free:
        e = np.zeros_like(values)
        e[i] = 1.0
        cols_.append(block(np.interp(grey, knots, e))[valid])
    sol, *_ = np.linalg.lstsq(np.stack(cols_, 1), ref[valid] - base, rcond=None)
    values[free] = sol
    err = block(np.interp(grey, knots, values))[valid] - ref[valid]
    return {
        "fitted": {f"{knots[i]:.2f}": round(float(v)) for i, v in zip(free, sol, strict=True)},
        "cells": int(valid.sum()),
        "bias_m": float(err.mean()),
        "rms_m": float(np.sqrt((err**2).mean())),
        "median_abs_m": float(np.median(np.abs(err))),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: copy the tiles from a .deb or an installed Marble data folder."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--deb", type=Path, help="marble-qt-data .deb")
    src.add_argument(
        "--marble-dir", type=Path, help="installed Marble data, /usr/share/marble/data"
    )
    ap.add_argument("--dest", type=Path, default=DEST)
    ap.add_argument("--calibrate", action="store_true", help="fit the knots against srtm2 (--deb)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if args.calibrate:
        print(json.dumps(calibrate(args.deb), indent=1))
        return
    tiles = _from_deb(args.deb) if args.deb else _from_dir(args.marble_dir)
    build(tiles, args.dest)


if __name__ == "__main__":
    main()
