"""The packaged 2′ global relief grid in metres, sampled smoothly at any longitude/latitude.

Source: Marble's level-3 ``srtm`` tiles (SRTM30 heights on land, bathymetry at sea; committed
under ``generator/data/relief/srtm3`` by :mod:`.build_relief`), 10800 × 5400 px of plate carrée,
each pixel a grey value 0..255. Marble colours them with its ``seacolors.leg``/``landcolors.leg``
gradients, whose stops the ``srtm.dgml`` legend labels in metres (grey/255 = 0.38 is sea level,
0.45 → 50 m, 0.52 → 200 m, …, 0.07 → −6500 m, 0 → −11000 m): one monotone piecewise-linear
scale, below 0.38 for the sea floor and for land depressions alike (the Caspian reads −28 m).
Those stops are the calibration (:data:`GREY_KNOTS` → :data:`METRE_KNOTS`); the stops from
1000 m up are refined by least squares against Marble's exact-metre ``srtm2`` layer (16′, land
only; ``python -m generator.geography.build_relief --calibrate``), which moved them by ≤ 8 %.

The decoded grid (JPEG block edges smoothed, :func:`deblock`; int16 metres) and its box-filtered
mip levels are built once into
:func:`~.source.data_cache_dir`, keyed by the tiles' digest and :data:`CALIBRATION_VERSION`, and
memory-mapped, so every process shares one copy in the page cache. :func:`sample` interpolates
with Catmull-Rom (C¹, interpolating: hillshade shows no bilinear facets at z14) on the mip level
matching the caller's pixel size, so a coarse zoom reads the area mean of the grid, not aliases.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .source import data_cache_dir

log = logging.getLogger(__name__)

#: Committed Marble level-3 tiles (see :mod:`.build_relief`).
TILES_DIR = Path(__file__).resolve().parent.parent / "data" / "relief" / "srtm3"
ROWS, COLS, TILE = 8, 16, 675
#: Grid size (rows, columns) and cells per degree.
HEIGHT, WIDTH = ROWS * TILE, COLS * TILE
PER_DEGREE = WIDTH / 360.0

#: Grey levels of the legend stops (fractions of 255 in Marble's .leg palettes) …
GREY_KNOTS = (
    np.array(
        [0, 0.07, 0.14, 0.21, 0.28, 0.31, 0.38, 0.45, 0.52, 0.59, 0.70, 0.77, 0.83, 0.90, 0.95, 1.0]
    )
    * 255.0
)
#: … and their heights in metres: the srtm.dgml legend, the stops from 1000 m up refined against
#: srtm2 (legend 1000/2000/3500/5000/7000 → 1038/2167/3533/5026/7091), the last stop extrapolated.
METRE_KNOTS = np.array(
    [-11000, -6500, -4000, -2000, -200, -50, 0, 50, 200, 500, 1038, 2167, 3533, 5026, 7091, 9156],
    dtype=np.float64,
)
#: Bump when the calibration or the derived grids change (part of the layer identity).
CALIBRATION_VERSION = "4"
#: Mip levels kept: level k is the grid box-averaged over 2**k × 2**k cells (2′ · 2**k; 5400 rows
#: = 2**3 · 675 allow three exact halvings).
MIP_LEVELS = 4


def grey_to_metres(grey: np.ndarray) -> np.ndarray:
    """Return metres for Marble srtm grey values (0..255, any shape), float32."""
    return np.interp(np.asarray(grey, np.float64), GREY_KNOTS, METRE_KNOTS).astype(np.float32)


def tiles_digest() -> str:
    """Return a digest of the committed tiles (their SHA-256 manifest) and the calibration."""
    manifest = (TILES_DIR / "SHA256SUMS.json").read_bytes()
    h = hashlib.sha256(manifest)
    h.update(CALIBRATION_VERSION.encode())
    h.update(METRE_KNOTS.tobytes())
    return h.hexdigest()[:16]


def decode_grey() -> np.ndarray:
    """Return the mosaic of the committed tiles as uint8 grey (5400, 10800), north row first."""
    from PIL import Image

    out = np.empty((HEIGHT, WIDTH), np.uint8)
    for r in range(ROWS):
        for c in range(COLS):
            with Image.open(TILES_DIR / f"{r:06d}_{c:06d}.jpg") as im:
                out[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = np.asarray(
                    im.convert("L")
                )
    return out


def deblock(grey: np.ndarray, limit: float = 4.0) -> np.ndarray:
    """Return the grey mosaic with the JPEG's 8 × 8 block steps spread out (float32).

    At each block edge the step beyond the mean gradient on either side, if at most ``limit``
    grey levels (quantisation offsets, not terrain), is removed by ramps over the 4 pixels on
    each side (½, ⅜, ¼, ⅛ of it) — without it the flat Sahara and the sea floor show 16′
    squares in hillshade.
    """
    g = grey.astype(np.float32)
    ramp = np.array([0.5, 0.375, 0.25, 0.125], np.float32)
    for axis in (1, 0):
        a = np.moveaxis(g, axis, 0)  # view: edges along the first axis
        n = a.shape[0]
        e = np.arange(8, n - 2, 8)
        step = a[e] - a[e - 1]
        slope = 0.5 * ((a[e - 1] - a[e - 2]) + (a[e + 1] - a[e]))
        d = step - slope
        d = np.where(np.abs(d) <= limit, d, 0.0).astype(np.float32)
        for i, w in enumerate(ramp):
            a[e - 1 - i] += w * d
            a[np.minimum(e + i, n - 1)] -= w * d
    return g


@dataclass(frozen=True)
class ReliefGrid:
    """The decoded grid: ``mips[k]`` int16 metres at 2′·2**k, ``roughness`` float32 at 8′,
    ``low`` int16 the 2′ grid's minimum over 3 × 3 cells (a lake's surface up to its shore),
    ``depression`` bit-packed 2′ mask of cells below sea level not connected to the ocean."""

    digest: str
    mips: tuple[np.ndarray, ...]
    roughness: np.ndarray
    low: np.ndarray
    depression: np.ndarray


_lock = threading.Lock()
_grid: ReliefGrid | None = None


def _atomic_save(path: Path, arr: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, arr)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _build(folder: Path) -> None:
    from scipy.ndimage import gaussian_filter, label, minimum_filter

    log.info("decoding the relief grid into %s", folder)
    folder.mkdir(parents=True, exist_ok=True)
    metres = grey_to_metres(deblock(decode_grey()))
    level = metres
    for k in range(MIP_LEVELS):
        if k:
            h, w = level.shape
            level = level.reshape(h // 2, 2, w // 2, 2).mean((1, 3), dtype=np.float32)
        _atomic_save(folder / f"mip{k}.npy", np.round(level).astype(np.int16))
    # depressions: connected areas below 0 m that are not the ocean;
    # the ocean's components, which the labelling splits at ±180°, are recognised by points in
    # every basin; a depression's component must reach −15 m (shallower "basins" are the JPEG's
    # ±2 grey noise on flat deltas), and within it only cells below −2 m count
    below, count = label(metres < 0.0, structure=np.ones((3, 3), bool))
    ocean_ids = {int(below[_cell(lon, lat)]) for lon, lat in OCEAN_POINTS} - {0}
    from scipy.ndimage import minimum as label_minimum

    lows = np.asarray(label_minimum(metres, below, np.arange(1, count + 1)))
    keep = np.zeros(count + 1, bool)
    keep[1:] = lows <= -15.0
    keep[list(ocean_ids)] = False
    depression = keep[below] & (metres < -2.0)
    del below
    _atomic_save(folder / "depression.npy", np.packbits(depression, axis=1))
    del depression
    low = minimum_filter(metres, 3, mode="wrap")
    _atomic_save(folder / "low.npy", np.round(low).astype(np.int16))
    del low
    # roughness: RMS of the grid's own high-pass (what it resolves of relief at its finest
    # scale), which the sub-grid fractal detail extrapolates; box-reduced to 8′
    hp = metres - gaussian_filter(metres, 1.5, mode="wrap")
    rough = np.sqrt(gaussian_filter(hp * hp, 2.0, mode="wrap"))
    rough = rough.reshape(HEIGHT // 4, 4, WIDTH // 4, 4).mean((1, 3), dtype=np.float32)
    _atomic_save(folder / "roughness.npy", rough.astype(np.float32))


def _load(folder: Path) -> ReliefGrid:
    mips = tuple(np.load(folder / f"mip{k}.npy", mmap_mode="r") for k in range(MIP_LEVELS))
    rough = np.load(folder / "roughness.npy", mmap_mode="r")
    low = np.load(folder / "low.npy", mmap_mode="r")
    dep = np.load(folder / "depression.npy", mmap_mode="r")
    if (
        mips[0].shape != (HEIGHT, WIDTH)
        or low.shape != (HEIGHT, WIDTH)
        or rough.shape != (HEIGHT // 4, WIDTH // 4)
        or dep.shape != (HEIGHT, WIDTH // 8)
    ):
        raise ValueError("relief cache has the wrong shape")
    return ReliefGrid(folder.name, mips, rough, low, dep)


#: Points in every ocean basin (both sides of ±180°) that identify the ocean's components.
OCEAN_POINTS = (
    (-179.9, 0.0),
    (179.9, 0.0),
    (-150.0, 0.0),
    (-30.0, 30.0),
    (-30.0, -30.0),
    (80.0, -20.0),
    (0.0, 88.0),
    (0.0, -62.0),
    (-179.9, 60.0),
    (179.9, -60.0),
    (-179.9, -60.0),
    (179.9, 80.0),
    (-179.9, 80.0),
)


def _cell(lon: float, lat: float) -> tuple[int, int]:
    """Return the (row, column) of the 2′ cell containing a point."""
    c = int(np.floor((lon + 180.0) * PER_DEGREE)) % WIDTH
    r = int(np.clip(np.floor((90.0 - lat) * PER_DEGREE), 0, HEIGHT - 1))
    return r, c


def depression(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Return whether each cell of lon × lat lies in a land depression (nearest 2′ cell)."""
    d = grid().depression
    c = np.floor((np.asarray(lon, np.float64) + 180.0) * PER_DEGREE).astype(np.int64) % WIDTH
    r = np.clip(np.floor((90.0 - np.asarray(lat)) * PER_DEGREE).astype(np.int64), 0, HEIGHT - 1)
    packed = np.asarray(d[np.ix_(r, c // 8)])
    return ((packed >> (7 - (c % 8))[None, :]) & 1).astype(bool)


def grid() -> ReliefGrid:
    """Return the relief grid, building the cache on first use (thread-safe, once a process)."""
    global _grid
    if _grid is not None:
        return _grid
    with _lock:
        if _grid is None:
            folder = data_cache_dir() / f"relief-{tiles_digest()}"
            try:
                _grid = _load(folder)
            except (OSError, ValueError):
                _build(folder)
                _grid = _load(folder)
    return _grid


def _catmull_rom(t: np.ndarray) -> np.ndarray:
    """Return the 4 Catmull-Rom weights (4, n) of fractional offsets t in [0, 1)."""
    t2, t3 = t * t, t * t * t
    return np.stack(
        [
            0.5 * (-t3 + 2 * t2 - t),
            0.5 * (3 * t3 - 5 * t2 + 2),
            0.5 * (-3 * t3 + 4 * t2 + t),
            0.5 * (t3 - t2),
        ]
    ).astype(np.float32)


def mip_for_pixel(deg_per_pixel: float) -> int:
    """Return the mip level whose cell is at most one pixel of ``deg_per_pixel`` degrees."""
    ratio = deg_per_pixel * PER_DEGREE
    return int(np.clip(np.floor(np.log2(max(ratio, 1.0))), 0, MIP_LEVELS - 1))


def _axis(coord: np.ndarray, n: int, scale: float, origin: float, wrap: bool):
    f = (coord - origin) * scale - 0.5
    i = np.floor(f).astype(np.int64)
    w = _catmull_rom(f - i)
    idx = i[None, :] + np.arange(-1, 3)[:, None]
    idx = idx % n if wrap else np.clip(idx, 0, n - 1)
    return idx, w


def _matrix(idx: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (the distinct grid indices, an (n, k) float32 weight matrix) of a separable axis.

    ``idx``/``w`` are the (taps, n) indices and weights of n output samples; row i of the
    matrix holds sample i's weights on the distinct indices, so a separable interpolation of a
    grid block ``G`` (rows × columns) is ``Wy @ G @ Wx.T`` — a few small matrix products
    instead of taps² gathers per pixel (a 256-px tile at z14 spans one or two grid cells).
    """
    uniq, inv = np.unique(idx, return_inverse=True)
    m = np.zeros((idx.shape[1], len(uniq)), np.float32)
    cols = np.broadcast_to(np.arange(idx.shape[1]), idx.shape)
    np.add.at(m, (cols.ravel(), inv.ravel()), w.ravel().astype(np.float32))
    return uniq, m


#: Largest block (distinct rows × distinct columns) the matrix form of :func:`_separable`
#: reads; beyond it (a tile spanning hundreds of grid cells) per-pixel gathers are cheaper.
_MATRIX_MAX_CELLS = 1 << 16


def _separable(g: np.ndarray, ri: np.ndarray, wy: np.ndarray, ci: np.ndarray, wx: np.ndarray):
    """Return ``Σ wy[i]·wx[j]·g[ri[i], ci[j]]`` over the taps, (len rows, len columns) float32."""
    ur, my = _matrix(ri, wy)
    uc, mx = _matrix(ci, wx)
    if len(ur) * len(uc) <= _MATRIX_MAX_CELLS:
        block = np.asarray(g[np.ix_(ur, uc)], np.float32)
        return (my @ block) @ mx.T
    taps_y, taps_x = len(ri), len(ci)
    n_y, n_x = ri.shape[1], ci.shape[1]
    block = np.asarray(g[np.ix_(ri.ravel(), ci.ravel())], np.float32)
    block = block.reshape(taps_y, n_y, taps_x, n_x)
    rows = np.einsum("jw,ihjw->ihw", wx, block, optimize=True)
    return np.einsum("ih,ihw->hw", wy, rows, optimize=True).astype(np.float32)


def sample(lon: np.ndarray, lat: np.ndarray, mip: int = 0, *, low: bool = False) -> np.ndarray:
    """Return metres (len(lat), len(lon)) on the separable grid lon (columns) × lat (rows).

    Catmull-Rom on mip level ``mip`` (see :func:`mip_for_pixel`), or on the 3 × 3-cell minimum
    grid when ``low``; x wraps, rows clamp at the poles.
    """
    g = grid().low if low else grid().mips[mip]
    mip = 0 if low else mip
    n_r, n_c = g.shape
    s = PER_DEGREE / (1 << mip)
    ci, wx = _axis(np.asarray(lon, np.float64), n_c, s, -180.0, True)
    ri, wy = _axis(-np.asarray(lat, np.float64), n_r, s, -90.0, False)
    return np.asarray(_separable(g, ri, wy, ci, wx), np.float32)


def sample_points(lon: np.ndarray, lat: np.ndarray, mip: int = 0) -> np.ndarray:
    """Return metres at scattered points (1-D lon, lat of equal length), Catmull-Rom."""
    g = grid().mips[mip]
    n_r, n_c = g.shape
    s = PER_DEGREE / (1 << mip)
    ci, wx = _axis(np.asarray(lon, np.float64), n_c, s, -180.0, True)
    ri, wy = _axis(-np.asarray(lat, np.float64), n_r, s, -90.0, False)
    out = np.zeros(len(lon), np.float32)
    for i in range(4):
        for j in range(4):
            out += wy[i] * wx[j] * g[ri[i], ci[j]]
    return out


def roughness(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Return the grid's local roughness (m, RMS of its finest relief) on lon × lat, bilinear."""
    r = grid().roughness
    n_r, n_c = r.shape
    s = PER_DEGREE / 4
    fx = (np.asarray(lon, np.float64) + 180.0) * s - 0.5
    fy = (90.0 - np.asarray(lat, np.float64)) * s - 0.5
    ix, iy = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    tx, ty = (fx - ix).astype(np.float32), (fy - iy).astype(np.float32)
    ci = np.stack([ix % n_c, (ix + 1) % n_c])
    ri = np.stack([np.clip(iy, 0, n_r - 1), np.clip(iy + 1, 0, n_r - 1)])
    wx, wy = np.stack([1 - tx, tx]), np.stack([1 - ty, ty])
    return np.asarray(_separable(r, ri, wy, ci, wx), np.float32)


def grid_value(lon: float, lat: float) -> float:
    """Return the raw grid cell's metres at a point (nearest cell, no interpolation)."""
    return float(grid().mips[0][_cell(lon, lat)])
