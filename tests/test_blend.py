"""Ramp-weighted blending of windows and the parent correction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generator.blend import blend, parent_correct, ramp, window_weight
from generator.planner import Geometry, Rect, Window
from generator.resample import box_down2

G = Geometry(256, 32)
T, M, W = G.tile, G.margin, G.window


def _random_windows(wins, seed=0):
    rng = np.random.default_rng(seed)
    return {w: rng.uniform(-1, 1, (3, W, W)).astype(np.float32) for w in wins}


def _weight_sum(z: int, rect: Rect, wins) -> np.ndarray:
    """Sum of the windows' weights placed on the rect (no wrap: interior windows only)."""
    acc = np.zeros((rect.h, rect.w), np.float64)
    for w in wins:
        r = G.window_rect(w)
        wt = window_weight(G, w)
        ys = slice(max(r.y0, rect.y0), min(r.y0 + r.h, rect.y0 + rect.h))
        xs = slice(max(r.x0, rect.x0), min(r.x0 + r.w, rect.x0 + rect.w))
        acc[ys.start - rect.y0 : ys.stop - rect.y0, xs.start - rect.x0 : xs.stop - rect.x0] += wt[
            ys.start - r.y0 : ys.stop - r.y0, xs.start - r.x0 : xs.stop - r.x0
        ]
    return acc


# ---- ramp and weights ---------------------------------------------------------------------
@pytest.mark.parametrize("margin", [8, 16, 32, 64])
def test_ramp_is_zero_on_first_two_and_one_on_last_two_pixels(margin):
    r = ramp(margin)
    assert r.shape == (margin,)
    assert r[0] == 0.0 and r[1] == 0.0
    assert r[-1] == 1.0 and r[-2] == 1.0


@pytest.mark.parametrize("margin", [8, 32])
def test_ramp_rises_monotonically(margin):
    r = ramp(margin)
    assert np.all(np.diff(r) >= 0)
    assert np.all(np.diff(r[1:-1]) > 0)


@pytest.mark.parametrize("margin", [8, 32])
def test_ramp_plus_its_mirror_is_one(margin):
    r = ramp(margin).astype(np.float64)
    np.testing.assert_allclose(r + r[::-1], 1.0, atol=1e-6)


def test_weights_of_two_horizontal_windows_sum_to_one_in_the_overlap():
    a, b = Window(5, 3, 4), Window(5, 4, 4)
    overlap = Rect(4 * T + M, 4 * T, T - M, M)  # rows where neither ramps vertically
    s = _weight_sum(5, overlap, [a, b])
    np.testing.assert_allclose(s, 1.0, atol=1e-6)


def test_weights_of_four_windows_sum_to_one_over_a_tile_and_border():
    wins = [Window(5, c, r) for r in (3, 4) for c in (3, 4)]
    rect = Rect(4 * T - 2, 4 * T - 2, T + 4, T + 4)
    s = _weight_sum(5, rect, wins)
    np.testing.assert_allclose(s, 1.0, atol=1e-6)


def test_row_zero_window_has_no_top_ramp():
    w0, w1 = window_weight(G, Window(5, 3, 0)), window_weight(G, Window(5, 3, 1))
    assert np.all(w0[:2, M:T] == 1.0)
    assert np.all(w1[:2, :] == 0.0)


def test_window_edges_get_no_weight():
    w = window_weight(G, Window(5, 3, 3))
    assert np.all(w[:2] == 0) and np.all(w[-2:] == 0)
    assert np.all(w[:, :2] == 0) and np.all(w[:, -2:] == 0)


# ---- blend --------------------------------------------------------------------------------
def test_blend_of_constant_windows_is_that_constant():
    wins = {
        w: np.full((3, W, W), 0.375, np.float32)
        for w in [Window(5, c, r) for r in (3, 4) for c in (3, 4)]
    }
    out = blend(G, 5, Rect(4 * T - 2, 4 * T - 2, T + 4, T + 4), wins)
    assert out.shape == (3, T + 4, T + 4)
    np.testing.assert_allclose(out, 0.375, atol=1e-6)


def test_blend_equals_single_window_where_only_it_has_weight():
    wins = _random_windows([Window(5, c, r) for r in (3, 4) for c in (3, 4)])
    out = blend(G, 5, Rect(4 * T + M, 4 * T + M, T - M, T - M), wins)
    own = wins[Window(5, 4, 4)][:, M:T, M:T]
    np.testing.assert_allclose(out, own, atol=1e-6)


def test_blend_over_uncovered_region_raises():
    wins = _random_windows([Window(5, 4, 4)])
    with pytest.raises(ValueError, match="not covered"):
        blend(G, 5, Rect(0, 0, 16, 16), wins)


def test_blend_over_zero_weight_edge_raises():
    # the first two columns of a lone window carry no weight
    wins = _random_windows([Window(5, 4, 4)])
    with pytest.raises(ValueError):
        blend(G, 5, Rect(4 * T + 100, 4 * T, 10, 2), wins)


def test_blend_is_independent_of_dict_order():
    keys = [Window(5, c, r) for r in (3, 4) for c in (3, 4)]
    wins = _random_windows(keys, seed=3)
    rect = Rect(4 * T - 2, 4 * T - 2, T + 4, T + 4)
    a = blend(G, 5, rect, {k: wins[k] for k in keys})
    b = blend(G, 5, rect, {k: wins[k] for k in reversed(keys)})
    c = blend(G, 5, rect, {k: wins[k] for k in (keys[2], keys[0], keys[3], keys[1])})
    assert a.tobytes() == b.tobytes() == c.tobytes()


def test_blend_wraps_windows_across_the_antimeridian():
    z = 2
    n = 1 << z
    keys = [Window(z, c, r) for r in (0, 1) for c in (n - 1, 0)]
    wins = {w: np.full((3, W, W), float(w.col == 0), np.float32) for w in keys}
    out = blend(G, z, Rect(T - 2, -2, T + 4, T + 4), wins)
    # the last column's window reaches over the antimeridian into tile 0's left margin only
    np.testing.assert_allclose(out[:, :, :2], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[:, :, M + 2 :], 1.0, atol=1e-6)


# ---- parent correction --------------------------------------------------------------------
def _smooth(seed: int, size: int, amp: float = 0.4) -> np.ndarray:
    """A smooth random (3, size, size) field: a few long-wavelength sinusoids."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    out = np.zeros((3, size, size))
    for c in range(3):
        for _ in range(4):
            fy, fx = rng.uniform(0.2, 1.5, 2)
            ph = rng.uniform(0, 2 * np.pi)
            out[c] += amp / 4 * np.sin(2 * np.pi * (fy * yy + fx * xx) + ph)
    return out.astype(np.float32)


def test_parent_correct_returns_the_tile_without_border():
    out = parent_correct(_smooth(0, T + 4), _smooth(1, T // 2 + 2))
    assert out.shape == (3, T, T)


def test_parent_correct_makes_box_down_match_the_parent():
    blended = _smooth(0, T + 4)
    parent = _smooth(1, T // 2 + 2)
    before = box_down2(torch.from_numpy(blended)[None])[0, :, 1:-1, 1:-1].numpy()
    out = parent_correct(blended, parent)
    after = box_down2(torch.from_numpy(out)[None])[0].numpy()
    target = parent[:, 1:-1, 1:-1]
    assert np.abs(before - target).max() > 0.2  # the example really needed correcting
    assert np.abs(after - target).max() < 0.01


def test_parent_correct_keeps_high_frequencies():
    rng = np.random.default_rng(5)
    detail = rng.normal(0, 0.05, (3, T + 4, T + 4)).astype(np.float32)
    blended = _smooth(0, T + 4) + detail
    parent = box_down2(torch.from_numpy(blended)[None])[0].numpy()
    out = parent_correct(blended, parent)
    # the parent already agrees: nothing to correct, the detail stays
    np.testing.assert_allclose(out, blended[:, 2:-2, 2:-2], atol=1e-5)
