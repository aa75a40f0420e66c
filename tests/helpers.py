"""Plain helpers of the test suite (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "config"


def sha256(data: bytes | np.ndarray) -> str:
    """Return the hex SHA-256 of bytes or of an array's contiguous buffer."""
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).tobytes()
    return hashlib.sha256(data).hexdigest()


def run_python(code: str, timeout: float = 120) -> str:
    """Run ``code`` in a fresh interpreter (this venv, repo on the path); return its stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stderr}"
    return proc.stdout


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Return the PSNR in dB between two images of the same shape."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak**2 / mse)


def write_world(config_dir: Path, name: str, text: str) -> Path:
    """Write ``config_dir/worlds/NAME.toml`` and return its path."""
    worlds = config_dir / "worlds"
    worlds.mkdir(parents=True, exist_ok=True)
    path = worlds / f"{name}.toml"
    path.write_text(text)
    return path


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Return the luminance (0-255) of a uint8 (H, W, 3) image."""
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def seam_ratio(left: np.ndarray, right: np.ndarray) -> float:
    """Return the seam ratio (ARCHITECTURE section 6) of the vertical edge between two tiles.

    Mean |dL| across the edge over the mean |dL| of parallel pixel pairs 8 and 16 px either side.
    """
    lum = luminance(np.concatenate([left, right], axis=1))
    e = left.shape[1]

    def step(c: int) -> float:
        return float(np.abs(lum[:, c] - lum[:, c - 1]).mean())

    return step(e) / float(np.mean([step(e + d) for d in (-16, -8, 8, 16)]))
