"""The built-in model: save/load round trip, load errors, identity, deterministic sampling."""

from __future__ import annotations

import shutil

import pytest
import torch

from generator.errors import ModelLoadError
from generator.models.sr_model import (
    MODEL_FILE,
    SuperResolutionModel,
    random_model,
    resolution_label,
)
from generator.samplers import sample_window

WEIGHTS = "unet/diffusion_pytorch_model.safetensors"
SIZE = 32


def _inputs(seed: int = 0, size: int = SIZE):
    g = torch.Generator().manual_seed(seed)
    parent_up = torch.rand(1, 3, size, size, generator=g) * 2 - 1
    noise = torch.randn(1, 3, size, size, generator=g)
    return parent_up, noise


@pytest.fixture(scope="module")
def saved(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny"
    tiny_model.save_pretrained(path)
    return path


@pytest.fixture
def saved_copy(saved, tmp_path):
    path = tmp_path / "copy"
    shutil.copytree(saved, path)
    return path


# ---- save / load --------------------------------------------------------------------------
def test_save_pretrained_writes_safetensors_and_configs(saved):
    assert (saved / WEIGHTS).is_file()
    assert (saved / "unet" / "config.json").is_file()
    assert (saved / "scheduler" / "scheduler_config.json").is_file()
    assert (saved / MODEL_FILE).is_file()
    assert not list(saved.rglob("*.bin"))


def test_round_trip_gives_the_same_samples_to_float_precision(tiny_model, saved):
    loaded = SuperResolutionModel.from_pretrained(saved)
    parent_up, noise = _inputs()
    a = sample_window(tiny_model, parent_up, noise, 30.0)
    b = sample_window(loaded, parent_up, noise, 30.0)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_round_trip_gives_identical_samples(tiny_model, saved):
    loaded = SuperResolutionModel.from_pretrained(saved)
    parent_up, noise = _inputs()
    a = sample_window(tiny_model, parent_up, noise, 30.0)
    b = sample_window(loaded, parent_up, noise, 30.0)
    assert torch.equal(a, b)


def test_loaded_model_is_deterministic(saved):
    parent_up, noise = _inputs(7)
    a = sample_window(SuperResolutionModel.from_pretrained(saved), parent_up, noise, 30.0)
    b = sample_window(SuperResolutionModel.from_pretrained(saved), parent_up, noise, 30.0)
    assert torch.equal(a, b)


def test_round_trip_keeps_identity_and_info(tiny_model, saved):
    loaded = SuperResolutionModel.from_pretrained(saved)
    assert loaded.identity == tiny_model.identity
    assert loaded.info == tiny_model.info


def test_from_pretrained_accepts_a_string_path(saved):
    assert isinstance(SuperResolutionModel.from_pretrained(str(saved)), SuperResolutionModel)


def test_from_pretrained_of_missing_dir_raises(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ModelLoadError, match="not a directory") as info:
        SuperResolutionModel.from_pretrained(missing)
    assert str(missing) in str(info.value)


def test_from_pretrained_without_unet_weights_raises(saved_copy):
    (saved_copy / WEIGHTS).unlink()
    with pytest.raises(ModelLoadError, match="diffusion_pytorch_model.safetensors") as info:
        SuperResolutionModel.from_pretrained(saved_copy)
    assert str(saved_copy) in str(info.value)


@pytest.mark.parametrize(
    "part", [MODEL_FILE, "unet/config.json", "scheduler/scheduler_config.json"]
)
def test_from_pretrained_without_a_component_names_it(saved_copy, part):
    (saved_copy / part).unlink()
    with pytest.raises(ModelLoadError, match=f"lacks {part}"):
        SuperResolutionModel.from_pretrained(saved_copy)


def test_from_pretrained_of_corrupt_weights_raises(saved_copy):
    (saved_copy / WEIGHTS).write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelLoadError, match="cannot load model"):
        SuperResolutionModel.from_pretrained(saved_copy)


def test_from_pretrained_of_bad_model_json_raises(saved_copy):
    (saved_copy / MODEL_FILE).write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot load model"):
        SuperResolutionModel.from_pretrained(saved_copy)


def test_from_pretrained_of_unknown_model_json_key_raises(saved_copy):
    (saved_copy / MODEL_FILE).write_text('{"model_id": "x", "flavour": 1}')
    with pytest.raises(ModelLoadError):
        SuperResolutionModel.from_pretrained(saved_copy)


# ---- identity -----------------------------------------------------------------------------
def test_identity_is_reproducible_for_the_same_seed(tiny_model):
    assert random_model((8, 16), seed=0, steps=2).identity == tiny_model.identity


def test_identity_names_model_id_and_version(tiny_model):
    assert tiny_model.identity.startswith("random@0+")


def test_identity_changes_when_weights_change(tiny_model):
    other = random_model((8, 16), seed=0, steps=2)
    with torch.no_grad():
        next(other.unet.parameters()).view(-1)[0] += 1e-3
    assert other.identity != tiny_model.identity


def test_identity_digest_differs_between_seeds(tiny_model):
    digest = tiny_model.identity.split("+")[1]
    assert random_model((8, 16), seed=1, steps=2).identity.split("+")[1] != digest


# ---- sampling -----------------------------------------------------------------------------
def test_sample_window_is_deterministic(tiny_model):
    parent_up, noise = _inputs(1)
    a = sample_window(tiny_model, parent_up, noise, 30.0)
    b = sample_window(tiny_model, parent_up.clone(), noise.clone(), 30.0)
    assert torch.equal(a, b)


def test_sample_window_output_shape_and_range(tiny_model):
    parent_up, noise = _inputs(2)
    out = sample_window(tiny_model, parent_up, noise, 30.0)
    assert out.shape == parent_up.shape
    assert out.min() >= -1.0 and out.max() <= 1.0


def test_sample_window_depends_on_noise(tiny_model):
    parent_up, noise = _inputs(3)
    a = sample_window(tiny_model, parent_up, noise, 30.0)
    b = sample_window(tiny_model, parent_up, -noise, 30.0)
    assert not torch.equal(a, b)


def test_sample_window_depends_on_resolution(tiny_model):
    parent_up, noise = _inputs(4)
    a = sample_window(tiny_model, parent_up, noise, 30.0)
    b = sample_window(tiny_model, parent_up, noise, 3000.0)
    assert not torch.equal(a, b)


def test_sample_window_batch_of_one_equals_batched_row(tiny_model):
    p0, n0 = _inputs(5)
    p1, n1 = _inputs(6)
    single = sample_window(tiny_model, p0, n0, 30.0)
    batch = sample_window(tiny_model, torch.cat([p0, p1]), torch.cat([n0, n1]), 30.0)
    torch.testing.assert_close(batch[:1], single, atol=1e-5, rtol=0)


def test_sample_window_rejects_mismatched_shapes(tiny_model):
    parent_up, _ = _inputs()
    _, noise = _inputs(size=SIZE + 2)
    with pytest.raises(ValueError, match="differ"):
        sample_window(tiny_model, parent_up, noise, 30.0)


@pytest.mark.parametrize("size", [(33, 32), (32, 33), (31, 31)])
def test_sample_window_rejects_sizes_not_divisible_by_stride(tiny_model, size):
    t = torch.zeros(1, 3, *size)
    with pytest.raises(ValueError, match="multiple of 2"):
        sample_window(tiny_model, t, t, 30.0)


def test_resolution_label_maps_the_documented_anchors():
    assert float(resolution_label(0.0625)) == pytest.approx(0.0)
    assert float(resolution_label(1.0)) == pytest.approx(160.0)
    assert 800 < float(resolution_label(156543.0)) < 1000


def test_beyond_training_only_below_half_the_finest_trained_resolution(tiny_model):
    finest = tiny_model.info.trained_mpp[0]
    assert not tiny_model.beyond_training(finest)
    assert tiny_model.beyond_training(finest / 2.5)
