"""Tell a conditioned model (v3) what the geography puts under each pixel of a window.

The pyramid samples a window of a conditioned model with, beside its parent and noise, the
features of :mod:`generator.models.conditions`. Here they are made from the world's layers by
the same two steps training used on photos: a label stack
(:func:`generator.training.labels.assemble`, the run-time twin of ``labels.stack``), then
:func:`~generator.models.conditions.features`. Only the layers the features read are computed
(water, rivers, distance, land cover, the layout's channels); elevation is not (no training
photo had one, so the model has no relief channel to be told).

One deliberate difference from training: the *edge* group is marked unknown. In training it
is Canny's edges of the photo (every field border, tree crown and roof), which a layout cannot
know; told "no edge here" over a forest, the model would paint it flat. The layout's field
borders and roads go in the *lines* group instead (in training: the photo's long straight
segments), which is what they are.

Reads happen on the window grown by the layout's margin, the rect the water edit and the
painter read on (:meth:`generator.follow.WaterFollower.coverage`), so a window's layers are
computed once for all three.
"""

from __future__ import annotations

import numpy as np

from .geography import Geography
from .geography.layout import MARGIN as LAYOUT_MARGIN
from .geography.layout import layout_of
from .models import conditions
from .planner import Rect

#: identity of how the features are made from the layers (hashed with the world: bump when a
#: change alters the features a window gets)
CONDITIONING_VERSION = f"{conditions.VERSION}/r2"


class GeographyConditioner:
    """Makes a window's conditioning features from a world's geography and layout layers."""

    def __init__(self, geography: Geography) -> None:
        self.geography = geography
        self.layout = layout_of(geography)

    def features(self, z: int, rect: Rect, parent_up: np.ndarray, mpp: float) -> np.ndarray:
        """Return float32 (len(FEATURES), h, w) for a rect of zoom z.

        ``parent_up`` ((3, h, w) in [-1, 1]) is the model's conditioning image (the edited,
        upsampled parent): the vegetation group is measured on it, as training measured it on
        the photo at the parent's resolution. ``mpp``: the ground resolution the model is told
        for this window (:meth:`.pyramid.Pyramid.window_mpp`), so the features' resolution
        channel and the model's own conditioning never disagree.
        """
        from .training import labels  # scikit-image: only when a conditioned model runs

        m = LAYOUT_MARGIN
        grown = Rect(rect.y0 - m, rect.x0 - m, rect.h + 2 * m, rect.w + 2 * m)
        crop = (slice(m, m + rect.h), slice(m, m + rect.w))
        geo = self.geography
        kind = geo.window("water", z, grown)[crop]
        rivers = geo.window("rivers", z, grown)[crop]
        distance = geo.window("distance", z, grown)[crop]
        landcover = geo.window("landcover", z, grown)[crop]
        layout = self.layout.channels(z, rect)
        rgb = np.clip((parent_up.transpose(1, 2, 0) + 1.0) * 127.5, 0, 255).astype(np.uint8)
        stack, have = labels.assemble(
            kind,
            distance,
            rivers,
            None,  # no relief channel: see the module docstring
            landcover,
            layout,
            mpp,
            rgb_parent=rgb,
        )
        have[labels.CHANNELS.index("edge")] = False
        return conditions.features(stack, have, mpp)
