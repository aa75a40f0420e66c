"""A small HTTP client for a remote orbis, for simulation tools that want arrays, not tiles.

``Client("http://host:8000").region("earth", bbox, resolution)`` returns the same image and
affine transform as ``World.region`` on the server's machine: the tiles come over HTTP (PNG,
lossless) and are assembled by the same code, :mod:`generator.region`. Nothing here imports
torch, Starlette or the model: httpx, numpy, Pillow, morecantile and affine are enough.

Errors are :class:`RemoteError` (an ``OrbisError``) naming the request, the status and the
server's ``{"detail": …}``; a server that is busy generating (503 + ``Retry-After``) is retried
a few times before giving up.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
from affine import Affine
from PIL import Image, UnidentifiedImageError

from generator.errors import OrbisError
from generator.region import plan_region
from generator.region import region as assemble_region

__all__ = ["Client", "RemoteError"]


class RemoteError(OrbisError):
    """A request to a remote orbis that failed; ``status`` is None when no answer came."""

    def __init__(self, method: str, url: str, status: int | None, detail: str) -> None:
        self.method, self.url, self.status, self.detail = method, url, status, detail
        where = f"{method} {url}"
        super().__init__(f"{where}: {status} {detail}" if status else f"{where}: {detail}")


class Client:
    """A remote orbis at ``base_url`` (e.g. ``http://127.0.0.1:8000``).

    Args:
        base_url: the server's root URL (a path prefix is kept).
        timeout: seconds for one request; cold deep tiles can take a while to generate.
        retries: how many times a 503 (busy, ``Retry-After``) is retried.
        workers: tiles fetched at once by :meth:`region`.
        transport: an ``httpx`` transport (tests pass ``httpx.MockTransport``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 120.0,
        retries: int = 5,
        workers: int = 4,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.workers = workers
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    # ---- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str) -> httpx.Response:
        url = f"{self.base_url}{path}"
        for attempt in range(self.retries + 1):
            try:
                r = self._http.get(path)
            except httpx.TransportError as exc:
                raise RemoteError("GET", url, None, f"cannot reach the server: {exc}") from None
            if r.status_code == 503 and attempt < self.retries:
                time.sleep(min(float(r.headers.get("Retry-After", "1") or 1), 10.0))
                continue
            if r.status_code >= 400:
                raise RemoteError("GET", url, r.status_code, _detail(r))
            return r
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    # ---- API ------------------------------------------------------------------------------
    def worlds(self) -> list[dict[str, Any]]:
        """Return ``/worlds``: name, title, zoom range, version and model of each world."""
        return self._get("/worlds").json()

    def tilejson(self, world: str) -> dict[str, Any]:
        """Return the world's TileJSON 3.0.0 document."""
        return self._get(f"/tiles/{world}/tilejson.json").json()

    def tile_bytes(self, world: str, z: int, x: int, y: int, fmt: str = "png") -> bytes:
        """Return one tile's encoded bytes, as served."""
        return self._get(f"/tiles/{world}/{z}/{x}/{y}.{fmt}").content

    def tile(self, world: str, z: int, x: int, y: int, fmt: str = "png") -> np.ndarray:
        """Return one tile as a (256, 256, 3) uint8 array (x wraps around the antimeridian)."""
        data = self.tile_bytes(world, z, x, y, fmt)
        try:
            with Image.open(io.BytesIO(data)) as im:
                return np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError) as exc:
            url = f"{self.base_url}/tiles/{world}/{z}/{x}/{y}.{fmt}"
            raise RemoteError("GET", url, 200, f"the tile cannot be decoded: {exc}") from None

    def region(
        self,
        world: str,
        bbox: Iterable[float],
        resolution: float,
        *,
        progress: Callable[[int], object] | None = None,
    ) -> tuple[np.ndarray, Affine]:
        """Return (image, transform) of a lon/lat box at ``resolution`` ground m/px.

        The same pixels and transform as ``World.region`` on the server (see
        :mod:`generator.region` for the rules); tiles are fetched as PNG, ``workers`` at once.

        Raises:
            InvalidRegion: a bad box or resolution (checked before any tile is fetched).
            RemoteError: the world is unknown or a tile request failed.
        """
        max_zoom = int(self.tilejson(world)["maxzoom"])
        plan_region(bbox, resolution, max_zoom)  # fail early on bad arguments

        def fetch(z: int, x: int, y: int) -> np.ndarray:
            return self.tile(world, z, x, y)

        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
            return assemble_region(
                fetch, bbox, resolution, max_zoom, mapper=pool.map, progress=progress
            )


def _detail(r: httpx.Response) -> str:
    """Return the server's ``detail`` (orbis answers ``{"detail": …}``), else the reason."""
    try:
        body = r.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    text = r.text.strip()[:200]
    return f"{r.reason_phrase}: {text}" if text else r.reason_phrase
