"""A small deterministic geography for the serving tests, so they do not need the real data.

Elevation is a smooth function of longitude and latitude; water lies where it is below 0 m
(a lake band on high ground, a river every 18° of longitude), land cover follows elevation
bands. The serving code only sees the :class:`~generator.geography.source.GeographySource`
protocol, so this is enough to test routes, encodings, exports and the viewers.

``python -m tests.geo_stub serve …`` runs ``orbis serve`` with every world given this
geography (the browser tests start a real server that way).
"""

from __future__ import annotations

import sys

import numpy as np

from generator.geography import Geography
from generator.geography import classes as C
from generator.geography.grid import lonlat
from generator.planner import Rect


def stub_elevation(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Return the stub's elevation (m) on a lon × lat grid (lat per row, lon per column)."""
    lo = np.radians(lon)[None, :]
    la = np.radians(lat)[:, None]
    e = 3000.0 * np.sin(2 * lo + 0.5) * np.cos(1.5 * la)
    e = e + 1800.0 * np.sin(7 * lo + 1) * np.cos(6 * la)
    e = (
        e
        + 700.0 * np.sin(40 * lo) * np.cos(35 * la)
        + 250.0 * np.sin(200 * lo + 1) * np.cos(170 * la)
    )
    return (e + 300.0).astype(np.float32)


class StubSource:
    """A :class:`~generator.geography.source.GeographySource` made of closed-form fields."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.identity: dict[str, object] = {"stub": 1, "seed": seed}

    def _elev(self, z: int, rect: Rect) -> np.ndarray:
        lon, lat = lonlat(z, rect)
        return stub_elevation(lon, lat)

    def water(self, z: int, rect: Rect) -> tuple[np.ndarray, np.ndarray]:
        """Ocean below 0 m, a lake band between 2000 and 2100 m."""
        e = self._elev(z, rect)
        kind = np.full(e.shape, C.LAND, np.uint8)
        kind[e < 0] = C.OCEAN
        kind[(e > 2000) & (e < 2100)] = C.LAKE
        return kind, (-e).astype(np.float32)

    def rivers(self, z: int, rect: Rect) -> np.ndarray:
        """A river along every 18th meridian (about 0.2° wide)."""
        lon, lat = lonlat(z, rect)
        near = np.abs(((lon + 9.0) % 18.0) - 9.0) < 0.1
        return np.broadcast_to(near[None, :], (rect.h, rect.w)).astype(np.float32)

    def elevation(self, z: int, rect: Rect) -> np.ndarray:
        """The closed-form elevation."""
        return self._elev(z, rect)

    def landcover(self, z: int, rect: Rect) -> np.ndarray:
        """Classes by elevation band: water, cropland, broadleaf, needleleaf, rock, ice."""
        e = self._elev(z, rect)
        bands = np.array([0.0, 500.0, 1500.0, 2500.0, 3200.0], np.float32)
        ids = np.array([C.WATER, C.CROPLAND, C.BROADLEAF, C.NEEDLELEAF, C.ROCK, C.ICE], np.uint8)
        return ids[np.searchsorted(bands, e, side="right")]


def stub_geography(seed: int = 0) -> Geography:
    """Return a :class:`Geography` over :class:`StubSource`."""
    return Geography("stub", StubSource(seed))


def make_stub_geography(
    kind: str, seed: int, *, base_zoom: int = 4, base: object | None = None
) -> Geography:
    """Stand-in for ``generator.geography.make_geography``: every world gets the stub."""
    return stub_geography(seed)


def install(monkeypatch) -> None:
    """Give every world loaded from now on the stub geography (``World.geography`` calls
    ``generator.world.make_geography``)."""
    import generator.world

    monkeypatch.setattr(generator.world, "make_geography", make_stub_geography)


if __name__ == "__main__":
    import generator.world
    from generator.cli import main

    generator.world.make_geography = make_stub_geography  # type: ignore[assignment]
    sys.exit(main(sys.argv[1:]))
