"""Diffusers checkpoints as orbis models (SD, Text2Earth, SD ×4 upscaler), on tiny random weights.

Every checkpoint is built here with ``save_tiny_checkpoint`` (stock diffusers/transformers classes,
safetensors, a tokenizer vocabulary made in the test): nothing is downloaded. The worlds use a
continent base at z2 (cheap to build) and 2 sampler steps, so a z3 tile costs four windows.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from generator import metrics
from generator.cli import main
from generator.errors import ModelLoadError, OrbisError, WorldConfigError
from generator.models.diffusers_backend import google_level, load_diffusers_model
from generator.models.diffusers_tiny import save_tiny_checkpoint
from generator.world import World
from generator.world_config import load_world_config
from tests.helpers import REPO, run_python, sha256, write_world

WORLD = """
seed = 7
max_zoom = 12
[base]
kind = "continents"
zoom = 2
[model]
steps = 2
guidance_scale = 2.0
prompt = "green forest"
"""


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    return {lay: save_tiny_checkpoint(root / lay, lay) for lay in ("sd", "text2earth", "upscaler")}


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("config")
    write_world(d, "tiny", WORLD)
    return d


def load(config_dir: Path, ckpt: Path, **kw) -> World:
    return World.load("tiny", config_dir, model=str(ckpt), **kw)


def block(w: World, z: int, x0: int, y0: int) -> np.ndarray:
    return metrics.mosaic([[w.tile_array(z, x0 + i, y0 + j) for i in range(2)] for j in range(2)])


# ---- loading -----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["sd", "text2earth", "upscaler"])
def test_layout_is_detected_from_the_configs(checkpoints, layout):
    m = load_diffusers_model(checkpoints[layout])
    assert m.layout == layout
    assert (m.vae_scale, m.latent_channels, m.unet_stride) == (4, 4, 4)
    assert m.identity.startswith(f"{layout}@{layout}+")


def test_identity_changes_with_the_weights(checkpoints, tmp_path):
    other = save_tiny_checkpoint(tmp_path / "sd", "sd", seed=1)
    a, b = load_diffusers_model(checkpoints["sd"]), load_diffusers_model(other)
    assert a.identity.split("+")[1] != b.identity.split("+")[1]


def test_dtype_is_part_of_the_identity(checkpoints):
    m = load_diffusers_model(checkpoints["sd"], dtype="bfloat16")
    assert m.identity.endswith("/bfloat16") and m.unet.dtype == torch.bfloat16


def _break(path: Path, how: str) -> None:
    if how == "no-index":
        (path / "model_index.json").unlink()
    elif how == "no-vae":
        shutil.rmtree(path / "vae")
    elif how == "bin-only":
        for p in (path / "unet").glob("*.safetensors"):
            p.rename(p.with_name("diffusion_pytorch_model.bin"))
    elif how == "custom-class":
        index = json.loads((path / "model_index.json").read_text())
        index["unet"] = ["my_package", "MyUNet"]
        (path / "model_index.json").write_text(json.dumps(index))
    elif how == "inpainting":
        cfg = json.loads((path / "unet" / "config.json").read_text())
        cfg["in_channels"] = 9
        (path / "unet" / "config.json").write_text(json.dumps(cfg))


BROKEN = {
    "no-index": "no model_index.json",
    "no-vae": "lacks the vae/ folder",
    "bin-only": "only safetensors",
    "custom-class": "no custom or remote code",
    "inpainting": "9 input channels",
}


@pytest.mark.parametrize("how", sorted(BROKEN))
def test_broken_checkpoint_is_one_clear_error(checkpoints, tmp_path, how):
    path = shutil.copytree(checkpoints["sd"], tmp_path / "ckpt")
    _break(path, how)
    with pytest.raises(ModelLoadError, match=BROKEN[how]):
        load_diffusers_model(path)


def test_hub_id_not_in_the_cache_fails_without_network():
    # hub ids are read with local_files_only=True: no download is tried, so no hang either
    with pytest.raises(ModelLoadError, match="nor in the local Hugging Face cache"):
        load_diffusers_model("orbis-tests/no-such-model")


def test_cuda_without_a_gpu_is_a_clear_error(checkpoints):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ModelLoadError, match="no CUDA device"):
        load_diffusers_model(checkpoints["sd"], device="cuda")


# ---- resolution labels -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mpp", "level"),
    [
        (1.0, 17),  # Text2Earth: resolution = 2**(17 - L)
        (0.5, 18),
        (128.0, 10),
        (38.2, 12),  # z12 at the equator
        (19.1, 13),  # the same zoom near 60° N: finer ground, finer level
        (0.05, 18),  # finer than trained: clamped
        (5000.0, 10),  # coarser than trained: clamped
    ],
)
def test_google_level(mpp, level):
    assert google_level(mpp) == level


def test_text2earth_level_follows_the_zoom(checkpoints, config_dir):
    w = load(config_dir, checkpoints["text2earth"])
    geo = w.pyramid._latent_geometry(w.pyramid.stage_for(12))
    from generator.planner import Window

    levels = [
        google_level(w.pyramid.window_mpp(Window(z, 0, (1 << z) // 2), geo.pixel))
        for z in (11, 12, 13, 14)
    ]
    assert levels == [11, 12, 13, 14]


@pytest.fixture
def seen_levels(monkeypatch) -> list[list[int]]:
    """Record the Text2Earth levels every latent sampling call receives."""
    import generator.samplers.latent as latent

    seen: list[list[int]] = []
    real = latent.sample_latent_windows

    def spy(*args, **kw):
        seen.append(list(kw["levels"]))
        return real(*args, **kw)

    monkeypatch.setattr(latent, "sample_latent_windows", spy)
    return seen


def test_text2earth_pyramid_passes_the_level(checkpoints, config_dir, seen_levels):
    seen = seen_levels
    w = load(config_dir, checkpoints["text2earth"])
    w.tile_array(3, 2, 2)
    assert seen and all(levels == [10] for levels in seen)  # z3 is ~17 km/px: clamped to 10


def test_text2earth_level_changes_the_latents(checkpoints):
    from generator.samplers.latent import LatentSampling, sample_latent_windows

    m = load_diffusers_model(checkpoints["text2earth"])
    s = LatentSampling(prompt="green forest", steps=2, guidance_scale=2.0)
    g = torch.Generator().manual_seed(0)
    parent = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    noise = torch.randn(1, 4, 16, 16, generator=g)
    a = sample_latent_windows(m, s, parent=parent, noise=noise, levels=[12])
    b = sample_latent_windows(m, s, parent=parent, noise=noise, levels=[12])
    c = sample_latent_windows(m, s, parent=parent, noise=noise, levels=[13])
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


# ---- tiles -------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["sd", "text2earth", "upscaler"])
def test_tiles_are_deterministic_in_any_order(checkpoints, config_dir, layout):
    a = load(config_dir, checkpoints[layout])
    first = [a.tile_array(3, 2, 2), a.tile_array(3, 3, 2)]
    b = load(config_dir, checkpoints[layout])  # fresh in-memory cache, the other order
    second = [b.tile_array(3, 3, 2), b.tile_array(3, 2, 2)]
    assert first[0].shape == (256, 256, 3) and first[0].dtype == np.uint8
    assert sha256(first[0]) == sha256(second[1]) and sha256(first[1]) == sha256(second[0])


@pytest.mark.parametrize("layout", ["sd", "text2earth"])
def test_prompt_changes_the_tiles_and_the_hash(checkpoints, config_dir, layout):
    a = load(config_dir, checkpoints[layout])
    b = load(config_dir, checkpoints[layout], prompt="snow desert")
    assert a.content_hash != b.content_hash
    assert sha256(a.tile_array(3, 2, 2)) != sha256(b.tile_array(3, 2, 2))


def test_model_is_part_of_the_hash(checkpoints, config_dir):
    hashes = {load(config_dir, checkpoints[lay]).content_hash for lay in checkpoints}
    assert len(hashes) == 3


@pytest.mark.parametrize("layout", ["sd", "text2earth", "upscaler"])
def test_seams_and_parent_agreement(checkpoints, config_dir, layout):
    w = load(config_dir, checkpoints[layout])
    m = block(w, 3, 2, 2)  # children of the z2 tile (1, 1)
    assert metrics.seam_ratio(m) < 1.5
    # the target is 30 dB (benchmarks.md); random weights' noise clipped at 0/255 costs a little,
    # and so does the edit toward the water layer (generator.follow), which on random weights'
    # noise recolours every water-blue grain of the land (≈ 1.5 dB)
    assert metrics.parent_psnr(w.tile_array(2, 1, 1), m) > 32.0


def test_level_above_is_the_parent_whichever_model_made_it(checkpoints, tmp_path, tiny_model):
    # built-in (here the tiny random built-in model) down to z3, the SD checkpoint from z4
    tiny_dir = tmp_path / "builtin"
    tiny_model.save_pretrained(tiny_dir)
    text = WORLD.replace("[model]\n", f'[model]\npath = "{tiny_dir}"\n')
    text += f'\n[[model.ranges]]\nzooms = [4, 12]\npath = "{checkpoints["sd"]}"\nsteps = 2\n'
    cfg = tmp_path / "config"
    write_world(cfg, "split", text)
    split = World.load("split", cfg)
    plain = World.load("split", cfg, model=str(tiny_dir))  # the built-in model everywhere
    assert split.model_for(3) is split.model and split.model_for(4).layout == "sd"
    assert sha256(split.tile_array(3, 2, 2)) == sha256(plain.tile_array(3, 2, 2))
    kids = metrics.mosaic([[split.tile_array(4, 4 + i, 4 + j) for i in range(2)] for j in range(2)])
    assert metrics.parent_psnr(split.tile_array(3, 2, 2), kids) > 35.0


def test_builtin_world_identity_is_unchanged(tiny_model):
    w = World.load("earth", model=tiny_model)
    assert "stages" not in w.identity and w.stages == ()


def test_prompt_with_only_the_builtin_model_is_refused(tiny_model):
    with pytest.raises(OrbisError, match="--prompt needs a text-conditioned model"):
        World.load("earth", model=tiny_model, prompt="hills")


def test_batched_windows_match_single_ones_closely(checkpoints, config_dir):
    # CPU batches change the last float bits, so the CPU never batches (batch=1 by default);
    # the padded batch path (the CUDA one) must still compute the same windows.
    single = load(config_dir, checkpoints["sd"])
    batched = load(config_dir, checkpoints["sd"], batch=3)
    assert single.pyramid.batch == 1
    a, b = single.tile_array(3, 2, 2), batched.tile_array(3, 2, 2)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


# ---- world configs -----------------------------------------------------------------------

BAD_RANGES = {
    "overlap": ('[[model.ranges]]\nzooms = [6, 8]\npath = "x"\n'
                '[[model.ranges]]\nzooms = [8, 9]\npath = "y"\n', "overlap"),
    "reversed": ('[[model.ranges]]\nzooms = [9, 6]\npath = "x"\n', "first <= last"),
    "above-base": ('[[model.ranges]]\nzooms = [2, 6]\npath = "x"\n', "base.zoom+1"),
    "past-max": ('[[model.ranges]]\nzooms = [6, 40]\npath = "x"\n', "max_zoom"),
    "unknown-key": ('[[model.ranges]]\nzooms = [6, 8]\npath = "x"\nprompts = "a"\n', "unknown key"),
    "float-zoom": ('[[model.ranges]]\nzooms = [6.0, 8]\npath = "x"\n', "model.ranges.0.zooms"),
    "strength": ('[[model.ranges]]\nzooms = [6, 8]\npath = "x"\nstrength = 0\n', "strength"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_RANGES))
def test_bad_model_ranges_name_the_key(tmp_path, case):
    text, fragment = BAD_RANGES[case]
    write_world(tmp_path, "bad", WORLD + text)
    with pytest.raises(WorldConfigError, match=re.escape(fragment)):
        load_world_config("bad", tmp_path)


def test_model_ranges_are_read(tmp_path):
    text = WORLD + '[[model.ranges]]\nzooms = [10, 12]\npath = "lcybuaa/Text2Earth"\nsteps = 30\n'
    write_world(tmp_path, "ok", text)
    cfg = load_world_config("ok", tmp_path)
    assert cfg.model.range_for(11).path == "lcybuaa/Text2Earth"
    assert cfg.model.range_for(9) is None and cfg.model.prompt == "green forest"


# ---- CLI ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["missing", "no-index", "no-vae", "bin-only"])
def test_cli_unloadable_checkpoint_is_one_line(checkpoints, tmp_path, how):
    path = tmp_path / "ckpt"
    if how != "missing":
        shutil.copytree(checkpoints["sd"], path)
        _break(path, how)
    out = tmp_path / "x.png"
    args = ["render", "planet", "6/33/21", "--model", str(path), "--prompt", "a", "-o", str(out)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("orbis: error: "), result.stderr
    assert "Traceback" not in result.output and not out.exists()


def _render(ckpt: Path, out: Path, config_dir: Path) -> bytes:
    cmd = [sys.executable, "-m", "generator.cli", "render", "planet", "6/33/21", "--model",
           str(ckpt), "--prompt", "green forest by a river", "--config", str(config_dir),
           "-o", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"6/33/21 -> {out}"
    return out.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["sd", "text2earth"])
def test_cli_render_is_byte_identical_across_processes(checkpoints, tmp_path, layout):
    # the repository's planet world, with 2 sampler steps to keep the test short
    cfg = tmp_path / "config"
    text = (REPO / "config" / "worlds" / "planet.toml").read_text()
    write_world(cfg, "planet", text.replace('path = "builtin"\n', "steps = 2\n"))
    a = _render(checkpoints[layout], tmp_path / "a.png", cfg)
    b = _render(checkpoints[layout], tmp_path / "b.png", cfg)
    assert a == b


@pytest.mark.slow
def test_tile_bytes_are_the_same_in_another_process(checkpoints, config_dir):
    here = sha256(load(config_dir, checkpoints["text2earth"]).tile_array(3, 3, 2))
    code = (
        "from generator.world import World\nfrom tests.helpers import sha256\n"
        f"w = World.load('tiny', {str(config_dir)!r}, model={str(checkpoints['text2earth'])!r})\n"
        "print(sha256(w.tile_array(3, 3, 2)))\n"
    )
    assert run_python(code, timeout=300).strip() == here


def test_cli_upscale_refuses_a_diffusers_checkpoint(checkpoints, tmp_path):
    from PIL import Image

    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(tmp_path / "in.png")
    args = ["upscale", str(tmp_path / "in.png"), "--zoom", "6", "--model", str(checkpoints["sd"])]
    result = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "o.png")])
    assert result.exit_code == 2 and "diffusers checkpoint" in result.stderr


def test_server_settings_reach_the_worlds(checkpoints, config_dir):
    from tileserver.app import load_worlds
    from tileserver.settings import Settings

    s = Settings(
        config_dir=config_dir, model=str(checkpoints["sd"]), prompt="snow", worlds=("tiny",)
    )
    w = load_worlds(s, None)["tiny"]
    assert w.stages[0].sampling.prompt == "snow" and w.model.layout == "sd"


def test_text2earth_prompt_prefix_fixes_the_level(checkpoints, config_dir, seen_levels):
    seen = seen_levels
    w = load(config_dir, checkpoints["text2earth"], prompt="15_GOOGLE_LEVEL_green forest")
    assert w.stages[0].sampling.prompt == "green forest" and w.stages[0].sampling.level == 15
    w.tile_array(3, 2, 2)
    assert seen and all(levels == [15] for levels in seen)
    with pytest.raises(ModelLoadError, match="level 19"):
        load(config_dir, checkpoints["text2earth"], prompt="19_GOOGLE_LEVEL_x")
