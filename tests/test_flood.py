"""The compiled priority flood (generator/geography/flood.py) against pyflwdir's, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from pyflwdir import dem

from generator.geography import flood


def _reference(e: np.ndarray, outlets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pits = np.nonzero(outlets.ravel())[0].astype(np.int64)
    return dem.fill_depressions(e, outlets="idxs_pit", idxs_pit=pits)


def _edge(shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[0], m[-1], m[:, 0], m[:, -1] = True, True, True, True
    return m


def _rough(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """Smooth hills with closed hollows, flats (quantised plateaus) and a few exact ties."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    z = gaussian_filter(rng.normal(size=shape), 6) * 400.0
    z += gaussian_filter(rng.normal(size=shape), 1.5) * 20.0
    z[z > 30.0] = np.round(z[z > 30.0] / 25.0) * 25.0  # terraces: wide flats
    return z.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pyflwdir_with_edge_and_water_outlets(seed: int) -> None:
    e = _rough(seed, (200, 260))
    water = np.zeros(e.shape, bool)
    water[80:120, 40:90] = True  # a lake
    water[150, :] = True  # a river across
    out = _edge(e.shape) | water
    want_f, want_d = _reference(e, out)
    got_f, got_d = flood.fill_depressions(e, out)
    assert got_f.dtype == np.float32 and got_d.dtype == np.uint8
    np.testing.assert_array_equal(got_f, want_f)
    np.testing.assert_array_equal(got_d, want_d)
    # the fill did fill something, and every land pixel got a direction
    assert (got_f > e).sum() > 100
    assert (got_d[~out] != 0).all()


def test_matches_pyflwdir_on_flats_and_negative_zero() -> None:
    # a table with one notch: the whole flat drains through the flood's own directions
    e = np.full((64, 64), 10.0, np.float32)
    e[20:40, 20:40] = 0.0
    e[30, 30] = -0.0
    e[0, 5] = 1.0
    out = np.zeros(e.shape, bool)
    out[0, 5] = True
    np.testing.assert_array_equal(flood.fill_depressions(e, out)[1], _reference(e, out)[1])
    np.testing.assert_array_equal(flood.fill_depressions(e, out)[0], _reference(e, out)[0])


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="one 2-D shape"):
        flood.fill_depressions(np.zeros((4, 4), np.float32), np.zeros((4, 5), bool))


def _steepest_reference(elev: np.ndarray) -> np.ndarray:
    """The whole-raster numpy form of the streams' steepest descent (streams version 4)."""
    import math

    h, w = elev.shape
    codes = np.array([[32, 64, 128], [16, 0, 1], [8, 4, 2]], np.uint8)
    inner = elev[1:-1, 1:-1]
    best = np.zeros_like(inner)
    out = np.zeros((h, w), np.uint8)
    arg = np.zeros(inner.shape, np.uint8)
    for i in range(3):
        for j in range(3):
            if i == 1 and j == 1:
                continue
            slope = (inner - elev[i : h - 2 + i, j : w - 2 + j]) / math.hypot(i - 1, j - 1)
            better = slope > best
            best = np.where(better, slope, best)
            arg[better] = codes[i, j]
    out[1:-1, 1:-1] = arg
    return out


def test_steepest_descent_matches_the_numpy_form() -> None:
    from generator.geography.streams_earth import _steepest

    rng = np.random.default_rng(5)
    ties = np.round(rng.normal(size=(120, 150)) * 2.0)  # many equal slopes: first one wins
    smooth = _rough(7, (90, 110)).astype(np.float64)
    for e in (ties, smooth):
        got = _steepest(e)
        np.testing.assert_array_equal(got, _steepest_reference(e))
        assert (got != 0).mean() > 0.3


def test_inert_lake_insides_change_nothing_the_streams_read() -> None:
    from scipy.ndimage import binary_erosion

    e = _rough(3, (180, 200))
    water = np.zeros(e.shape, bool)
    water[40:120, 30:150] = True  # a lake with an inside
    water[:, 190:] = True  # sea along the raster's edge
    out = _edge(e.shape) | water
    inner = binary_erosion(water, np.ones((3, 3), bool), border_value=1)
    assert inner.sum() > 5000
    want_f, want_d = _reference(e, out)
    got_f, got_d = flood.fill_depressions(e, out, inner)
    np.testing.assert_array_equal(got_f, want_f)  # no filled value anywhere
    np.testing.assert_array_equal(got_d[~water], want_d[~water])  # no code on land
    assert (got_d[inner] == 0).all()
    with pytest.raises(ValueError, match="inert cells must be outlets"):
        flood.fill_depressions(e, water, ~water)
