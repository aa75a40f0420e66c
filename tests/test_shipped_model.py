"""The weights shipped in the repository: what the model card promises about them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from generator import metrics
from generator.models.sr_model import (
    DEFAULT_MODEL,
    PREVIOUS_MODEL,
    SuperResolutionModel,
    default_model_path,
    weights_path,
)
from generator.samplers.ddim import sample_window
from generator.upscale import upscale_array


@pytest.fixture(scope="module")
def shipped() -> SuperResolutionModel:
    return SuperResolutionModel.from_pretrained(default_model_path())


def test_the_default_is_v2_and_v1_stays_for_comparison():
    assert default_model_path() == weights_path(DEFAULT_MODEL)
    assert DEFAULT_MODEL == "orbis-sr-v2" and PREVIOUS_MODEL == "orbis-sr-v1"
    v1 = SuperResolutionModel.from_pretrained(weights_path(PREVIOUS_MODEL))
    # v1's folder predates pixel_unshuffle: it loads as pixel space, bytes and identity unchanged
    assert v1.info.pixel_unshuffle == 1 and v1.info.num_inference_steps == 4
    assert v1.identity == "orbis-sr@1+5cce447027a0"


def test_shipped_weights_fit_the_budget():
    names = (DEFAULT_MODEL, PREVIOUS_MODEL, "orbis-sr-v2", "orbis-sr-v3")
    files = [p for name in set(names) for p in weights_path(name).rglob("*")]
    weights = [p for p in files if p.is_file() and p.suffix in (".safetensors", ".bin", ".pt")]
    assert weights and all(p.suffix == ".safetensors" for p in weights)
    assert sum(p.stat().st_size for p in weights) <= 50 * 2**20


def test_v2_is_the_distilled_one_step_model(shipped):
    info = shipped.info
    assert info.model_id == "orbis-sr" and info.version == "2"
    assert info.num_inference_steps == 1 and info.pixel_unshuffle == 2
    assert info.trained_mpp[0] == pytest.approx(0.1)
    cfg = json.loads(info.notes["config"])
    assert cfg["student_steps"] == 1 and cfg["teacher_sampling_steps"] == 4
    assert shipped.identity.startswith("orbis-sr@2+")
    assert (
        shipped.identity
        != SuperResolutionModel.from_pretrained(weights_path(PREVIOUS_MODEL)).identity
    )


def test_v2_window_is_deterministic_across_loads(shipped):
    g = torch.Generator().manual_seed(0)
    parent_up = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    noise = torch.randn(1, 3, 64, 64, generator=g)
    again = SuperResolutionModel.from_pretrained(default_model_path())
    a = sample_window(shipped, parent_up, noise, 0.84)
    b = sample_window(again, parent_up, noise, 0.84)
    assert torch.equal(a, b)


def test_v2_adds_detail_and_keeps_the_parent(shipped):
    """On a smooth real-looking parent, one step adds texture but keeps the box means."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    base = 100 + 40 * np.sin(xx / 9.0) + 30 * np.cos(yy / 7.0)
    img = np.clip(base[..., None] + rng.normal(0, 6, (64, 64, 3)), 0, 255).astype(np.uint8)
    out = upscale_array(img, 17, shipped, lat=45.0)
    assert out.shape == (128, 128, 3)
    assert metrics.parent_psnr(img, out) >= 33.0  # the figure for real photos
    assert np.abs(out.mean((0, 1)) - img.mean((0, 1))).max() <= 1.0  # no colour shift
    bilinear = np.kron(img.astype(np.float64), np.ones((2, 2, 1)))
    assert np.abs(out - bilinear).mean() > 0.5  # not a plain interpolation


def test_v3_is_conditioned_and_v2_stays_loadable():
    from generator.models import conditions
    from generator.models.sr_model import CONDITIONED_MODEL

    v3 = SuperResolutionModel.from_pretrained(weights_path(CONDITIONED_MODEL))
    v2 = SuperResolutionModel.from_pretrained(weights_path("orbis-sr-v2"))
    assert v3.conditioned and v3.info.conditions == conditions.VERSION
    assert v3.info.version == "3" and v3.identity.startswith("orbis-sr@3+")
    assert v3.info.num_inference_steps == 1 and v3.info.notes["dataset"] == "orbis data v3"
    assert not v2.conditioned and v2.identity.startswith("orbis-sr@2+")
    extra = len(conditions.FEATURES)
    assert v3.unet.config.in_channels == v2.unet.config.in_channels + extra
    cfg = json.loads(v3.info.notes["config"])
    minutes = float(v3.info.notes["teacher_minutes"]) + float(v3.info.notes["distil_minutes"])
    assert cfg["conditions"] and minutes <= 120.0  # the CPU training budget


def test_v3_follows_its_water_feature():
    """Told that the left half is water, v3 paints it darker and flatter than the land half."""
    from generator.models import conditions
    from generator.models.sr_model import CONDITIONED_MODEL
    from generator.training import labels

    v3 = SuperResolutionModel.from_pretrained(weights_path(CONDITIONED_MODEL))
    g = torch.Generator().manual_seed(0)
    grey = torch.full((1, 3, 64, 64), -0.2) + 0.02 * torch.randn(1, 3, 64, 64, generator=g)
    noise = torch.randn(1, 3, 64, 64, generator=g)
    st = np.zeros((len(labels.CHANNELS), 64, 64), np.float32)
    st[0, :, :32] = 1.0
    have = np.zeros(len(labels.CHANNELS), bool)
    have[0] = True
    feats = torch.from_numpy(conditions.features(st, have, 2.0))[None]
    told = sample_window(v3, grey, noise, 2.0, features=feats)
    blind = sample_window(v3, grey, noise, 2.0)
    assert not torch.equal(told, blind)
    d = (told - blind)[0].mean(0)
    assert d[:, :32].mean() < d[:, 32:].mean()  # water darker than land, relative to blind
