"""The compiled distance transform equals scipy's bit for bit (generator.geography.edt)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from generator.geography.edt import distance_transform_edt


@pytest.mark.parametrize("shape,share", [((97, 131), 0.02), ((64, 64), 0.5), ((200, 31), 0.001)])
def test_equals_scipy_on_random_masks(shape, share):
    rng = np.random.default_rng(shape[0])
    for _ in range(5):
        mask = rng.random(shape) > share  # True: distance wanted; False: the background
        mask.flat[rng.integers(mask.size)] = False
        got = distance_transform_edt(mask)
        assert got.dtype == np.float64
        assert np.array_equal(got, ndimage.distance_transform_edt(mask))


def test_equals_scipy_on_shapes_with_ties():
    """Discs, lines and lone pixels: many pixels equidistant from several background pixels."""
    yy, xx = np.mgrid[0:300, 0:257]
    mask = np.ones((300, 257), bool)
    mask[(yy - 150) ** 2 + (xx - 100) ** 2 < 40**2] = False
    mask[:, 250] = False
    mask[10, 10] = mask[290, 5] = mask[0, 256] = False
    assert np.array_equal(distance_transform_edt(mask), ndimage.distance_transform_edt(mask))


def test_equals_scipy_on_real_water():
    from generator.geography import grid
    from generator.geography.earth import EarthGeography

    geo = EarthGeography(0)
    rect = grid.tile_rect(13, 4306, 2914, 256)  # Lake Como's shore at z13
    land = geo.water_kind(13, rect) == 0
    assert land.any() and (~land).any()
    assert np.array_equal(distance_transform_edt(land), ndimage.distance_transform_edt(land))


def test_a_mask_without_background_is_an_error():
    with pytest.raises(ValueError, match="no background"):
        distance_transform_edt(np.ones((4, 4), bool))
