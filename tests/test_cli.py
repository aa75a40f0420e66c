"""The ``orbis`` command line (``generator.cli``) through click's CliRunner, plus real subprocesses.

Known errors must be one line ``orbis: error: …`` on stderr with exit code 2 and no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from generator.cli import main
from generator.metrics import box_down2, psnr
from tests.serving_helpers import save_tiny_model

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str):
    return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(result, *fragments: str) -> str:
    """Exit code 2 and a single ``orbis: error:`` line naming the problem; return the line."""
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("orbis: error: "), lines[0]
    assert "Traceback" not in result.output
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def read(path: Path) -> Image.Image:
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG"
        return im.convert("RGB") if im.mode != "RGB" else im.copy()


def smooth_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth, textured RGB image far from 0 and 255 (no clipping in the ×2 step)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack(
        [
            110 + 50 * np.sin(xx / 9 + seed),
            120 + 40 * np.cos(yy / 7),
            90 + 30 * np.sin((xx + yy) / 11),
        ],
        axis=-1,
    )
    return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


# ---- render --------------------------------------------------------------------------------


def test_render_one_tile_to_a_file(runner, model_dir, tmp_path):
    out = tmp_path / "out.png"
    result = run(runner, "render", "earth", "4/8/5", "-o", out, "--model", model_dir)
    assert result.exit_code == 0, result.output
    im = read(out)
    assert im.size == (256, 256) and im.mode == "RGB"
    assert np.asarray(im).std() > 1
    assert "4/8/5" in result.stdout
    assert not list(tmp_path.glob("*.tmp"))


def test_render_matches_the_python_api(runner, model_dir, tmp_path):
    from generator.world import World

    out = tmp_path / "t.png"
    assert run(runner, "render", "earth", "4/8/5", "-o", out, "--model", model_dir).exit_code == 0
    expected = World.load("earth", model=str(model_dir)).tile_array(4, 8, 5)
    np.testing.assert_array_equal(np.asarray(read(out)), expected)


def test_render_several_tiles_to_a_directory(runner, model_dir, tmp_path):
    out = tmp_path / "tiles"
    result = run(
        runner, "render", "earth", "4/8/5", "3/4/2", "3/-1/2", "-o", out, "--model", model_dir
    )
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["3/4/2.png", "3/7/2.png", "4/8/5.png"]  # x wrapped, no temp files left
    for p in written:
        assert read(out / p).size == (256, 256)


def test_render_size_512(runner, model_dir, tmp_path):
    out = tmp_path / "big.png"
    result = run(
        runner, "render", "earth", "3/4/2", "-o", out, "--size", "512", "--model", model_dir
    )
    assert result.exit_code == 0, result.output
    assert read(out).size == (512, 512)


def test_render_bad_size_is_a_usage_error(runner, model_dir, tmp_path):
    result = run(runner, "render", "earth", "3/4/2", "-o", tmp_path / "x.png", "--size", "300")
    assert result.exit_code == 2
    assert "300" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_render_unknown_world(runner, model_dir, tmp_path):
    result = run(runner, "render", "mars", "3/4/2", "-o", tmp_path / "x.png", "--model", model_dir)
    line = assert_one_line_error(result, "unknown world 'mars'", "earth")
    assert "known" in line
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("4/8", "Z/X/Y"),
        ("a/b/c", "'a/b/c'"),
        ("4/8/5/1", "Z/X/Y"),
        ("4/8/16", "y must be in 0..15"),
        ("-1/0/0", "zoom must be >= 0"),
        ("23/0/0", "maximum zoom 22"),
    ],
)
def test_render_bad_address(runner, model_dir, tmp_path, address, fragment):
    out = tmp_path / "x.png"
    # "--" ends the options: a negative zoom would otherwise be read as an option
    result = run(runner, "render", "earth", "-o", out, "--model", model_dir, "--", address)
    assert_one_line_error(result, fragment)
    assert not out.exists()


def test_render_missing_model(runner, tmp_path):
    missing = tmp_path / "no-such-model"
    result = run(runner, "render", "earth", "3/4/2", "-o", tmp_path / "x.png", "--model", missing)
    assert_one_line_error(result, "does not exist", str(missing))


def test_render_prompt_needs_a_text_model(runner, tmp_path):
    result = run(runner, "render", "earth", "3/4/2", "-o", tmp_path / "x.png", "--prompt", "hills")
    assert_one_line_error(result, "--prompt")
    assert not (tmp_path / "x.png").exists()


# ---- upscale -------------------------------------------------------------------------------


def test_upscale_one_image(runner, model_dir, tmp_path):
    src = smooth_image(64, 80)
    Image.fromarray(src).save(tmp_path / "in.png")
    out = tmp_path / "out.png"
    result = run(
        runner, "upscale", tmp_path / "in.png", "--zoom", "6", "--lat", "45",
        "--model", model_dir, "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    im = read(out)
    assert im.size == (160, 128) and im.mode == "RGB"
    up = np.asarray(im)
    assert psnr(box_down2(up), src) >= 30
    assert up.std() > 0.5 * src.std()


def test_upscale_is_deterministic_and_seeded(runner, model_dir, tmp_path):
    Image.fromarray(smooth_image(48, 48)).save(tmp_path / "in.png")
    outs = {}
    for name, seed in (("a", "0"), ("b", "0"), ("c", "7")):
        out = tmp_path / f"{name}.png"
        args = ["upscale", tmp_path / "in.png", "--zoom", "6", "--seed", seed]
        result = run(runner, *args, "--model", model_dir, "-o", out)
        assert result.exit_code == 0, result.output
        outs[name] = np.asarray(read(out))
    np.testing.assert_array_equal(outs["a"], outs["b"])
    assert not np.array_equal(outs["a"], outs["c"])


def test_upscale_several_images_keep_their_names(runner, model_dir, tmp_path):
    names = ["one.png", "two.png"]
    for i, n in enumerate(names):
        Image.fromarray(smooth_image(32 + 16 * i, 40, seed=i)).save(tmp_path / n)
    out = tmp_path / "out"
    args = ["upscale", *(tmp_path / n for n in names), "--zoom", "5", "--model", model_dir]
    result = run(runner, *args, "-o", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == names
    assert read(out / "one.png").size == (80, 64)
    assert read(out / "two.png").size == (80, 96)


@pytest.mark.parametrize("kind", ["garbage", "missing", "directory", "too-small"])
def test_upscale_unreadable_input(runner, model_dir, tmp_path, kind):
    src = tmp_path / "in.png"
    if kind == "garbage":
        src.write_bytes(b"this is not an image")
    elif kind == "directory":
        src.mkdir()
    elif kind == "too-small":
        Image.fromarray(smooth_image(4, 4)).save(src)
    out = tmp_path / "out.png"
    result = run(runner, "upscale", src, "--zoom", "6", "--model", model_dir, "-o", out)
    assert_one_line_error(result, str(src))
    assert not out.exists()


@pytest.mark.parametrize(("opt", "value"), [("--zoom", "0"), ("--lat", "90"), ("--zoom", "x")])
def test_upscale_bad_options_are_usage_errors(runner, model_dir, tmp_path, opt, value):
    Image.fromarray(smooth_image(16, 16)).save(tmp_path / "in.png")
    args = {"--zoom": "6", "--lat": "0", opt: value}
    result = run(
        runner, "upscale", tmp_path / "in.png", *(a for kv in args.items() for a in kv),
        "--model", model_dir, "-o", tmp_path / "o.png",
    )  # fmt: skip
    assert result.exit_code == 2
    assert value in result.stderr
    assert "Traceback" not in result.output


# ---- serve and the group ----------------------------------------------------------------------


def test_serve_validates_the_model_before_starting(runner, tmp_path):
    with runner.isolated_filesystem(temp_dir=tmp_path):
        result = run(runner, "serve", "--model", "/nonexistent", "--port", "1")
        assert_one_line_error(result, "'/nonexistent'", "does not exist")
        assert "serving on" not in result.stdout
        assert not Path("cache").exists()  # nothing created before the check


def test_serve_bad_config_dir(runner, model_dir, tmp_path):
    (tmp_path / "worlds").mkdir()
    (tmp_path / "worlds" / "broken.toml").write_text("seed = [unclosed\n")
    result = run(runner, "serve", "--config", tmp_path, "--model", model_dir, "--port", "1")
    assert_one_line_error(result, "broken.toml")


def test_help_and_version(runner):
    result = run(runner, "--help")
    assert result.exit_code == 0
    for cmd in ("serve", "render", "upscale"):
        assert cmd in result.stdout
    result = run(runner, "--version")
    assert result.exit_code == 0 and "0." in result.stdout


def _subprocess(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "generator.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_console_script_help():
    script = Path(sys.executable).parent / "orbis"
    assert script.exists(), "the orbis console script is not installed in this venv"
    proc = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    assert "render" in proc.stdout and "upscale" in proc.stdout and "serve" in proc.stdout


def test_module_help():
    proc = _subprocess("render", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--size" in proc.stdout and "--model" in proc.stdout


@pytest.mark.slow
def test_subprocess_error_is_one_line(tmp_path):
    proc = _subprocess("render", "mars", "3/4/2", "-o", str(tmp_path / "x.png"))
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("orbis: error:")]
    assert errors == [ln for ln in proc.stderr.splitlines() if ln.strip()], proc.stderr
    assert len(errors) == 1 and "unknown world 'mars'" in errors[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["export", "earth", "--bbox", "5,45,6,46", "--zooms", "0", "-o", "{tmp}/x.mbtiles"],
        ["seed", "earth", "--bbox", "5,45,6,46", "--zooms", "0", "--cache", "{tmp}/c"],
    ],
    ids=["export", "seed"],
)
def test_export_and_seed_pass_the_prompt_to_the_world(runner, model_dir, tmp_path, command):
    # the built-in-layout model takes no prompt: the world refuses it, which shows it got there
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    result = run(runner, *args, "--model", model_dir, "--prompt", "a river delta")
    assert_one_line_error(result, "--prompt needs a text-conditioned model")
