"""Model v3's conditioning: features, the conditioned sampler, pairs, warm start, worlds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from generator.conditioning import GeographyConditioner
from generator.errors import ModelLoadError
from generator.geography import classes as C
from generator.models import conditions as F
from generator.models.sr_model import SuperResolutionModel, random_model
from generator.planner import Rect
from generator.samplers.ddim import sample_window
from generator.training import data_v3
from generator.training import labels as L
from generator.training.config import TrainConfig
from generator.training.dataset_v3 import LabelledPairSampler, drop_and_coarsen
from generator.training.train import PatchDiscriminator, new_unet, train

FLAGS = len(F.FEATURES) - len(F.GROUPS)


def _stack(h: int = 32, w: int = 32) -> tuple[np.ndarray, np.ndarray]:
    st = np.zeros((len(L.CHANNELS), h, w), np.float32)
    st[0, :, : w // 2] = 1.0  # water on the left
    st[1] = np.where(st[0] > 0, 50.0, -50.0)
    st[4] = C.CROPLAND
    st[10, h // 2] = 255  # a straight line across
    have = np.ones(len(L.CHANNELS), bool)
    return st, have


def test_stack_order_is_the_labels_order() -> None:
    assert F.STACK == L.CHANNELS


def test_features_encode_values_and_flags() -> None:
    st, have = _stack()
    f = F.features(st, have, 2.0)
    assert f.shape == (len(F.FEATURES), 32, 32)
    water, shore, lines = f[0], f[1], f[3]
    assert water[:, :16].min() == 1.0 and water[:, 16:].max() == 0.0
    assert shore[:, :16].min() > 0.9 and shore[:, 16:].max() < -0.9
    assert lines[16].min() == 1.0 and lines[15].max() == 0.0
    crop = F.FEATURES.index(f"class_{C.CROPLAND}")
    assert f[crop].min() == 1.0 and f[7 : 7 + F.N_CLASSES].sum(0).max() == 1.0
    assert (f[FLAGS:] == 1.0).all()
    have[L.CHANNELS.index("landcover")] = False
    g = F.features(st, have, 2.0)
    assert g[7 : 7 + F.N_CLASSES].max() == 0.0
    assert g[FLAGS + F.GROUPS.index("landcover")].max() == 0.0
    with pytest.raises(ValueError, match="channels"):
        F.features(st[:5], have, 2.0)


def test_missing_features_equal_no_features() -> None:
    m = random_model(conditioned=True, seed=3)
    g = torch.Generator().manual_seed(0)
    par = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    noise = torch.randn(1, 3, 32, 32, generator=g)
    a = sample_window(m, par, noise, 2.0)
    b = sample_window(m, par, noise, 2.0, features=torch.from_numpy(F.missing(32, 32))[None])
    assert torch.equal(a, b)
    st, have = _stack()
    c = sample_window(
        m, par, noise, 2.0, features=torch.from_numpy(F.features(st, have, 2.0))[None]
    )
    assert not torch.equal(a, c)  # the conditions reach the output
    with pytest.raises(ValueError, match="do not match"):
        sample_window(m, par, noise, 2.0, features=torch.zeros(1, len(F.FEATURES), 16, 16))


def test_an_unconditioned_model_ignores_features() -> None:
    m = random_model(seed=1)
    par = torch.zeros(1, 3, 32, 32)
    noise = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    st, have = _stack()
    feats = torch.from_numpy(F.features(st, have, 2.0))[None]
    assert torch.equal(
        sample_window(m, par, noise, 2.0), sample_window(m, par, noise, 2.0, features=feats)
    )


def test_conditions_roundtrip_and_unknown_version(tmp_path: Path) -> None:
    m = random_model(conditioned=True)
    m.save_pretrained(tmp_path / "m")
    back = SuperResolutionModel.from_pretrained(tmp_path / "m")
    assert back.conditioned and back.info.conditions == F.VERSION
    assert back.identity == m.identity
    info = json.loads((tmp_path / "m" / "orbis_model.json").read_text())
    info["conditions"] = "c999"
    (tmp_path / "m" / "orbis_model.json").write_text(json.dumps(info))
    with pytest.raises(ModelLoadError, match="c999"):
        SuperResolutionModel.from_pretrained(tmp_path / "m")


def test_warm_start_from_an_unconditioned_model_computes_the_same(tmp_path: Path) -> None:
    """v3 starts as v2: the new input planes' kernels are zero, so any features give v2's output."""
    cfg = TrainConfig(channels=(8, 16), unshuffle=2)
    torch.manual_seed(0)
    old = SuperResolutionModel(
        new_unet(cfg), random_model().scheduler, random_model().info.__class__(pixel_unshuffle=2)
    )
    old.save_pretrained(tmp_path / "old")
    v3 = new_unet(
        TrainConfig(channels=(8, 16), unshuffle=2, conditions=True, init_from=str(tmp_path / "old"))
    )
    assert v3.config.in_channels == old.unet.config.in_channels + len(F.FEATURES)
    x = torch.randn(2, 24, 8, 8)
    feats = torch.rand(2, len(F.FEATURES), 8, 8)
    t = torch.tensor([999, 300])
    with torch.no_grad():
        a = old.unet(x, t, class_labels=torch.ones(2)).sample
        b = v3(torch.cat([x, feats], 1), t, class_labels=torch.ones(2)).sample
    assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="another shape"):
        new_unet(TrainConfig(channels=(8, 32), conditions=True, init_from=str(tmp_path / "old")))


def _items(n: int = 3, size: int = 96) -> list[data_v3.Item]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        rgb = (rng.random((size, size, 3)) * 0.3 + 0.3).astype(np.float32)
        rgb[:, : size // 2] = (0.05, 0.12, 0.3)  # water on the left half
        p, present = L.planes((rgb * 255).astype(np.uint8), landcover=C.CROPLAND)
        out.append(data_v3.Item(rgb, p, present, {"name": f"img{i}", "mpp": 1.0}))
    return out


def test_pairs_carry_features_that_turn_with_the_image() -> None:
    s = LabelledPairSampler(_items(), crop=32, seed=0, augment_conditions=False)
    kid, par, mpp, feat = s.sample(16)
    assert kid.shape == (16, 3, 32, 32) and par.shape == (16, 3, 16, 16)
    assert feat.shape == (16, len(F.FEATURES), 32, 32)
    # the water feature marks the blue pixels whatever the flip or turn
    blue = (kid[:, 2] - kid[:, 0]) > 0.3
    water = feat[:, 0] > 0.5
    assert (blue == water).float().mean() > 0.9  # a turn not applied to both: about 0.5
    assert set(mpp.tolist()) <= {1.0, 2.0}


def test_dropout_zeroes_a_group_with_its_flag() -> None:
    st, have = _stack()
    rng = np.random.default_rng(0)
    dropped_any = everything = False
    for _ in range(200):
        f = drop_and_coarsen(F.features(st, have, 2.0), rng)
        flags = f[FLAGS:]
        if (flags == 0).all():
            everything = True
            assert f.max() == 0.0
        for i, g in enumerate(F.GROUPS):
            if flags[i].max() == 0.0:
                dropped_any = True
                planes = {"water": [0], "shore": [1], "lines": [3], "landcover": [7 + C.CROPLAND]}
                for k in planes.get(g, []):
                    assert f[k].max() == 0.0
    assert dropped_any and everything


def _tiny_set(root: Path) -> Path:
    wr = data_v3._Writer(root)
    for i, it in enumerate(_items(4)):
        split = "holdout" if i == 3 else "train"
        rgb = (it.rgb * 255).astype(np.uint8)
        wr.add(
            f"img{i}",
            split,
            rgb,
            it.planes,
            it.present,
            mpp=1.0,
            source="test",
            licence="CC0",
            klass=C.CROPLAND,
            kind="cropland",
        )
    manifest = {
        "version": data_v3.DATASET_VERSION,
        "channels": list(L.CHANNELS),
        "planes": list(L.PLANES),
        "holdout_stems": [],
        "entries": [e.row() for e in wr.entries],
    }
    (root / data_v3.MANIFEST).write_text(json.dumps(manifest))
    return root


@pytest.mark.slow
def test_train_v3_end_to_end_writes_a_conditioned_model(tmp_path: Path) -> None:
    data = _tiny_set(tmp_path / "set")
    cfg = TrainConfig(
        channels=(8, 16),
        crop=16,
        batch=2,
        teacher_steps=3,
        distil_steps=2,
        conditions=True,
        adversarial_weight=0.1,
    )
    out = train(tmp_path / "m", data_dir=data, run_dir=tmp_path / "run", cfg=cfg)
    m = SuperResolutionModel.from_pretrained(out)
    assert m.conditioned and m.unet.config.in_channels == 24 + len(F.FEATURES)
    assert m.info.notes["dataset"] == "orbis data v3"
    st, have = _stack(16, 16)
    feats = torch.from_numpy(F.features(st, have, 1.0))[None]
    got = sample_window(m, torch.zeros(1, 3, 16, 16), torch.randn(1, 3, 16, 16), 1.0, None, feats)
    assert got.shape == (1, 3, 16, 16) and torch.isfinite(got).all()


@pytest.mark.slow
def test_world_tells_a_conditioned_model_its_geography() -> None:
    from generator.world import World

    w = World.load("earth", model=random_model(conditioned=True))
    plain = World.load("earth", model=random_model())
    assert w.identity["conditioning"] and "conditioning" not in plain.identity
    assert w.pyramid.conditioner is not None and plain.pyramid.conditioner is None
    # Lake Geneva's shore at z12: the water features are the water layer's
    z, rect = 12, Rect(1450 * 256, 2122 * 256, 256, 256)
    kind = w.geography.window("water", z, rect)
    zero = np.zeros((3, 256, 256), np.float32)
    f = GeographyConditioner(w.geography).features(z, rect, zero, 25.0)
    assert (f[0] > 0.5).mean() == pytest.approx((kind != C.LAND).mean(), abs=0.02)
    flags = dict(zip(F.GROUPS, f[FLAGS:, 0, 0], strict=True))
    assert flags["water"] == 1 and flags["landcover"] == 1 and flags["lines"] == 1
    assert flags["edge"] == 0 and flags["trees"] == 0  # what the layers cannot know


def test_upscale_measures_the_image_for_a_conditioned_model() -> None:
    from generator.upscale import _image_features, upscale_array

    rng = np.random.default_rng(0)
    img = (rng.random((64, 64, 3)) * 30 + (100, 95, 50)).astype(np.uint8)  # dry fields
    img[:, :32] = (10, 30, 80)
    m = random_model(conditioned=True, seed=2)
    out = upscale_array(img, 15, m, lat=45.0, seed=0)
    assert out.shape == (128, 128, 3)
    up = np.repeat(np.repeat(img, 2, 0), 2, 1).transpose(2, 0, 1).astype(np.float32) / 127.5 - 1
    f = _image_features(up, 1.0)[0].numpy()
    assert f[0][:, :56].mean() > 0.9 and f[0][:, 72:].mean() < 0.1  # colour water, left half
    assert f[FLAGS + F.GROUPS.index("landcover")].max() == 0.0  # only layers know the class


def test_patch_discriminator_scores_patches_and_learns() -> None:
    torch.manual_seed(0)
    d = PatchDiscriminator(width=8)
    real = torch.rand(4, 3, 32, 32) * 2 - 1
    fake = torch.nn.functional.avg_pool2d(real, 5, 1, 2)  # the blur a regressed student makes
    up = torch.nn.functional.avg_pool2d(real, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
    assert d(real, up).shape == (4, 1, 8, 8)
    opt = torch.optim.Adam(d.parameters(), lr=2e-3)
    for _ in range(60):
        loss = torch.relu(1 - d(real, up)).mean() + torch.relu(1 + d(fake, up)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert d(real, up).mean() > d(fake, up).mean()  # it tells sharp from blurred


def test_cli_train_v3_without_its_set_is_a_one_line_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from generator.cli import main

    r = CliRunner().invoke(main, ["train", "--version", "3", "--data", str(tmp_path / "none")])
    assert r.exit_code != 0 and "orbis data --version 3" in r.output
    assert "Traceback" not in r.output
