"""The measures of ARCHITECTURE §6, used by the benchmarks and the tests.

* :func:`seam_ratio` — mean |ΔL| across tile edges over mean |ΔL| of parallel pixel pairs 8 and
  16 px either side (≈ 1 for real imagery; ≫ 1 for seams; ≪ 1 for a band of lost detail).
* :func:`strip_ratio` — the step between 8-px strip means across each edge over the same step
  at tile centres (catches colour steps).
* :func:`parent_psnr` — PSNR between a parent tile and the box-downsampled mosaic of its children.
* :func:`spectral_gap`, :func:`gradient_distance` — realism of detail versus a real reference.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import wasserstein_distance

from .resample import box_down2_np


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Return Rec. 601 luma (0–255) of an (H, W, 3) array."""
    a = rgb.astype(np.float64)
    return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]


def _edge_pairs(L: np.ndarray, tile: int, offset: int) -> list[np.ndarray]:
    """|ΔL| of horizontally adjacent pairs at column ``e + offset`` for every internal edge e."""
    out = []
    for e in range(tile, L.shape[1], tile):
        a, b = e - 1 + offset, e + offset
        if 0 <= a and b < L.shape[1]:
            out.append(np.abs(L[:, b] - L[:, a]))
    return out


def seam_ratio(mosaic: np.ndarray, tile: int = 256) -> float:
    """Return the seam ratio of a k×k tile mosaic (both edge directions)."""
    L = luminance(mosaic)
    edge, ref = [], []
    for img in (L, L.T):
        edge += _edge_pairs(img, tile, 0)
        for off in (-16, -8, 8, 16):
            ref += _edge_pairs(img, tile, off)
    return float(np.mean(np.concatenate(edge)) / np.mean(np.concatenate(ref)))


def strip_ratio(mosaic: np.ndarray, tile: int = 256, width: int = 8) -> float:
    """Return the strip ratio: colour step of 8-px strips across edges vs at tile centres."""
    L = luminance(mosaic)
    steps_edge, steps_mid = [], []
    for img in (L, L.T):
        n = img.shape[1] // tile
        for i in range(n):
            for pos, store in (((i + 1) * tile, steps_edge), (i * tile + tile // 2, steps_mid)):
                if (
                    pos - width < 0
                    or pos + width > img.shape[1]
                    or (store is steps_edge and i == n - 1)
                ):
                    continue
                # per 8-row block: difference of the strip means either side
                left = img[:, pos - width : pos].reshape(-1, width, width).mean(axis=(1, 2))
                right = img[:, pos : pos + width].reshape(-1, width, width).mean(axis=(1, 2))
                store.append(np.abs(left - right))
    return float(np.mean(np.concatenate(steps_edge)) / np.mean(np.concatenate(steps_mid)))


def box_down2(rgb: np.ndarray) -> np.ndarray:
    """2×2 box mean of an (H, W, C) array, as float64 (the cascade's own box filter)."""
    return box_down2_np(rgb).astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Return PSNR (dB, 8-bit peak) between two arrays."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def parent_psnr(parent: np.ndarray, children_mosaic: np.ndarray) -> float:
    """Return PSNR between a parent tile and its 2×2 children mosaic box-downsampled ×2.

    The mosaic is rounded to 8 bit first, as a client zooming out would see it.
    """
    return psnr(parent, np.clip(np.rint(box_down2(children_mosaic)), 0, 255))


def radial_spectrum(L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (frequency in cycles/px, radially averaged power) of a luminance image."""
    h, w = L.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    F = np.fft.fftshift(np.fft.fft2((L - L.mean()) * win))
    P = np.abs(F) ** 2
    fy = np.fft.fftshift(np.fft.fftfreq(h))[:, None]
    fx = np.fft.fftshift(np.fft.fftfreq(w))[None, :]
    r = np.sqrt(fx**2 + fy**2)
    bins = np.linspace(0, 0.5, 33)
    idx = np.digitize(r.ravel(), bins) - 1
    power = np.bincount(idx, weights=P.ravel(), minlength=len(bins))[: len(bins) - 1]
    count = np.bincount(idx, minlength=len(bins))[: len(bins) - 1]
    return 0.5 * (bins[1:] + bins[:-1]), power / np.maximum(count, 1)


def spectral_gap(x: np.ndarray, reference: np.ndarray) -> float:
    """Return mean |log10 S_x − log10 S_ref| over the top octave (0.25–0.5 cycles/px)."""
    f, sx = radial_spectrum(luminance(x))
    _, sr = radial_spectrum(luminance(reference))
    top = (f >= 0.25) & (f <= 0.5)
    return float(np.mean(np.abs(np.log10(sx[top] + 1e-9) - np.log10(sr[top] + 1e-9))))


def gradient_distance(x: np.ndarray, reference: np.ndarray) -> float:
    """Return the Wasserstein-1 distance between gradient-magnitude distributions."""

    def grad(a: np.ndarray) -> np.ndarray:
        L = luminance(a)
        gy, gx = np.gradient(L)
        return np.hypot(gx, gy).ravel()

    return float(wasserstein_distance(grad(x), grad(reference)))


def mosaic(tiles: list[list[np.ndarray]]) -> np.ndarray:
    """Return rows of equal-sized (H, W, 3) tiles assembled into one image."""
    return np.concatenate([np.concatenate(row, axis=1) for row in tiles], axis=0)
