"""A tiny XYZ tile server on 127.0.0.1 for the ``xyz`` base tests and ``bench/xyz_base.py``.

It serves a folder of tiles (``ROOT/{z}/{x}/{y}.png``) over HTTP/1.1 with keep-alive, so the
client's connection pool is really exercised (a killed server leaves dead pooled connections
behind), plus a few misbehaving paths a real upstream can produce:

* ``/status/CODE/…`` answers that status (``/status/500/3/1/2.png`` → 500);
* ``/garbage/…`` answers 200 with an HTML body (a captive portal, a misconfigured proxy);
* ``/slow/SECONDS/…`` waits, then serves the rest of the path as a tile.

Run it as ``python -m tests.xyz_upstream ROOT PORT``; :func:`start` does so in a subprocess and
returns once it answers. A subprocess, not a thread: the tests kill it mid-run.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body are two writes: without TCP_NODELAY, Nagle's algorithm and the client's
    # delayed ACK hold the body back ≈ 40 ms on every keep-alive response
    disable_nagle_algorithm = True
    root = Path(".")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        """Stay quiet (the tests read nothing from the server's stderr)."""

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        """Serve a tile, or misbehave as the path says."""
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts[:1] == ["status"] and len(parts) > 1:
            self._send(int(parts[1]), b"upstream says no", "text/plain")
            return
        if parts[:1] == ["garbage"]:
            self._send(200, b"<html>please log in</html>", "text/html")
            return
        if parts[:1] == ["slow"] and len(parts) > 1:
            time.sleep(float(parts[1]))
            parts = parts[2:]
        path = self.root.joinpath(*parts)
        if not parts or ".." in parts or not path.is_file():
            self._send(404, b"no such tile", "text/plain")
            return
        ctype = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp"}
        self._send(200, path.read_bytes(), ctype.get(path.suffix, "application/octet-stream"))


def serve(root: Path, port: int) -> None:
    """Serve ``root`` on 127.0.0.1:``port`` until killed."""
    _Handler.root = Path(root)
    ThreadingHTTPServer.allow_reuse_address = True  # restart on the same port at once
    ThreadingHTTPServer.daemon_threads = True
    with ThreadingHTTPServer(("127.0.0.1", port), _Handler) as httpd:
        httpd.serve_forever()


def free_port() -> int:
    """Return a TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(root: Path, port: int, timeout: float = 10.0) -> subprocess.Popen:
    """Start the server in a subprocess and return it once it accepts connections."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.xyz_upstream", str(root), str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"test tile server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"test tile server did not start on port {port}")


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the server (an outage, not a clean shutdown) and reap it."""
    proc.kill()
    proc.wait(timeout=10)


def tile_pixels(z: int, x: int, y: int, size: int = 256) -> np.ndarray:
    """Return a distinct, smooth RGB tile for (z, x, y) (so a wrong tile is noticed)."""
    v, u = np.mgrid[0:size, 0:size].astype(np.float32) / size
    r = 60 + 120 * u + 10 * (x % 4)
    g = 60 + 120 * v + 10 * (y % 4)
    b = 40 + 40 * np.sin(6 * u + 3 * v + z) + 20 * z % 100
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def write_tiles(root: Path, zooms: range, size: int = 256, skip=()) -> None:
    """Write every tile of ``zooms`` as PNG under ``root/{z}/{x}/{y}.png`` (minus ``skip``)."""
    for z in zooms:
        for x in range(1 << z):
            for y in range(1 << z):
                if (z, x, y) in skip:
                    continue
                d = root / str(z) / str(x)
                d.mkdir(parents=True, exist_ok=True)
                Image.fromarray(tile_pixels(z, x, y, size)).save(d / f"{y}.png")


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]))
