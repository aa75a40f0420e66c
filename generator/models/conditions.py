"""The v3 model's conditioning features: the label stack turned into what the UNet sees.

Model v3 is told, beside the parent and the m/px, what the ground under each pixel is. The
stack of :mod:`generator.training.labels` (``CHANNELS``: water, distance, land cover, edges,
…, each with a *present* flag) is made the same way for a training photo (measured on the
pixels), for a user's image (``orbis upscale``, measured on the pixels too) and for a world's
window (assembled from the geography and layout layers). This module maps any such stack to a
fixed set of float features in roughly [−1, 1] (:data:`FEATURES`), with a flag plane per group
telling the model whether the group is known: a missing group is all zeros with its flag 0, so
the model learns in training (condition dropout) to fall back on the parent alone, and v3 with
every flag 0 is a plain super-resolution model like v2.

The features are box-averaged to the UNet's grid (the space-to-depth grid of
``pixel_unshuffle``), so they cost ``len(FEATURES)`` input channels whatever the unshuffle
factor: a 1-px road or edge becomes a quarter-strength line there, still placed to the pixel
pair.
"""

from __future__ import annotations

import numpy as np
import torch

from ..geography import classes as C

#: label-stack channel order (``generator.training.labels.CHANNELS``), repeated here so the
#: model side does not import the training side (scikit-image); a test checks they agree
STACK = (
    "water",
    "distance",
    "rivers",
    "elevation",
    "landcover",
    "layout",
    "edge",
    "road",
    "building",
    "vegetation",
    "lines",
    "trees",
    "hillshade",
)
#: land-cover classes one-hot encoded (every id of ``classes.LANDCOVER``)
N_CLASSES = len(C.LANDCOVER)
#: groups with a known/unknown flag each, and the stack channels each group reads
GROUPS = ("water", "shore", "landcover", "edge", "lines", "building", "vegetation", "trees")
#: the feature planes, in order: one value plane per group (landcover: one per class), then
#: one flag plane per group
FEATURES = (
    ("water", "shore", "edge", "lines", "building", "vegetation", "trees")
    + tuple(f"class_{k.id}" for k in C.LANDCOVER)
    + tuple(f"has_{g}" for g in GROUPS)
)
#: identity of this feature set (stored in ``orbis_model.json``; a change is a new model)
VERSION = "c1"
#: the signed distance to the shore is told as tanh(d / (SHORE_PX · m/px)): ±1 beyond a few
#: pixels, a ramp across the shore itself (the model sees which side and how near)
SHORE_PX = 8.0


def features(stack: np.ndarray, present: np.ndarray, mpp: float) -> np.ndarray:
    """Return float32 (len(FEATURES), H, W) from a label stack (len(STACK), H, W) + flags.

    Units follow :data:`STACK` (``labels.CHANNELS``): water and vegetation 0..1, masks 0..255,
    distance in metres, land cover a class id. A group with ``present`` False is zeros and its
    flag plane 0; land-cover ids outside the palette count as unknown pixels (all classes 0).
    """
    if stack.shape[0] != len(STACK) or present.shape != (len(STACK),):
        raise ValueError(f"label stack must have {len(STACK)} channels, got {stack.shape[0]}")
    h, w = stack.shape[1:]
    out = np.zeros((len(FEATURES), h, w), dtype=np.float32)
    idx = {name: i for i, name in enumerate(STACK)}
    has = {
        "water": bool(present[idx["water"]]),
        "shore": bool(present[idx["distance"]]),
        "landcover": bool(present[idx["landcover"]]),
        "edge": bool(present[idx["edge"]]),
        "lines": bool(present[idx["lines"]]) or bool(present[idx["road"]]),
        "building": bool(present[idx["building"]]),
        "vegetation": bool(present[idx["vegetation"]]),
        "trees": bool(present[idx["trees"]]),
    }
    if has["water"]:
        wat = stack[idx["water"]]
        if present[idx["rivers"]]:
            wat = np.maximum(wat, stack[idx["rivers"]])
        out[0] = np.clip(wat, 0.0, 1.0)
    if has["shore"]:
        out[1] = np.tanh(stack[idx["distance"]] / (SHORE_PX * max(mpp, 1e-3)))
    if has["edge"]:
        out[2] = stack[idx["edge"]] / 255.0
    if has["lines"]:
        li = stack[idx["lines"]] if present[idx["lines"]] else 0.0
        rd = stack[idx["road"]] if present[idx["road"]] else 0.0
        out[3] = np.maximum(li, rd) / 255.0
    if has["building"]:
        out[4] = stack[idx["building"]] / 255.0
    if has["vegetation"]:
        out[5] = np.clip(stack[idx["vegetation"]], 0.0, 1.0)
    if has["trees"]:
        out[6] = np.clip(stack[idx["trees"]], 0.0, 1.0)
    if has["landcover"]:
        lc = stack[idx["landcover"]].astype(np.int64)
        for k in range(N_CLASSES):
            out[7 + k] = lc == k
    base = 7 + N_CLASSES
    for i, g in enumerate(GROUPS):
        out[base + i] = float(has[g])
    return out


def missing(h: int, w: int) -> np.ndarray:
    """Return the features of a window about which nothing is known (every flag 0)."""
    return np.zeros((len(FEATURES), h, w), dtype=np.float32)


def to_grid(feat: torch.Tensor, s: int) -> torch.Tensor:
    """Return features (B, F, H, W) box-averaged onto the UNet's space-to-depth grid (÷ s)."""
    return torch.nn.functional.avg_pool2d(feat, s) if s > 1 else feat
