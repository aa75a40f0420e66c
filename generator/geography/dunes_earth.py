"""Sand dunes of the ``earth`` world: the relief of sand seas, which the 2′ grid cannot hold.

The relief grid's 3.7 km cells see a sand sea as a plain, and the sub-grid value noise gives it
the same mottled hills as any plain; the imagery's relief shading then shows the Sahara, the Rub'
al Khali or the Namib as smooth sand. Real ergs are ridges: linear dunes a kilometre or two apart
along the wind, crescentic dunes a few hundred metres apart across it on their flanks.

**Where** (:func:`sand_share`, a weight in 0..1, smooth everywhere, so the dune fields fade in
and out over kilometres): hyper-arid land (annual precipitation of the climate grid below
120 mm, none from 250 mm) with a warm season (the warmest month above 10 °C, none below 4 °C:
not the ice caps' polar deserts), flat at the grid's scale (its roughness below 12 m, none from
40 m), above the sea and out of the land depressions (the grid's terrain from 0 to 20 m), not
where Blue Marble shows irrigated or vegetated land (the Nile valley, oases), inside sand seas
that a low-frequency noise field picks (lattice levels 7–9, cells of 310–80 km on the
equator: about a third of such land; no packaged dataset maps the ergs, and Blue Marble's colour
does not tell an erg from a gravel plain — Erg Chech and the Tanezrouft read the same).

**What** (:func:`dunes`): phasor noise (Tricard et al., "Procedural phasor noise", 2019): a
jittered lattice of oriented kernels whose complex sum gives a phase that runs as coherent,
sinuous stripes with Y-junctions where the orientation turns; a dune profile of that phase:

- *linear dunes* (draa), crests along the wind, :data:`LINEAR_WAVELENGTH_M` apart,
  :data:`LINEAR_HEIGHT_M` high, a sharp crest between concave flanks;
- *crescentic dunes* across the wind, :data:`CRESCENT_WAVELENGTH_M` apart,
  :data:`CRESCENT_HEIGHT_M` high, a gentle windward (stoss) slope and a steep lee face.

The wind blows from the north-east in the northern tropics and the south-east in the southern
(the trades), from the west poleward of about 32°, bent by up to ±35° by a noise field. Wavelengths
are in Web Mercator metres (a dune field's ground spacing is that × cos latitude, 0.9 at 25°):
a phase that follows the ground scale of each row would shear across a whole continent's width.
Heights have zero mean over a wavelength (the grid's level stays). Each component fades out
where its wavelength is under :data:`FADE_PX` pixels of the zoom (no aliasing: the linear dunes
show from z9, the crescents from z12), as the detail octaves stop at 2 px.

A pure function of (seed, zoom, pixel): each pixel sums the kernels of the 5 × 5 lattice cells
around its own, whose weights vanish beyond 1.5 cells, so any rect gives the same pixels.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..planner import Rect
from . import fractal
from .fractal import smoothstep
from .grid import HALF_WORLD, mercator_y, pixel_size

#: Version of the dunes (part of the elevation layer's identity).
VERSION = "1"
LINEAR_WAVELENGTH_M = 1600.0
LINEAR_HEIGHT_M = 80.0
CRESCENT_WAVELENGTH_M = 300.0
CRESCENT_HEIGHT_M = 15.0
#: Lattice cell of the kernels, in wavelengths (a kernel's support is 1.5 cells).
CELL_WAVELENGTHS = 1.5
#: Largest turn (radians) of a kernel's crests off the wind's: linear dunes run straight for
#: tens of kilometres, crescentic ones curve and break every few wavelengths.
LINEAR_JITTER = 0.15
CRESCENT_JITTER = 0.5
#: A component is drawn in full from FADE_PX[1] pixels per wavelength, not below FADE_PX[0].
FADE_PX = (2.5, 5.0)
#: Global columns where each kernel's wave is computed afresh (between them it is rotated).
SYNC = 64
#: Share of the crest-to-trough cycle on the windward side of a crescentic dune (its lee face,
#: 24 m at 15 m high, stands at ≈ 32°, the angle of repose of dry sand).
STOSS = 0.92
#: Sand seas: precipitation (mm) with full / no dunes, grid roughness (m) likewise, terrain (m).
ARID_MM = (120.0, 250.0)
WARM_C = (4.0, 10.0)
FLAT_M = (12.0, 40.0)
LAND_M = (0.0, 20.0)
ERG_LEVELS = (7, 8, 9)
#: Brightness of a linear dune's crest over its mean (its corridor: half as much darker).
ALBEDO = 0.2
#: Blue Marble's vegetation score (the land cover's, 128 = vegetated) with full / no dunes.
GREEN = (100.0, 125.0)


def sand_share(
    seed: int,
    z: int,
    rect: Rect,
    lon: np.ndarray,
    lat: np.ndarray,
    rough: np.ndarray,
    base: np.ndarray,
) -> np.ndarray:
    """Return the weight (0..1, float32 (h, w)) of the dunes: hyper-arid, warm, flat land in a
    sand sea. ``lon``/``lat`` are the rect's columns/rows, ``rough`` the grid's roughness and
    ``base`` the grid's terrain on the rect."""
    from .landcover_earth import _get, _sample_plate

    clim = _get("climate")
    # a bilinear value lies within its four cells': if every cell the rect reads is wet, so is
    # every pixel (most of the world's tiles stop here)
    n_rows, n_cols, grid_pann = clim.rows, clim.cols, clim.pann  # type: ignore[attr-defined]
    rows = np.floor(np.clip((90.0 - lat) * 4.0, 0, n_rows - 1.001)).astype(np.int64)
    cols = np.floor((lon + 180.0) * 4.0).astype(np.int64)
    rows = np.unique(np.concatenate([rows, rows + 1]))
    cols = np.unique(np.concatenate([cols, cols + 1]) % n_cols)
    if grid_pann[np.ix_(rows, cols)].min() >= ARID_MM[1]:
        return np.zeros((rect.h, rect.w), np.float32)
    pann = clim.bilinear(clim.pann, lon, lat)  # type: ignore[attr-defined]
    arid = 1.0 - smoothstep((pann - ARID_MM[0]) / (ARID_MM[1] - ARID_MM[0]))
    if not (arid > 0).any():
        return np.zeros((rect.h, rect.w), np.float32)
    # not on ice caps and polar deserts (hyper-arid and flat too): the warmest month above 10 °C
    tmax = clim.bilinear(clim.tmax, lon, lat)  # type: ignore[attr-defined]
    arid = arid * smoothstep((tmax - WARM_C[0]) / (WARM_C[1] - WARM_C[0]))
    flat = 1.0 - smoothstep((rough - FLAT_M[0]) / (FLAT_M[1] - FLAT_M[0]))
    land = smoothstep((base - LAND_M[0]) / (LAND_M[1] - LAND_M[0]))
    w = arid * flat * land
    if not (w > 0).any():
        return np.zeros((rect.h, rect.w), np.float32)
    u, v = fractal.uv(z, rect)
    erg = fractal.fbm(seed ^ 0xD0E5, u, v, ERG_LEVELS, gain=0.5)
    w = w * smoothstep((erg - 0.1) / 0.35)
    if (w > 0).any():
        # no sand where Blue Marble shows irrigated or vegetated land (the Nile, oases): the
        # land cover's own score, bilinear at 7.4 km
        green = _sample_plate(_get("greenness"), lon, lat)  # type: ignore[arg-type]
        w = w * (1.0 - smoothstep((green - GREEN[0]) / (GREEN[1] - GREEN[0])))
    return w.astype(np.float32)


def wind_angle(lat: np.ndarray) -> np.ndarray:
    """Return the direction the wind blows towards (radians from east, counter-clockwise) by
    latitude: towards the south-west under the northern trades, the north-west under the
    southern, the east under the westerlies (blended between 28° and 36°)."""
    trade = np.where(lat >= 0.0, -0.75 * np.pi, 0.75 * np.pi)
    west = smoothstep((np.abs(lat) - 28.0) / 8.0)
    # blend the angles through the short way round (trade ±135° → 0°)
    return trade * (1.0 - west)


def fields(seed: int, z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
    """Return (the linear dunes, all the dunes): heights (m, float32 (h, w), zero mean) on the
    rect at full weight; zeros where the zoom is too coarse. The elevation weighs the second,
    the sand's brightness (:func:`brightness`) follows the first."""
    total = np.zeros((rect.h, rect.w), np.float32)
    linear = total
    s = pixel_size(z)
    # Mercator x of the columns, not wrapped (the kernels' lattice and the phasor's columns
    # read the same; no sand sea lies at the antimeridian)
    mx = -HALF_WORLD + (np.arange(rect.x0, rect.x0 + rect.w) + 0.5) * s
    my = mercator_y(z, rect)
    comps = (
        (LINEAR_WAVELENGTH_M, LINEAR_HEIGHT_M, 0.5 * np.pi, False, 41, LINEAR_JITTER),
        (CRESCENT_WAVELENGTH_M, CRESCENT_HEIGHT_M, 0.0, True, 43, CRESCENT_JITTER),
    )
    for n, (lam, height, turn, asym, salt, jitter) in enumerate(comps):
        fade = float(smoothstep(np.array((lam / s - FADE_PX[0]) / (FADE_PX[1] - FADE_PX[0]))))
        if fade <= 0.0:
            continue
        cell = lam * CELL_WAVELENGTHS
        ix0 = int(math.floor((mx.min() + HALF_WORLD) / cell)) - 2
        ix1 = int(math.floor((mx.max() + HALF_WORLD) / cell)) + 2
        iy0 = int(math.floor((HALF_WORLD - my.max()) / cell)) - 2
        iy1 = int(math.floor((HALF_WORLD - my.min()) / cell)) + 2
        kx, ky = np.meshgrid(np.arange(ix0, ix1 + 1), np.arange(iy0, iy1 + 1))
        nwrap = max(int(round(2 * HALF_WORLD / cell)), 1)
        hx = kx % nwrap
        jx = (fractal.hash_uniform(seed ^ salt, 1, hx, ky) + 1.0) / 2.0
        jy = (fractal.hash_uniform(seed ^ salt, 2, hx, ky) + 1.0) / 2.0
        ph = fractal.hash_uniform(seed ^ salt, 3, hx, ky) * np.pi
        cx = -HALF_WORLD + (kx + jx) * cell
        cy = HALF_WORLD - (ky + jy) * cell
        # the wind at each kernel: by latitude, bent by a noise field (cells of ≈ 80 km)
        klat = np.degrees(2.0 * np.arctan(np.exp(cy / 6378137.0)) - np.pi / 2.0)
        ku = ((cx + HALF_WORLD) / (2 * HALF_WORLD)) % 1.0
        kv = (HALF_WORLD - cy) / (2 * HALF_WORLD)
        bend = fractal.value_noise(seed ^ 0xB1D, 9, ku, kv)  # pointwise (2-D)
        # and each kernel's own turn: crests curve and break into crescents and Y-junctions
        own = fractal.hash_uniform(seed ^ salt, 4, hx, ky) * jitter
        theta = wind_angle(klat) + turn + 0.6 * bend + own
        k = 2.0 * np.pi / lam
        h = _phasor(
            rect.x0,
            (s, rect.w),
            my,
            np.ascontiguousarray(cx.astype(np.float64)),
            np.ascontiguousarray(cy.astype(np.float64)),
            np.ascontiguousarray((k * np.cos(theta)).astype(np.float64)),
            np.ascontiguousarray((k * np.sin(theta)).astype(np.float64)),
            np.ascontiguousarray(ph.astype(np.float64)),
            iy0,
            cell,
            asym,
            STOSS,
        )
        total = total + np.float32(height * fade) * h
        if n == 0:
            linear = total
    return linear, total


def dunes(seed: int, z: int, rect: Rect, weight: np.ndarray) -> np.ndarray:
    """Return the dunes' heights (m, float32 (h, w), zero mean) on the rect, times ``weight``
    (from :func:`sand_share`); zeros where the weight is zero or the zoom too coarse."""
    if not (weight > 0).any():
        return np.zeros((rect.h, rect.w), np.float32)
    return (fields(seed, z, rect)[1] * weight).astype(np.float32)


def brightness(linear: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Return the sand's brightness factor (float32 (h, w)) from the linear dunes of
    :func:`fields` and the dunes' weight: their crests :data:`ALBEDO` brighter (loose,
    wind-sorted sand), the corridors between them half as much darker (older, coarser, often
    gravel floors), as every photo of an erg shows them even where the sun is high; for the
    imagery's relief shading."""
    h = (linear * weight).astype(np.float32)
    return (1.0 + (ALBEDO * 1.5 / LINEAR_HEIGHT_M) * h).astype(np.float32)


def albedo(seed: int, z: int, rect: Rect, weight: np.ndarray) -> np.ndarray:
    """Return the sand's brightness factor on the rect (:func:`brightness`; 1 where the weight
    is zero)."""
    if not (weight > 0).any():
        return np.ones((rect.h, rect.w), np.float32)
    return brightness(fields(seed, z, rect)[0], weight)


@njit(cache=True, nogil=True)
def _phasor(g0, size, my, cx, cy, kx, ky, ph, iy0, cell, asym, stoss):  # pragma: no cover
    """Phasor noise on the rows at Mercator y ``my`` × ``size`` = (pixel metres, count)
    columns from global column ``g0`` of the zoom, profiled as dunes.

    The kernels (cx, cy, wave vector (kx, ky), phase ph; row j of the arrays is lattice row
    ``iy0`` + j, counted from the north; visited in the arrays' order, the lattice's) weigh
    (1 − (d / 1.5 cell)²)². Along a row a kernel's wave e^{iψ} is rotated pixel by pixel from
    a fresh cos/sin at every global column that is a multiple of :data:`SYNC` (and at the
    kernel's first column), so a pixel's value does not depend on where its rect starts.
    Returns the profile (zero mean over a cycle) times the phasor's coherence (|Σ w e^{iψ}| /
    Σ w, faded in from 0.15 to 0.45: the phase is undefined where the kernels cancel).
    """
    s, w = size
    h = my.shape[0]
    half = 6378137.0 * math.pi
    sr = np.zeros((h, w))
    si = np.zeros((h, w))
    sw = np.zeros((h, w))
    r = 1.5 * cell
    r2 = r * r
    nj, ni = cx.shape
    for row in range(h):
        y = my[row]
        # the kernels of the lattice rows within 2 of the row's own (support: 1.5 cells)
        jy = int(math.floor((half - y) / cell)) - iy0
        for j in range(max(jy - 2, 0), min(jy + 3, nj)):
            for i in range(ni):
                dy = y - cy[j, i]
                if dy * dy >= r2:
                    continue
                hx = math.sqrt(r2 - dy * dy)
                a = int(math.ceil((cx[j, i] - hx + half) / s - 0.5))
                b = int(math.floor((cx[j, i] + hx + half) / s - 0.5))
                lo, hi = max(a, g0), min(b, g0 + w - 1)
                if lo > hi:
                    continue
                start = max(a, (lo // SYNC) * SYNC)
                rr, ri = math.cos(kx[j, i] * s), math.sin(kx[j, i] * s)
                er, ei = 0.0, 0.0
                for g in range(start, hi + 1):
                    if g == start or g % SYNC == 0:
                        psi = kx[j, i] * (-half + (g + 0.5) * s - cx[j, i]) + ky[j, i] * dy
                        psi += ph[j, i]
                        er, ei = math.cos(psi), math.sin(psi)
                    elif g > start:
                        er, ei = er * rr - ei * ri, er * ri + ei * rr
                    if g >= lo:
                        dx = -half + (g + 0.5) * s - cx[j, i]
                        d2 = dx * dx + dy * dy
                        if d2 < r2:
                            q = 1.0 - d2 / r2
                            wt = q * q
                            c = g - g0
                            sr[row, c] += wt * er
                            si[row, c] += wt * ei
                            sw[row, c] += wt
    out = np.zeros((h, w), np.float32)
    for row in range(h):
        for c in range(w):
            if sw[row, c] <= 0.0:
                continue
            coh = math.sqrt(sr[row, c] ** 2 + si[row, c] ** 2) / sw[row, c]
            t = min(max((coh - 0.15) / 0.3, 0.0), 1.0)
            gain = t * t * (3.0 - 2.0 * t)
            if gain <= 0.0:
                continue
            f = (math.atan2(si[row, c], sr[row, c]) + math.pi) / (2.0 * math.pi)
            if asym:
                p = f / stoss if f < stoss else (1.0 - f) / (1.0 - stoss)
                p = p - 0.5
            else:
                p = 1.0 - abs(2.0 * f - 1.0)
                p = p * p - 1.0 / 3.0  # sharp crest, concave flanks; the mean of p² is 1/3
            out[row, c] = gain * p
    return out
