"""The training set builder, the pair sampler and both training phases (tiny, on the real data)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from generator.cli import main
from generator.models.sr_model import SuperResolutionModel, build_scheduler, build_unet
from generator.resample import box_down2_np
from generator.samplers.ddim import pixel_unshuffle, sample_window
from generator.training import data
from generator.training.dataset import PairSampler
from generator.training.train import (
    TrainConfig,
    _run_phase,
    ddim_one_step,
    spectral_loss,
    teacher_sample,
    timesteps,
    train,
)

pytestmark = pytest.mark.slow


def _fake_wheel(path: Path, size: tuple[int, int] = (120, 100)) -> Path:
    """A stand-in for deepforest's wheel: the same member names, small random images."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zf:
        for file, _site in data.NEON_FILES.values():
            buf = io.BytesIO()
            arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(arr).save(buf, format="PNG")
            zf.writestr(f"deepforest/data/{file}", buf.getvalue())
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    wheel = _fake_wheel(root / "deepforest-2.1.0-py3-none-any.whl")
    data.build(root / "set", wheel=wheel)
    return root / "set"


def test_build_writes_every_source_with_its_licence(built):
    manifest = json.loads((built / data.MANIFEST).read_text())
    assert manifest["version"] == data.DATASET_VERSION
    names = {e["name"] for e in manifest["entries"]}
    assert names == {"bluemarble-7km", "sentinel2-10m", "landsat8-30m", "landsat8-15m"} | set(
        data.NEON_FILES
    )
    for e in manifest["entries"]:
        assert (built / e["file"]).is_file()
        assert e["licence"] and e["source"] and e["mpp"] > 0
    neon = [e for e in manifest["entries"] if e["name"].startswith("neon")]
    assert {e["mpp"] for e in neon} == {0.1}


def test_holdout_is_disjoint_from_training(built):
    train_scenes = {s.name: s for s in data.load(built, "train")}
    held = {s.name: s for s in data.load(built, "holdout")}
    # a held-out image is never read in training; the others are cut into two column ranges
    assert "neon-soap-061" in held and "neon-soap-061" not in train_scenes
    for name in ("neon-yell-541", "sentinel2-10m"):
        w_train = train_scenes[name].rgb.shape[1]
        w_held = held[name].rgb.shape[1]
        assert w_held == pytest.approx((w_train + w_held) * data.HOLDOUT_FRACTION, abs=1)
    # the NEON strips are the right-hand columns of the source image (fake wheel, seed 0)
    with zipfile.ZipFile(next(built.parent.glob("*.whl"))) as zf:
        file = data.NEON_FILES["neon-yell-541"][0]
        src = np.asarray(Image.open(io.BytesIO(zf.read(f"deepforest/data/{file}"))).convert("RGB"))
    got = np.rint(held["neon-yell-541"].rgb * 255).astype(np.uint8)
    assert np.array_equal(got, src[:, -got.shape[1] :])


def test_load_without_a_built_set_names_the_fix(tmp_path):
    with pytest.raises(data.DataError, match="orbis data"):
        data.load(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        data.load(tmp_path, "test")


def test_a_broken_wheel_is_a_one_line_error(tmp_path):
    bad = tmp_path / "deepforest-2.1.0-py3-none-any.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(data.DataError, match="cannot read NEON imagery"):
        data.neon_images(bad)
    r = CliRunner().invoke(main, ["data", "--out", str(tmp_path / "o"), "--wheel", str(bad)])
    assert r.exit_code == 2
    assert "cannot read NEON imagery" in r.output and "Traceback" not in r.output


def test_fetch_wheel_reuses_a_cached_wheel_without_pip(tmp_path):
    cached = _fake_wheel(tmp_path / "deepforest-2.1.0-py3-none-any.whl")
    assert data.fetch_wheel(data.NEON_WHEEL, tmp_path) == cached


def test_cli_data_builds_the_set(tmp_path, built):
    wheel = next(built.parent.glob("*.whl"))
    r = CliRunner().invoke(main, ["data", "--out", str(tmp_path / "o"), "--wheel", str(wheel)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / data.MANIFEST).is_file()
    assert "holdout" in r.output and "neon-soap-061.holdout.png" in r.output


def test_pairs_are_box_consistent_without_kernel_augmentation(built):
    s = PairSampler(data.load(built, "train"), crop=16, seed=3, other_kernels=0.0, jitter=0.0)
    kid, par, mpp = s.sample(8)
    down = np.stack([box_down2_np(k) for k in kid.permute(0, 2, 3, 1).numpy()])
    assert np.allclose(down, par.permute(0, 2, 3, 1).numpy(), atol=1e-5)
    assert all(any(abs(m / lv.mpp - 1) < 1e-6 for lv in s.levels) for m in mpp.tolist())


def test_other_kernels_change_the_parent(built):
    s = PairSampler(data.load(built, "train"), crop=16, seed=3, other_kernels=1.0, jitter=0.0)
    kid, par, _ = s.sample(8)
    down = np.stack([box_down2_np(k) for k in kid.permute(0, 2, 3, 1).numpy()])
    assert not np.allclose(down, par.permute(0, 2, 3, 1).numpy(), atol=1e-3)
    # still a downsampling of the same child: close on average
    assert np.abs(down - par.permute(0, 2, 3, 1).numpy()).mean() < 0.1


def _tiny(unshuffle: int = 2, steps: int = 1) -> SuperResolutionModel:
    from generator.models.sr_model import ModelInfo

    torch.manual_seed(0)
    unet = build_unet((8, 16), add_attention=False, unshuffle=unshuffle)
    info = ModelInfo(
        model_id="t", version="0", num_inference_steps=steps, pixel_unshuffle=unshuffle
    )
    return SuperResolutionModel(unet, build_scheduler(), info)


@pytest.mark.parametrize("steps", [1, 4])
def test_the_trained_update_is_the_sampler_update(steps):
    """What distillation trains (batched, differentiable) is what the sampler computes."""
    m = _tiny(steps=steps)
    g = torch.Generator().manual_seed(1)
    par = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    noise = torch.randn(1, 3, 32, 32, generator=g)
    ref = sample_window(m, par, noise, 2.0, steps)
    with torch.no_grad():
        x = teacher_sample(
            m.unet,
            m.scheduler,
            pixel_unshuffle(noise, 2),
            pixel_unshuffle(par, 2),
            torch.tensor([2.0]),
            steps,
        )
    got = (par + torch.nn.functional.pixel_shuffle(x, 2) * m.info.residual_scale).clamp(-1, 1)
    assert torch.allclose(got, ref, atol=1e-5)
    ts = timesteps(m.scheduler, steps)
    assert len(ts) == steps + 1 and ts[-1] == -1 and ts[0] > ts[1]


def test_unshuffled_model_needs_windows_of_its_stride():
    m = _tiny()
    assert m.stride == 4  # two UNet levels × space-to-depth 2
    with pytest.raises(ValueError, match="multiple of 4"):
        sample_window(m, torch.zeros(1, 3, 30, 30), torch.zeros(1, 3, 30, 30), 1.0)


def test_ddim_one_step_is_differentiable():
    m = _tiny()
    m.unet.train().requires_grad_(True)
    x = torch.randn(2, 12, 8, 8)
    cond = torch.randn(2, 12, 8, 8)
    out = ddim_one_step(m.unet, m.scheduler, x, cond, torch.tensor([1.0, 8.0]), 999, -1)
    out.square().mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.unet.parameters())


def test_spectral_loss_sees_lost_detail():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    blurred = torch.nn.functional.avg_pool2d(real, 3, 1, 1)
    assert spectral_loss(real, real).item() == pytest.approx(0.0, abs=1e-6)
    assert spectral_loss(blurred, real).item() > 0.3


def test_an_interrupted_phase_resumes_to_the_same_weights(tmp_path, built):
    cfg = TrainConfig(channels=(8, 16), crop=16, batch=2, checkpoint_every=3)

    def run(run_dir: Path, stop_at: int | None = None):
        torch.manual_seed(0)
        unet = build_unet(cfg.channels, 1, False, cfg.unshuffle)
        sampler = PairSampler(data.load(built, "train"), crop=16, seed=0)
        calls = {"n": 0}

        def step_fn(model):
            calls["n"] += 1
            if stop_at is not None and calls["n"] > stop_at:
                raise KeyboardInterrupt
            kid, _, _ = sampler.sample(2)
            pred = model(torch.randn(2, 24, 8, 8), 5, class_labels=torch.ones(2)).sample
            loss = (pred.mean() - kid.mean()) ** 2
            return loss, {"loss": loss.item()}

        return _run_phase("teacher", cfg, run_dir, unet, step_fn, sampler, 8, 10.0, 1e-3)

    straight, summary = run(tmp_path / "a")
    assert summary["steps"] == 8
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_at=4)
    assert (tmp_path / "b" / "checkpoint-teacher.pt").is_file()
    torch.manual_seed(123)  # the resumed run must not depend on the process's RNG state
    resumed, summary = run(tmp_path / "b")
    assert summary["steps"] == 8
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # a finished phase is not trained again
    again, summary = run(tmp_path / "b", stop_at=0)
    assert summary["steps"] == 8


def test_train_end_to_end_writes_a_one_step_model(tmp_path, built):
    cfg = TrainConfig(
        channels=(8, 16),
        attention=False,
        crop=16,
        batch=2,
        teacher_steps=3,
        distil_steps=2,
        checkpoint_every=2,
    )
    out = train(tmp_path / "model", data_dir=built, run_dir=tmp_path / "run", cfg=cfg)
    m = SuperResolutionModel.from_pretrained(out)
    assert m.info.num_inference_steps == 1 and m.info.pixel_unshuffle == 2
    assert m.info.version == cfg.version and m.info.notes["distil_steps"] == "2"
    assert (tmp_path / "run" / "teacher" / "orbis_model.json").is_file()
    teacher = SuperResolutionModel.from_pretrained(tmp_path / "run" / "teacher")
    assert teacher.info.num_inference_steps == 4
    assert teacher.identity != m.identity  # distillation changed the weights, and the id
    out_w = sample_window(m, torch.zeros(1, 3, 16, 16), torch.randn(1, 3, 16, 16), 1.0)
    assert out_w.shape == (1, 3, 16, 16) and torch.isfinite(out_w).all()
