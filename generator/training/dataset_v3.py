"""Training pairs of model v3: (child, parent, m/px) plus the child's conditioning features.

Each image of training set v3 (:mod:`generator.training.data_v3`) and its label planes are
pyramided together (:func:`generator.training.labels.pyramid`), so every ×2 step from 0.5 m to
15 km carries labels measured at the child's own level. A pair adds to v2's
(:mod:`generator.training.dataset`) the features :func:`generator.models.conditions.features`
makes of the child's label stack, augmented so the model also works where the run-time layers
are coarse, partial or absent:

* **condition dropout**: each group is dropped (zeros, flag 0) with probability
  :data:`DROP_GROUP`, and all groups at once with :data:`DROP_ALL`, so the model keeps a
  parent-only mode (``orbis upscale`` without labels, places with no geography) and never
  leans on one channel that a world might not have;
* **coarse labels**: with probability :data:`COARSEN` the value planes are box-reduced 2–8×
  and blown back up (nearest), as a layer drawn at a coarser zoom than the pixels looks;
* the same flips and 90° turns as the image (the ground has no up), and v2's colour jitter
  and other-kernel parents on the image only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..models import conditions as F
from ..resample import box_down2_np
from . import data_v3
from . import labels as L
from .dataset import PairSampler, _resize, _tensors, scene_weights

#: probability that one conditioning group is dropped from a pair
DROP_GROUP = 0.25
#: probability that every group is dropped (the parent-only mode)
DROP_ALL = 0.15
#: probability that the value planes are coarsened
COARSEN = 0.3
#: index of the first flag plane in :data:`generator.models.conditions.FEATURES`
_FLAGS = len(F.FEATURES) - len(F.GROUPS)
#: the value planes of each group (indices into FEATURES)
_GROUP_PLANES = {
    "water": [0],
    "shore": [1],
    "edge": [2],
    "lines": [3],
    "building": [4],
    "vegetation": [5],
    "trees": [6],
    "landcover": list(range(7, 7 + F.N_CLASSES)),
}


class LabelledLevel:
    """One pyramid level of one image: pixels, label planes, the parent's pixels, m/px."""

    def __init__(self, name: str, image: np.ndarray, planes: np.ndarray, present, mpp: float):
        self.scene = name
        self.image = image
        self.planes = planes
        self.present = present
        self.parent = box_down2_np(image)
        self.mpp = mpp


def labelled_levels(items: list[data_v3.Item], crop: int) -> list[LabelledLevel]:
    """Return every level of every item large enough for a crop of ``crop`` px (and its parent)."""
    out = []
    for it in items:
        for img, p, mpp in L.pyramid(it.rgb, it.planes, float(it.row["mpp"]), crop + 2):
            if min(img.shape[:2]) // 2 < crop // 2 + 1:
                break
            out.append(LabelledLevel(str(it.row["name"]), img, p, it.present, mpp))
    return out


def drop_and_coarsen(feat: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply condition dropout and label coarsening to one pair's features (in place)."""
    if rng.random() < DROP_ALL:
        feat[:] = 0.0
        return feat
    for i, g in enumerate(F.GROUPS):
        if rng.random() < DROP_GROUP:
            feat[_GROUP_PLANES[g]] = 0.0
            feat[_FLAGS + i] = 0.0
    if rng.random() < COARSEN:
        f = int(rng.choice([2, 4, 8]))
        h, w = feat.shape[1:]
        if h % f == 0 and w % f == 0:
            v = feat[:_FLAGS].reshape(_FLAGS, h // f, f, w // f, f).mean(axis=(2, 4))
            feat[:_FLAGS] = np.repeat(np.repeat(v, f, axis=1), f, axis=2)
    return feat


class LabelledPairSampler(PairSampler):
    """Draws (child, parent, m/px, features) crops of training set v3, weighted per image."""

    def __init__(
        self,
        items: list[data_v3.Item],
        crop: int = 64,
        seed: int = 0,
        other_kernels: float = 0.0,
        jitter: float = 1.0,
        augment_conditions: bool = True,
    ) -> None:
        self.crop = crop
        self.other_kernels = other_kernels
        self.jitter = jitter
        self.augment_conditions = augment_conditions
        self.levels = labelled_levels(items, crop)  # type: ignore[assignment]
        if not self.levels:
            raise ValueError(f"no image of the set is large enough for {crop}-px crops")
        self.rng = np.random.default_rng(seed)
        self.weights, self.names = scene_weights(self.levels)

    @classmethod
    def from_dir(cls, data: Path, split: str = "train", **kw) -> LabelledPairSampler:
        """Return a sampler over one split of a training set v3 folder."""
        return cls(data_v3.load(data, split), **kw)

    def sample(self, batch: int):  # type: ignore[override]
        """Return (child (B,3,c,c), parent (B,3,c/2,c/2)) in [-1, 1], m/px (B,) and features
        (B, len(FEATURES), c, c)."""
        c, h = self.crop, self.crop // 2
        kids, pars, mpps, feats = [], [], [], []
        for i in self.rng.choice(len(self.levels), size=batch, p=self.weights):
            lv = self.levels[i]
            py, px, kid, par = self._crop(lv)
            planes = lv.planes[:, 2 * py : 2 * py + c, 2 * px : 2 * px + c]
            st, have = L.stack(planes, lv.present, lv.mpp)
            feat = F.features(st, have, lv.mpp)
            k = int(self.rng.integers(0, 4))
            kid, par = np.rot90(kid, k), np.rot90(par, k)
            feat = np.rot90(feat, k, axes=(1, 2))
            if self.rng.random() < 0.5:
                kid, par, feat = kid[:, ::-1], par[:, ::-1], feat[:, :, ::-1]
            feat = np.ascontiguousarray(feat)
            if self.augment_conditions:
                drop_and_coarsen(feat, self.rng)
            if self.rng.random() < self.other_kernels:
                kernel = self.KERNELS[int(self.rng.integers(0, len(self.KERNELS)))]
                par = _resize(np.ascontiguousarray(kid), h, kernel)
            kid, par = self._colour_jitter(kid, par)
            kids.append(kid)
            pars.append(par)
            mpps.append(lv.mpp)
            feats.append(feat)
        return (*_tensors(kids, pars, mpps), torch.from_numpy(np.stack(feats)))
