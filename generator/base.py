"""Base levels: the imagery the cascade starts from.

* :class:`BlueMarbleBase` reprojects NASA Blue Marble (plate carrée) to Web Mercator tiles at the
  base zoom, with pyproj for the inverse projection and bilinear sampling, x wrapping.
* :class:`ContinentsBase` synthesises a whole base level from the seed: two periodic fractal
  fields (spectral synthesis, so the map wraps across the antimeridian by construction) give
  elevation and moisture, coloured with a palette measured on Blue Marble (ocean, shallows,
  forest, grassland, desert, ice).

Both are pure functions of (config, seed); the white noise of the planet comes from the global
:class:`~generator.noise.NoiseField` at a zoom index reserved for it.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import NamedTuple, Protocol

import numpy as np
import scipy.fft
from pyproj import Transformer
from scipy.ndimage import map_coordinates

from . import tiles
from .imagery import blue_marble
from .noise import NoiseField, clear_block_cache


class BaseLevel(Protocol):
    """Makes uint8 (256, 256, 3) tiles at its own zoom."""

    zoom: int

    def tile(self, x: int, y: int) -> np.ndarray:
        """Return the base tile at (x, y) of zoom ``self.zoom``."""
        ...


def _tile_lonlat(z: int, x: int, y: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return lon/lat (degrees) of the pixel centres of a tile (pyproj, EPSG:3857 → 4326)."""
    b = tiles.tms().xy_bounds(x, y, z)
    step = (b.right - b.left) / size
    xs = b.left + (np.arange(size) + 0.5) * step
    ys = b.top - (np.arange(size) + 0.5) * step
    mx, my = np.meshgrid(xs, ys)
    lon, lat = _to_lonlat().transform(mx, my)
    return np.asarray(lon), np.asarray(lat)


_transformer_lock = threading.Lock()
_transformer: Transformer | None = None


def _to_lonlat() -> Transformer:
    global _transformer
    with _transformer_lock:
        if _transformer is None:
            _transformer = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
        return _transformer


class BlueMarbleBase:
    """Blue Marble reprojected to Web Mercator at one zoom level."""

    def __init__(self, zoom: int, tile_size: int = 256) -> None:
        self.zoom = zoom
        self.tile_size = tile_size

    @cached_property
    def _padded(self) -> np.ndarray:
        # two wrapped columns each side, two replicated rows top and bottom
        img = blue_marble().astype(np.float32)
        img = np.concatenate([img[:, -2:], img, img[:, :2]], axis=1)
        return np.pad(img, ((2, 2), (0, 0), (0, 0)), mode="edge")

    def tile(self, x: int, y: int) -> np.ndarray:
        """Return the reprojected tile (uint8, H×W×3)."""
        lon, lat = _tile_lonlat(self.zoom, x, y, self.tile_size)
        h, w = blue_marble().shape[:2]
        col = ((lon + 180.0) / 360.0 * w - 0.5) % w + 2
        row = (90.0 - lat) / 180.0 * h - 0.5 + 2
        out = np.empty((self.tile_size, self.tile_size, 3), dtype=np.float32)
        for c in range(3):
            out[..., c] = map_coordinates(self._padded[..., c], [row, col], order=1, mode="nearest")
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# Palette measured on Blue Marble (mean RGB of typical regions).
_DEEP = np.array([4, 11, 32], np.float32)
_SHALLOW = np.array([27, 69, 121], np.float32)
_FOREST = np.array([22, 35, 9], np.float32)
_GRASS = np.array([57, 65, 29], np.float32)
_DESERT = np.array([180, 146, 108], np.float32)
_ROCK = np.array([110, 100, 85], np.float32)
_ICE = np.array([245, 247, 250], np.float32)


class ContinentsFields(NamedTuple):
    """The float fields of a continent map on the base zoom's pixel grid (N×N, float32)."""

    #: normalised height; sea where < 0
    height: np.ndarray
    #: moisture as the palette sees it (moisture + detail)
    moisture: np.ndarray
    #: |latitude| in degrees of each row, (N, 1)
    alat: np.ndarray


class ContinentsBase:
    """A seeded continent map, made once for the whole base level and cut into tiles."""

    #: zoom index of the noise field reserved for the planet's base (never a real zoom)
    NOISE_Z = 1000

    def __init__(self, seed: int, zoom: int, tile_size: int = 256) -> None:
        self.seed = seed
        self.zoom = zoom
        self.tile_size = tile_size
        self._lock = threading.Lock()
        self._image: np.ndarray | None = None
        self._fields: ContinentsFields | None = None
        self._fields_lock = threading.Lock()

    def _fractal(self, channel_noise: np.ndarray, beta: float) -> np.ndarray:
        n = channel_noise.shape[0]
        spec = scipy.fft.rfft2(channel_noise)
        fy = np.fft.fftfreq(n).astype(np.float32)[:, None]
        fx = np.fft.rfftfreq(n).astype(np.float32)[None, :]
        f = np.sqrt(fx**2 + fy**2)
        f[0, 0] = 1.0
        amp = f ** (-beta / 2)
        amp[0, 0] = 0.0
        field = scipy.fft.irfft2(spec * amp, s=(n, n)).astype(np.float32)
        return (field - field.mean()) / (field.std() + 1e-8)

    def image(self) -> np.ndarray:
        """Return the whole base level (uint8, N×N×3), computed once."""
        with self._lock:
            if self._image is None:
                self._image = self._make()
            return self._image

    def fields(self) -> ContinentsFields:
        """Return the float fields the palette colours (computed once, shared with the image).

        The ``planet`` geography reads them so that its coasts, ice and deserts are the ones
        this base level shows (sea where ``height < 0``).
        """
        with self._fields_lock:
            if self._fields is None:
                self._fields = self._make_fields()
            return self._fields

    def _make_fields(self) -> ContinentsFields:
        n = (1 << self.zoom) * self.tile_size
        noise = NoiseField(self.seed).crop(self.NOISE_Z + self.zoom, 0, 0, n, n, channels=3)
        clear_block_cache()
        elev = self._fractal(noise[0], beta=3.4)
        moist = self._fractal(noise[1], beta=2.8)
        detail = self._fractal(noise[2], beta=2.0)
        _, lat = _to_lonlat().transform(
            np.zeros(n), tiles.tms().xy_bounds(0, 0, 0).top * (1 - 2 * (np.arange(n) + 0.5) / n)
        )
        alat = np.abs(np.asarray(lat, np.float32))[:, None]
        height = elev + 0.1 * detail - 0.25  # ≈ 40 % land
        return ContinentsFields(height, moist + 0.2 * detail, alat)

    def _make(self) -> np.ndarray:
        f = self.fields()
        rgb = self._colour(f.height, f.moisture, f.alat)
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)

    @staticmethod
    def _colour(height: np.ndarray, moist: np.ndarray, alat: np.ndarray) -> np.ndarray:
        sea = height < 0
        depth = np.clip(-height / 0.35, 0, 1)[..., None] ** 0.5
        water = _SHALLOW * (1 - depth) + _DEEP * depth
        # land: wet → forest, mid → grass, dry → desert; subtropics drier; high ground rocky
        dryness = np.clip(0.38 - 0.35 * moist + 0.2 * np.exp(-(((alat - 25) / 12) ** 2)), 0, 1)
        dryness = dryness[..., None]
        veg = _FOREST * np.clip(1 - 2 * dryness, 0, 1) + _GRASS * (1 - np.abs(2 * dryness - 1))
        land = veg + _DESERT * np.clip(2 * dryness - 1, 0, 1)
        rock = np.clip((height - 1.8) / 0.8, 0, 1)[..., None]
        land = land * (1 - rock) + _ROCK * rock
        rgb = np.where(sea[..., None], water, land)
        ice = np.clip((alat - 74 + 4 * height) / 4, 0, 1)[..., None]
        return rgb * (1 - ice) + _ICE * ice

    def tile(self, x: int, y: int) -> np.ndarray:
        """Return one base tile (a crop of the whole level)."""
        s = self.tile_size
        return np.ascontiguousarray(self.image()[y * s : (y + 1) * s, x * s : (x + 1) * s])
