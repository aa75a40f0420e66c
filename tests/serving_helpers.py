"""Helpers of the server and CLI tests (test_app, test_cli, test_server_live)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

#: the tiny random model of the serving tests (same arguments as conftest's ``tiny_model``)
TINY = {"block_out_channels": (8, 16), "seed": 0, "steps": 2}


def save_tiny_model(path: Path) -> Path:
    """Save the tiny, seeded random model to ``path`` and return it."""
    from generator.models.sr_model import random_model

    random_model(**TINY).save_pretrained(path)
    return path


def decode(data: bytes) -> Image.Image:
    """Decode image bytes fully (raises on a truncated or corrupt image); keeps ``.format``."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        out = im.copy()
        out.format = im.format
        return out


def decode_array(data: bytes) -> np.ndarray:
    """Decode image bytes to a uint8 array."""
    return np.asarray(decode(data))


def stop_process(proc, timeout: float = 15) -> None:
    """SIGTERM a server subprocess, then SIGKILL it if it does not exit in time."""
    import signal
    import subprocess

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def parse_metrics(text: str) -> dict[str, float]:
    """Parse Prometheus text exposition into {series: value}, series as written (labels too)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def metric(text: str, series: str) -> float:
    """Return one series of a Prometheus text exposition (fails the test when it is absent)."""
    values = parse_metrics(text)
    assert series in values, f"{series} not in /metrics"
    return values[series]
