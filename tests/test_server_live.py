"""A real ``orbis serve`` (uvicorn in a subprocess) answering over TCP on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.serving_helpers import decode, save_tiny_model, stop_process

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(base: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"orbis serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            r = httpx.get(f"{base}/health", timeout=2)
            if r.status_code == 200:
                return r.json()
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"orbis serve did not answer /health in {timeout} s:\n{log.read_text()[-3000:]}")


def test_orbis_serve_serves_tiles(tmp_path):
    model = save_tiny_model(tmp_path / "model")
    cache = tmp_path / "cache"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = [
        sys.executable, "-m", "generator.cli", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--cache", str(cache), "--model", str(model),
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        health = wait_for_health(base, proc, log)
        assert health["status"] == "ok" and "earth" in health["worlds"]

        with httpx.Client(base_url=base, timeout=60) as client:
            r = client.get("/tiles/earth/3/4/2.png")
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == "image/png"
            im = decode(r.content)
            assert im.size == (256, 256) and im.mode == "RGB"
            etag = r.headers["etag"]

            r304 = client.get("/tiles/earth/3/4/2.png", headers={"If-None-Match": etag})
            assert r304.status_code == 304 and r304.content == b""

            bad = client.get("/tiles/earth/-1/0/0.png")
            assert bad.status_code == 400 and "zoom" in bad.json()["detail"]

            metrics = client.get("/metrics").text
            assert "orbis_tiles_generated_total 1.0" in metrics
        assert cache.is_dir() and any(cache.iterdir())  # the disk cache was used
    finally:
        stop_process(proc, timeout=30)
    text = log.read_text()
    # uvicorn re-raises the signal after a graceful shutdown, so -SIGTERM is a clean exit too
    assert proc.returncode in (0, -signal.SIGTERM), text[-3000:]
    assert "Application shutdown complete" in text
    assert f"serving on http://127.0.0.1:{port}/" in text
    assert "Traceback" not in text
