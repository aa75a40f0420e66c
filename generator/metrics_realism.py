"""Realism measures (issue 14 §3): does generated imagery look like real imagery of its class?

Every measure compares two *sets* of small patches (64 px by default) at the same m/px: real
photos of a class against generated tiles of that class. The patches are colour-normalised
first (each channel to zero mean and unit standard deviation, then Rec. 601 luma, then unit
standard deviation again): the measures look at structure — how detail is spread over scales,
orientations and places — not at palette or brightness, which the base level and the parent
already fix and which differ between sensors. A grey (panchromatic) photo and an RGB one of the
same ground give the same normalised luma.

* :func:`patch_features` — a fixed-length description of one patch: power per octave, the
  gradient-orientation histogram (rotated to its strongest bin), structure-tensor coherence at
  three scales, local-contrast statistics and the luma distribution's shape;
* :func:`two_sample_test` — a classifier two-sample test (Lopez-Paz & Oquab 2017): k-fold
  cross-validated accuracy of an L2-regularised logistic regression telling the two sets apart
  from their features; 0.5 means the classifier cannot tell them apart, 1.0 that it always can;
* :func:`octave_spectrum`, :func:`spectrum_slope`, :func:`spectrum_distance` — radially averaged
  power per octave (log10), its slope, and the mean |Δ log10 power| between two sets' mean
  spectra (0 = the same spectrum; 0.3 = a factor 2 of power per octave on average);
* :func:`coherence_values`, :func:`coherence_distance` — energy-weighted structure-tensor
  coherence per patch (1: straight stripes; near 0: isotropic texture such as moss) and the
  Wasserstein-1 distance between two sets' distributions of it;
* :func:`compare` — all of the above for two sets at once.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.stats import wasserstein_distance

from .metrics import radial_spectrum

PATCH = 64
#: octave bands of a patch's spectrum, cycles/px: [1/32, 1/16), … , [1/4, 1/2]
OCTAVES = ((1 / 32, 1 / 16), (1 / 16, 1 / 8), (1 / 8, 1 / 4), (1 / 4, 0.5))


def structure_tensor(lum: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (coherence, energy, orientation of the gradient) of the structure tensor.

    Sobel gradients, Gaussian integration at ``sigma`` px; coherence
    ``√((Jxx − Jyy)² + 4 Jxy²) / (Jxx + Jyy)`` is 1 for straight stripes and near 0 for
    isotropic texture (shared with ``bench/layout_imagery.py``, which reports it per tile).
    """
    gx = ndimage.sobel(lum, 1) / 8.0
    gy = ndimage.sobel(lum, 0) / 8.0
    jxx = ndimage.gaussian_filter(gx * gx, sigma)
    jyy = ndimage.gaussian_filter(gy * gy, sigma)
    jxy = ndimage.gaussian_filter(gx * gy, sigma)
    tr = jxx + jyy
    coh = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (tr + 1e-6)
    theta = 0.5 * np.arctan2(2 * jxy, jxx - jyy)  # dominant gradient direction
    return coh, tr, theta


def normalised_luma(patch: np.ndarray) -> np.ndarray:
    """Return the colour-normalised luma of an (h, w, 3) or (h, w) patch (zero mean, unit std).

    Each channel is normalised on its own first, so a tint, a gain or a sensor's band
    response does not survive; a flat patch gives zeros.
    """
    a = patch.astype(np.float64)
    if a.ndim == 2:
        a = a[..., None]
    a = (a - a.mean(axis=(0, 1))) / (a.std(axis=(0, 1)) + 1e-6)
    if a.shape[2] >= 3:
        lum = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    else:
        lum = a[..., 0]
    return (lum - lum.mean()) / (lum.std() + 1e-6)


def patches(img: np.ndarray, size: int = PATCH, stride: int | None = None) -> list[np.ndarray]:
    """Cut an image into ``size``² patches on a grid of ``stride`` (default: no overlap)."""
    stride = stride or size
    h, w = img.shape[:2]
    return [
        img[y : y + size, x : x + size]
        for y in range(0, h - size + 1, stride)
        for x in range(0, w - size + 1, stride)
    ]


def octave_spectrum(lum: np.ndarray) -> np.ndarray:
    """Return log10 of the radially averaged power in each of :data:`OCTAVES` (Hann window).

    ``lum`` should be normalised (:func:`normalised_luma`), so the figures are shares of the
    patch's variance rather than of its contrast.
    """
    f, p = radial_spectrum(lum)
    out = []
    for lo, hi in OCTAVES:
        sel = (f >= lo) & (f <= hi)
        out.append(np.log10(p[sel].mean() + 1e-12))
    return np.array(out)


def spectrum_slope(spectrum: np.ndarray) -> float:
    """Return the least-squares slope of log2 power per octave (0: white; −2: 1/f² noise)."""
    x = np.arange(len(spectrum), dtype=np.float64)
    return float(np.polyfit(x, spectrum / np.log10(2.0), 1)[0])


def _orientation_histogram(lum: np.ndarray, bins: int = 8) -> np.ndarray:
    """Gradient-magnitude-weighted histogram of gradient orientation (mod π), normalised and
    rolled so the strongest bin comes first: a rotated field is the same field."""
    gx = ndimage.sobel(lum, 1)
    gy = ndimage.sobel(lum, 0)
    mag = np.hypot(gx, gy)
    ang = np.mod(np.arctan2(gy, gx), np.pi)
    idx = np.minimum((ang / np.pi * bins).astype(int), bins - 1)
    h = np.bincount(idx.ravel(), weights=mag.ravel(), minlength=bins)
    h = h / (h.sum() + 1e-9)
    return np.roll(h, -int(np.argmax(h)))


def _coherence(lum: np.ndarray, sigma: float) -> float:
    coh, tr, _ = structure_tensor(lum, sigma)
    return float((coh * tr).sum() / (tr.sum() + 1e-9))


def patch_features(patch: np.ndarray) -> np.ndarray:
    """Return the feature vector of one patch (see the module docstring), 26 floats."""
    lum = normalised_luma(patch)
    spec = octave_spectrum(lum)
    hist = _orientation_histogram(lum)
    coh, tr, _ = structure_tensor(lum, 2.0)
    q = np.quantile(coh, [0.25, 0.5, 0.75])
    cohs = [_coherence(lum, s) for s in (1.0, 2.0, 4.0)]
    # local contrast: std in 8-px neighbourhoods, its mean and spread
    m1 = ndimage.uniform_filter(lum, 8)
    m2 = ndimage.uniform_filter(lum * lum, 8)
    local = np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
    g = np.hypot(ndimage.sobel(lum, 1), ndimage.sobel(lum, 0))
    gq = np.quantile(g, [0.5, 0.9]) + 1e-6
    v = lum.ravel()
    skew = float(np.mean(v**3))
    kurt = float(np.mean(v**4))
    return np.concatenate(
        [
            spec,
            [spectrum_slope(spec)],
            hist,
            cohs,
            q,
            [float(coh.std())],
            [local.mean(), local.std() / (local.mean() + 1e-6)],
            [np.log(gq[1] / gq[0]), np.log(g.mean() + 1e-6)],
            [skew, np.log(kurt + 1e-6)],  # a flat patch has kurtosis 0
        ]
    ).astype(np.float64)


#: column groups of :func:`patch_features`: which kind of cue tells two sets apart
GROUPS = {
    "spectrum": list(range(0, 5)),
    "orientation": list(range(5, 13)),
    "coherence": list(range(13, 20)),
    "contrast": list(range(20, 26)),
}


def features(ps: list[np.ndarray]) -> np.ndarray:
    """Return the (n, d) feature matrix of a list of patches."""
    if not ps:
        return np.zeros((0, 26))
    return np.nan_to_num(np.stack([patch_features(p) for p in ps]), posinf=0.0, neginf=0.0)


def _logistic_fit(x: np.ndarray, y: np.ndarray, l2: float, iters: int = 25) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method (IRLS); returns weights + bias."""
    X = np.hstack([x, np.ones((len(x), 1))])
    beta = np.zeros(X.shape[1])
    reg = np.full(X.shape[1], l2)
    reg[-1] = 0.0  # the bias is not shrunk
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ beta, -30, 30)))
        grad = X.T @ (p - y) + reg * beta
        hess = (X * (p * (1 - p))[:, None]).T @ X + np.diag(reg) + 1e-9 * np.eye(X.shape[1])
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-6:
            break
    return beta


def two_sample_test(
    a: np.ndarray, b: np.ndarray, folds: int = 5, seed: int = 0, l2: float = 1.0
) -> dict[str, float]:
    """Return the cross-validated accuracy of telling feature sets ``a`` and ``b`` apart.

    The larger set is subsampled to the smaller one's size (so chance is exactly 0.5), the
    features standardised on each training fold, and an L2-regularised logistic regression
    fitted (identical feature rows are kept in one fold, so two copies of one set score
    0.5); ``accuracy`` is over every held-out prediction, ``se`` its binomial standard error
    ``√(acc (1 − acc) / n)``, ``n`` the number of predictions. Fewer than 8 patches a side
    gives NaN: no test.
    """
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    if n < 8:
        return {"accuracy": float("nan"), "se": float("nan"), "n": 2 * n}
    a = a[rng.permutation(len(a))[:n]]
    b = b[rng.permutation(len(b))[:n]]
    x = np.vstack([a, b])
    y = np.r_[np.zeros(n), np.ones(n)]
    order = rng.permutation(2 * n)
    x, y = x[order], y[order]
    k = max(2, min(folds, n))
    # identical rows share a fold: a patch in both sets is never judged by its own twin
    _, group = np.unique(x, axis=0, return_inverse=True)
    fold = rng.permutation(group.max() + 1)[group.ravel()] % k
    correct = 0
    for f in range(k):
        tr, te = fold != f, fold == f
        mu = x[tr].mean(axis=0)
        sd = x[tr].std(axis=0) + 1e-9
        beta = _logistic_fit((x[tr] - mu) / sd, y[tr], l2)
        xt = np.hstack([(x[te] - mu) / sd, np.ones((int(te.sum()), 1))])
        correct += int(((xt @ beta > 0) == (y[te] > 0.5)).sum())
    acc = correct / (2 * n)
    var = max(acc * (1 - acc), 1.0 / (2 * n))  # never 0: 1.0 on 2n predictions is not exact
    return {"accuracy": acc, "se": float(np.sqrt(var / (2 * n))), "n": 2 * n}


def spectrum_distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Return mean |Δ log10 power| over the octaves between two sets' mean spectra."""
    sa = np.mean([octave_spectrum(normalised_luma(p)) for p in a], axis=0)
    sb = np.mean([octave_spectrum(normalised_luma(p)) for p in b], axis=0)
    return float(np.mean(np.abs(sa - sb)))


def coherence_values(ps: list[np.ndarray], sigma: float = 2.0) -> np.ndarray:
    """Return each patch's energy-weighted structure-tensor coherence (σ = ``sigma`` px)."""
    return np.array([_coherence(normalised_luma(p), sigma) for p in ps])


def coherence_distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Return the Wasserstein-1 distance between two sets' coherence distributions."""
    return float(wasserstein_distance(coherence_values(a), coherence_values(b)))


def compare(real: list[np.ndarray], gen: list[np.ndarray], seed: int = 0) -> dict:
    """Return every realism figure of ``gen`` against ``real`` (lists of patches).

    Keys: ``accuracy``, ``se``, ``n`` (the two-sample test), ``by_group`` (its accuracy on
    each of :data:`GROUPS` alone: which cue gives the generated set away), ``spectrum``
    (mean |Δ log10 power| per octave), ``slope_real``/``slope_gen`` (spectral slope, log2 power per
    octave), ``coherence`` (W1 distance), ``coh_real``/``coh_gen`` (mean coherence),
    ``n_real``/``n_gen`` (patch counts).
    """
    if not real or not gen:
        return {"n_real": len(real), "n_gen": len(gen)}
    fr, fg = features(real), features(gen)
    out: dict = two_sample_test(fr, fg, seed=seed)
    out["by_group"] = {
        g: two_sample_test(fr[:, cols], fg[:, cols], seed=seed)["accuracy"]
        for g, cols in GROUPS.items()
    }
    sr = np.mean([octave_spectrum(normalised_luma(p)) for p in real], axis=0)
    sg = np.mean([octave_spectrum(normalised_luma(p)) for p in gen], axis=0)
    cr, cg = coherence_values(real), coherence_values(gen)
    out.update(
        spectrum=float(np.mean(np.abs(sr - sg))),
        slope_real=spectrum_slope(sr),
        slope_gen=spectrum_slope(sg),
        coherence=float(wasserstein_distance(cr, cg)),
        coh_real=float(cr.mean()),
        coh_gen=float(cg.mean()),
        n_real=len(real),
        n_gen=len(gen),
    )
    return out
