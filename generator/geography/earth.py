"""The ``earth`` geography: real shores, rivers, relief and climate, refined below their scale.

Composition only: water and rivers come from GSHHS/WDBII (:mod:`.water_earth`,
:mod:`.rivers_earth`), elevation from the packaged relief grid with valleys carved along the
rivers (:mod:`.elevation_earth`), land cover from climate, relief, water and Natural Earth areas
(:mod:`.landcover_earth`).
"""

from __future__ import annotations

import numpy as np

from ..planner import Rect


class EarthGeography:
    """The layers of the ``earth`` world."""

    def __init__(self, seed: int) -> None:
        from .elevation_earth import EarthElevation
        from .landcover_earth import EarthLandcover
        from .rivers_earth import EarthRivers
        from .water_earth import EarthWater

        self.seed = seed
        self._water = EarthWater(seed)
        self._rivers = EarthRivers(seed)
        self._elevation = EarthElevation(seed, self._rivers, self._water)
        self._landcover = EarthLandcover(seed, self._water, self._rivers, self._elevation)

    @property
    def identity(self) -> dict[str, object]:
        """Return the sources' identities (data digests and versions)."""
        return {
            "water": self._water.identity,
            "rivers": self._rivers.identity,
            "elevation": self._elevation.identity,
            "landcover": self._landcover.identity,
        }

    def water(self, z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
        """See :class:`~.source.GeographySource`."""
        return self._water.water(z, rect)

    def rivers(self, z: int, rect: Rect) -> np.ndarray:
        """See :class:`~.source.GeographySource`."""
        return self._rivers.rivers(z, rect)

    def elevation(self, z: int, rect: Rect) -> np.ndarray:
        """See :class:`~.source.GeographySource`."""
        return self._elevation.elevation(z, rect)

    def landcover(self, z: int, rect: Rect) -> np.ndarray:
        """See :class:`~.source.GeographySource`."""
        return self._landcover.landcover(z, rect)
