"""Helpers of the server, CLI and browser tests: the tiny model, a served subprocess, Chromium."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from playwright.sync_api import Browser

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


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that is free now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(tmp: Path, module: str = "generator.cli", timeout: float = 120) -> Iterator[str]:
    """Run ``python -m MODULE serve`` with the tiny model on a free port; yield its base URL.

    The cache and the log live in ``tmp``; the server is stopped on exit. A server that exits
    or does not answer ``/health`` in ``timeout`` seconds fails the test with its log's tail.
    """
    import os
    import subprocess
    import sys
    import time

    import httpx
    import pytest

    repo = Path(__file__).resolve().parent.parent
    model = save_tiny_model(tmp / "model")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / "serve.log"
    env = dict(os.environ, PYTHONPATH=str(repo), OMP_NUM_THREADS="1")
    cmd = [
        sys.executable, "-m", module, "serve", "--host", "127.0.0.1",
        "--port", str(port), "--cache", str(tmp / "cache"), "--model", str(model),
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"orbis serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"orbis serve did not answer /health:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield base
    finally:
        stop_process(proc, timeout=15)


#: Debian's Chromium, which the browser tests drive (``playwright install`` is not used)
CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def chromium(args: list[str]) -> Iterator[Browser]:
    """Launch headless Debian Chromium with ``args`` through Playwright; close it on exit."""
    import pytest
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(
            f"the browser tests need Chromium at {CHROMIUM}, which is missing: install it with "
            "`apt-get install chromium` (.ci/run does so before `make test`); "
            "`playwright install` is not used",
            pytrace=False,
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            yield b
        finally:
            b.close()
