"""The global noise field: crops agree, wrap, rows beyond the poles, statistics, portability."""

from __future__ import annotations

import numpy as np
import pytest

from generator.noise import BLOCK, NoiseField
from tests.helpers import run_python, sha256


def test_crop_has_requested_shape_and_dtype():
    a = NoiseField(1).crop(3, 10, 20, 30, 40)
    assert a.shape == (3, 30, 40)
    assert a.dtype == np.float32


def test_overlapping_crops_agree_in_the_overlap():
    f = NoiseField(11)
    a = f.crop(6, 100, 200, 150, 170)
    b = f.crop(6, 130, 250, 150, 170)
    np.testing.assert_array_equal(a[:, 30:, 50:], b[:, :120, :120])


def test_crop_equals_slice_of_a_larger_crop_across_block_borders():
    f = NoiseField(11)
    big = f.crop(5, 0, 0, 4 * BLOCK, 4 * BLOCK)
    small = f.crop(5, BLOCK - 7, 2 * BLOCK - 3, 80, 90)
    np.testing.assert_array_equal(
        small, big[:, BLOCK - 7 : BLOCK + 73, 2 * BLOCK - 3 : 2 * BLOCK + 87]
    )


def test_crop_is_independent_of_call_history():
    a = NoiseField(12).crop(4, 33, 65, 40, 40)
    NoiseField(12).crop(4, 0, 0, 300, 300)  # warm other blocks
    b = NoiseField(12).crop(4, 33, 65, 40, 40)
    np.testing.assert_array_equal(a, b)


def test_crop_across_antimeridian_is_concatenation_of_both_sides():
    f = NoiseField(5)
    z = 2
    width = f.width(z)
    across = f.crop(z, 40, width - 30, 50, 70)
    left = f.crop(z, 40, width - 30, 50, 30)
    right = f.crop(z, 40, 0, 50, 40)
    np.testing.assert_array_equal(across, np.concatenate([left, right], axis=2))


def test_x_is_taken_modulo_grid_width():
    f = NoiseField(5)
    z = 1
    w = f.width(z)
    base = f.crop(z, 7, 13, 20, 20)
    np.testing.assert_array_equal(f.crop(z, 7, 13 + w, 20, 20), base)
    np.testing.assert_array_equal(f.crop(z, 7, 13 - 3 * w, 20, 20), base)


def test_crop_wider_than_the_grid_repeats():
    f = NoiseField(5)
    w = f.width(0)  # 256 at z0
    a = f.crop(0, 0, 0, 8, 2 * w + 10)
    np.testing.assert_array_equal(a[:, :, :w], a[:, :, w : 2 * w])
    np.testing.assert_array_equal(a[:, :, :10], a[:, :, 2 * w :])


def test_crop_with_negative_y_works_and_agrees_with_overlap():
    f = NoiseField(9)
    a = f.crop(3, -100, 0, 150, 64)
    b = f.crop(3, 0, 0, 50, 64)
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a[:, 100:], b)


def test_rows_above_the_pole_are_not_a_copy_of_rows_below():
    f = NoiseField(9)
    above = f.crop(3, -BLOCK, 0, BLOCK, BLOCK)
    below = f.crop(3, 0, 0, BLOCK, BLOCK)
    assert not np.array_equal(above, below)


def test_statistics_are_standard_normal():
    a = NoiseField(3).crop(8, 1000, 2000, 256, 256).ravel().astype(np.float64)
    assert abs(a.mean()) < 0.02
    assert abs(a.std() - 1.0) < 0.02
    assert abs(np.mean(a**3)) < 0.05  # skewness
    assert abs(np.mean(a**4) - 3.0) < 0.1  # kurtosis


def test_neighbouring_pixels_are_uncorrelated():
    a = NoiseField(3).crop(8, 0, 0, 256, 256)[0].astype(np.float64)
    corr_x = np.corrcoef(a[:, :-1].ravel(), a[:, 1:].ravel())[0, 1]
    corr_y = np.corrcoef(a[:-1].ravel(), a[1:].ravel())[0, 1]
    assert abs(corr_x) < 0.03
    assert abs(corr_y) < 0.03


def test_blocks_are_not_repeated():
    a = NoiseField(3).crop(4, 0, 0, BLOCK, 2 * BLOCK)
    assert not np.array_equal(a[:, :, :BLOCK], a[:, :, BLOCK:])


@pytest.mark.parametrize(
    ("other_seed", "other_z"),
    [(4, 6), (3, 7)],
    ids=["seed", "zoom"],
)
def test_different_seed_or_zoom_gives_different_noise(other_seed, other_z):
    a = NoiseField(3).crop(6, 0, 0, 64, 64)
    b = NoiseField(other_seed).crop(other_z, 0, 0, 64, 64)
    assert not np.array_equal(a, b)
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.05


def test_channels_are_different_fields():
    a = NoiseField(3).crop(6, 0, 0, 64, 64)
    assert not np.array_equal(a[0], a[1])


def test_large_seed_is_accepted():
    a = NoiseField(2**63 - 1).crop(2, 0, 0, 8, 8)
    assert np.isfinite(a).all()


@pytest.mark.slow
def test_identical_across_processes():
    code = (
        "import hashlib\n"
        "from generator.noise import NoiseField\n"
        "a = NoiseField(20261123).crop(9, -37, 131000, 90, 120)\n"
        "print(hashlib.sha256(a.tobytes()).hexdigest())\n"
    )
    here = NoiseField(20261123).crop(9, -37, 131000, 90, 120)
    assert run_python(code).strip() == sha256(here)
