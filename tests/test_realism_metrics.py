"""The realism measures (generator.metrics_realism) on inputs whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from generator import metrics_realism as R


def _noise(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """White-noise RGB patches (independent per pixel)."""
    return [rng.normal(128, 40, size=(64, 64, 3)) for _ in range(n)]


def _stripes(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Straight stripes at random angles, periods and phases, lightly noisy."""
    yy, xx = np.mgrid[:64, :64]
    out = []
    for _ in range(n):
        t, period = rng.uniform(0, np.pi), rng.uniform(6, 12)
        v = np.sin(2 * np.pi * (xx * np.cos(t) + yy * np.sin(t)) / period + rng.uniform(0, 6))
        g = 128 + 50 * v + rng.normal(0, 5, size=v.shape)
        out.append(np.repeat(g[..., None], 3, axis=2))
    return out


def _power_law(rng: np.random.Generator, beta: float, size: int = 64) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as f^-beta."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    spec = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) * f ** (-beta / 2)
    spec[0, 0] = 0
    return np.real(np.fft.ifft2(spec))


def test_same_distribution_is_indistinguishable() -> None:
    """Two draws of one distribution: accuracy within 3 se of 0.5, distances near 0."""
    rng = np.random.default_rng(1)
    out = R.compare(_noise(rng, 60), _noise(rng, 60))
    assert abs(out["accuracy"] - 0.5) <= 3 * out["se"] + 0.02
    assert out["spectrum"] < 0.05
    assert out["coherence"] < 0.02


def test_identical_sets_score_chance() -> None:
    """The same set twice: exactly 0.5 (a patch is never judged by its own twin), distances 0."""
    rng = np.random.default_rng(2)
    ps = _noise(rng, 40)
    out = R.compare(ps, ps)
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["spectrum"] == 0.0 and out["coherence"] == 0.0


def test_noise_against_stripes_is_told_apart() -> None:
    """Noise vs stripes: accuracy near 1, coherence far apart (stripes ≈ 1)."""
    rng = np.random.default_rng(3)
    out = R.compare(_noise(rng, 50), _stripes(rng, 50))
    assert out["accuracy"] >= 0.95
    assert out["coh_gen"] > 0.9 > 0.4 > out["coh_real"]
    assert out["coherence"] > 0.5
    assert out["spectrum"] > 0.3


def test_colour_normalisation_ignores_gain_and_tint() -> None:
    """A patch and the same patch with another gain, offset and tint per channel: same features."""
    rng = np.random.default_rng(4)
    p = rng.normal(128, 30, size=(64, 64, 3))
    q = p * np.array([0.5, 1.2, 2.0]) + np.array([10.0, -20.0, 5.0])
    np.testing.assert_allclose(R.patch_features(p), R.patch_features(q), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_spectrum_slope_of_known_noise(beta: float) -> None:
    """White noise has slope 0 and f^-2 noise slope −2 (log2 power per octave), ±0.35."""
    rng = np.random.default_rng(5)
    specs = [R.octave_spectrum(R.normalised_luma(_power_law(rng, beta))) for _ in range(20)]
    assert R.spectrum_slope(np.mean(specs, axis=0)) == pytest.approx(-beta, abs=0.35)


def test_too_few_patches_is_no_test() -> None:
    """Fewer than 8 patches a side gives NaN rather than a figure from noise."""
    rng = np.random.default_rng(6)
    out = R.two_sample_test(rng.normal(size=(5, 3)), rng.normal(size=(50, 3)))
    assert np.isnan(out["accuracy"])


def test_patches_grid() -> None:
    """A 256² image gives 16 patches of 64², 49 with half overlap."""
    img = np.zeros((256, 256, 3))
    assert len(R.patches(img)) == 16
    assert len(R.patches(img, stride=32)) == 49


def test_feature_groups_cover_every_feature() -> None:
    """The cue groups partition the feature vector, and stripes are given away by coherence."""
    rng = np.random.default_rng(7)
    n = len(R.patch_features(_noise(rng, 1)[0]))
    assert sorted(c for cols in R.GROUPS.values() for c in cols) == list(range(n))
    out = R.compare(_noise(rng, 30), _stripes(rng, 30))
    assert out["by_group"]["coherence"] >= 0.95


def test_flat_patches_give_finite_features() -> None:
    """A flat patch (snow, sea, a blown-out roof) gives finite features, not NaN or inf."""
    feats = R.features([np.full((64, 64, 3), 200.0), np.zeros((64, 64, 3))])
    assert np.isfinite(feats).all()
