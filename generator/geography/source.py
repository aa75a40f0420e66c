"""What a world's geography provides: the protocol every source (``earth``, ``planet``) follows.

A source evaluates each layer on any pixel rect of any zoom (:mod:`.grid`): a pure function of
(source identity, z, rect), the same pixel giving the same value whichever rect contains it, so
tiles meet without seams and windows with margins read the same values as the tiles under them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from ..planner import Rect


class GeographySource(Protocol):
    """The layers of one world's geography, evaluated on pixel rects of a zoom level."""

    #: everything that decides the layers' values (source files' digests, version, seed);
    #: part of the world's content hash
    identity: dict[str, object]

    def water(self, z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
        """Return (kind, distance): uint8 (h, w) of ``classes.LAND/OCEAN/LAKE`` and float32
        signed distance to the shore in ground metres (positive on water, negative on land)."""
        ...

    # A source may also have ``water_kind(z, rect)``, equal to ``water(z, rect)[0]`` but cheaper
    # (no distance transform); :class:`~.layers.Geography` uses it for the ``water`` layer.

    def rivers(self, z: int, rect: Rect) -> np.ndarray:
        """Return float32 (h, w) river water coverage in 0..1 (1: the pixel is all river)."""
        ...

    def elevation(self, z: int, rect: Rect) -> np.ndarray:
        """Return float32 (h, w) elevation in metres above sea level (negative: below)."""
        ...

    def landcover(self, z: int, rect: Rect) -> np.ndarray:
        """Return uint8 (h, w) land-cover class ids (``classes.LANDCOVER``)."""
        ...


def data_cache_dir() -> Path:
    """Return the folder for indices built once from packaged data (``$ORBIS_DATA_CACHE``,
    else ``~/.cache/orbis``); created on demand, written atomically by its users."""
    env = os.environ.get("ORBIS_DATA_CACHE")
    path = Path(env) if env else Path.home() / ".cache" / "orbis"
    path.mkdir(parents=True, exist_ok=True)
    return path
