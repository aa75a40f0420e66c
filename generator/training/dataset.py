"""Training pairs (parent, child) at every ground resolution the real scenes allow.

Each scene is turned into a box-downsampled pyramid (level k has resolution mpp·2^k); a pair is a
child crop from level k and the matching parent crop from level k+1, so the model sees the same
×2 step at 10 m, 20 m, … and at 7.4 km, 15 km, …, each labelled with the child's m/px.
Augmentation: flips and 90° rotations (the ground has no up), mild brightness/contrast and
per-channel colour jitter, and — for a fraction of pairs — a parent made by another common
downsampling kernel (bilinear, bicubic, Lanczos as PIL applies them) instead of the box mean, so the
model does not depend on how a user's image was reduced (``orbis upscale`` takes any image).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..imagery import Scene, all_scenes
from ..resample import box_down2_np


@dataclass
class Level:
    """One pyramid level of one scene."""

    scene: str
    image: np.ndarray  # (H, W, 3) float32 in [0, 1]
    parent: np.ndarray  # (H//2, W//2, 3)
    mpp: float


def pyramid_levels(scenes: list[Scene], crop: int) -> list[Level]:
    """Return every (level, parent) pair large enough for a crop of ``crop`` px."""
    levels = []
    for s in scenes:
        img, mpp = s.rgb.astype(np.float32), s.mpp
        while min(img.shape[:2]) >= crop + 2:
            par = box_down2_np(img)
            if min(par.shape[:2]) < crop // 2 + 1:
                break
            levels.append(Level(s.name, img, par, mpp))
            img, mpp = par, mpp * 2
    return levels


def scene_weights(levels: list) -> tuple[np.ndarray, list[str]]:
    """Return the draw probability of each level (each scene equally likely, then each of its
    levels equally likely) and the sorted scene names."""
    counts: dict[str, int] = {}
    for lv in levels:
        counts[lv.scene] = counts.get(lv.scene, 0) + 1
    w = np.array([1.0 / counts[lv.scene] for lv in levels])
    return w / w.sum(), sorted(counts)


class PairSampler:
    """Draws random augmented (child, parent) crops, weighted to spread over scales."""

    #: PIL kernels for the parent of a pair, besides the box mean
    KERNELS = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS)

    def __init__(
        self,
        scenes: list[Scene] | None = None,
        crop: int = 64,
        seed: int = 0,
        other_kernels: float = 0.0,
        jitter: float = 1.0,
    ) -> None:
        self.crop = crop
        self.other_kernels = other_kernels
        self.jitter = jitter
        self.levels = pyramid_levels(scenes if scenes is not None else all_scenes("train"), crop)
        self.rng = np.random.default_rng(seed)
        self.weights, self.names = scene_weights(self.levels)

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (child (B,3,c,c), parent (B,3,c/2,c/2)) in [-1, 1] and m/px (B,)."""
        h = self.crop // 2
        kids, pars, mpps = [], [], []
        for i in self.rng.choice(len(self.levels), size=batch, p=self.weights):
            lv = self.levels[i]
            py, px, kid, par = self._crop(lv)
            k = int(self.rng.integers(0, 4))
            kid, par = np.rot90(kid, k), np.rot90(par, k)
            if self.rng.random() < 0.5:
                kid, par = kid[:, ::-1], par[:, ::-1]
            if self.rng.random() < self.other_kernels:
                kernel = self.KERNELS[int(self.rng.integers(0, len(self.KERNELS)))]
                par = _resize(kid, h, kernel)
            kid, par = self._colour_jitter(kid, par)
            kids.append(kid)
            pars.append(par)
            mpps.append(lv.mpp)
        return _tensors(kids, pars, mpps)

    def _crop(self, lv) -> tuple[int, int, np.ndarray, np.ndarray]:
        """Return a random parent crop's corner (py, px), the child crop and the parent crop."""
        c, h = self.crop, self.crop // 2
        py = int(self.rng.integers(0, lv.parent.shape[0] - h + 1))
        px = int(self.rng.integers(0, lv.parent.shape[1] - h + 1))
        kid = lv.image[2 * py : 2 * py + c, 2 * px : 2 * px + c]
        return py, px, kid, lv.parent[py : py + h, px : px + h]

    def _colour_jitter(self, kid: np.ndarray, par: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the pair with the same gain, per-channel tint and bias drawn for both."""
        j = self.jitter
        gain = float(self.rng.uniform(1 - 0.1 * j, 1 + 0.1 * j))
        tint = self.rng.uniform(1 - 0.03 * j, 1 + 0.03 * j, size=3).astype(np.float32)
        bias = float(self.rng.uniform(-0.03 * j, 0.03 * j))
        return np.clip(kid * gain * tint + bias, 0, 1), np.clip(par * gain * tint + bias, 0, 1)


def _tensors(kids: list, pars: list, mpps: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack crops (H, W, 3) in [0, 1] into (B, 3, H, W) tensors in [-1, 1], and the m/px."""
    kid_t = torch.from_numpy(np.stack(kids).transpose(0, 3, 1, 2).copy()) * 2 - 1
    par_t = torch.from_numpy(np.stack(pars).transpose(0, 3, 1, 2).copy()) * 2 - 1
    return kid_t.float(), par_t.float(), torch.tensor(mpps, dtype=torch.float32)


def _resize(rgb: np.ndarray, size: int, kernel: Image.Resampling) -> np.ndarray:
    """Resize a float RGB crop in [0, 1] to ``size``² with a PIL kernel (per channel, float)."""
    chans = [
        np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., c])).resize((size, size), kernel))
        for c in range(3)
    ]
    return np.stack(chans, axis=-1)
