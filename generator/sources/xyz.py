"""Another tile server as the base (``[base] kind = "xyz"``): an :class:`ImagerySource` over HTTP.

A MapProxy or TiTiler user points orbis at ``https://host/{z}/{x}/{y}.png`` and expects three
things, which decide the shape of this module:

* **Pixels or an honest error, never garbage.** A tile the upstream does not have (404, 204) is
  a valid, cacheable answer: no data, alpha 0, and the fallback world shows through. Anything
  else that goes wrong (refused connection, timeout, a 5xx, a body Pillow cannot decode, a tile
  of the wrong shape) raises :class:`~generator.errors.UpstreamError`, which the server turns
  into a 502 naming the upstream's status and which nothing caches, so the tile is fetched again
  once the upstream is back.
* **One connection pool.** A map view asks for dozens of tiles at once; a shared
  :class:`httpx.Client` keeps connections alive between them (and notices a restarted upstream:
  a dead pooled connection fails, is retried on a fresh one).
* **Short, bounded retries.** Connect errors, timeouts and 5xx are often transient (a restart,
  a load balancer shuffling), so each is retried ``retries`` times with a short exponential
  backoff; a 4xx is the upstream's considered answer and is not.

Identity: the URL template, the zoom and the tile size decide the bytes as far as orbis can
know. What the upstream serves under that URL may change (a re-render, new imagery) without the
world's content hash changing; to see new upstream content, change the URL (a version query
parameter is enough) or clear the cache. Request headers (often credentials) are not hashed.

Decoded tiles are kept in a small in-memory LRU (repeated reads by neighbouring windows);
persistence is the pyramid store's job.
"""

from __future__ import annotations

import io
import logging
import re
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
from PIL import Image, UnidentifiedImageError

from .. import tiles
from ..errors import InvalidTile, OrbisError, UpstreamError
from ..singleflight import SingleFlight

log = logging.getLogger("orbis.sources.xyz")

#: placeholders a template may use; one of {y} / {-y} (TMS rows, counted from the south) is needed
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_KNOWN = {"z", "x", "y", "-y"}
#: statuses that mean "this tile has no data" (not an error: cached as alpha 0)
_EMPTY = {204, 404}
#: statuses worth another try (the upstream may be restarting or throttling)
_RETRY = {429, 500, 502, 503, 504}


class InvalidURLTemplate(OrbisError, ValueError):
    """An XYZ URL template that cannot address tiles.

    A ``ValueError`` too, so a pydantic validator that calls :func:`validate_url` reports it as
    an error of the config key (``base.url``) like any other bad value.
    """


def validate_url(url: str) -> str:
    """Return ``url`` if it is a usable XYZ template, else raise a one-line error saying why.

    A template is an http(s) URL with ``{z}``, ``{x}`` and ``{y}`` (or ``{-y}`` for TMS row
    order) and no other placeholder.

    Raises:
        InvalidURLTemplate: (a ``ValueError``) naming the template and the problem.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidURLTemplate(
            "url: an XYZ template is needed, e.g. https://host/{z}/{x}/{y}.png"
        )
    shown = url if len(url) <= 200 else url[:200] + "…"
    if not re.match(r"^https?://[^/{}\s]+", url):
        raise InvalidURLTemplate(f"url {shown!r}: must start with http:// or https:// and a host")
    names = _PLACEHOLDER.findall(url)
    unknown = sorted(set(names) - _KNOWN)
    if unknown:
        raise InvalidURLTemplate(
            f"url {shown!r}: unknown placeholder {{{unknown[0]}}} "
            "(use {z}, {x}, {y} or {-y})"
        )
    missing = [p for p in ("z", "x") if p not in names]
    if "y" not in names and "-y" not in names:
        missing.append("y")
    if missing:
        need = ", ".join("{" + m + "}" for m in missing)
        raise InvalidURLTemplate(
            f"url {shown!r}: no {need}; an XYZ template needs {{z}}, {{x}} and {{y}}"
        )
    return url


_pool_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """Return the threads that fetch a tile's neighbours (I/O bound: no model runs there)."""
    global _executor
    with _pool_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="orbis-xyz")
        return _executor


def _world_bounds() -> tuple[float, float, float, float]:
    b = tiles.tms().bbox  # morecantile: WebMercatorQuad's lon/lat extent
    return (b.left, b.bottom, b.right, b.top)


class XYZSource:
    """Tiles of another XYZ tile server, decoded to RGB + alpha (the ``xyz`` base kind).

    Args:
        url: template with ``{z}``, ``{x}``, ``{y}`` (or ``{-y}``).
        max_zoom: the upstream's finest zoom (the source's native zoom).
        tile_size: pixels per tile side; a square upstream tile of another size is resampled.
        timeout: seconds for each of connect, read, write and pool wait.
        retries: further attempts after a connect error, timeout or retryable status.
        headers: sent with every request (e.g. a User-Agent or an API key; not hashed).
        bounds: lon/lat footprint (west, south, east, north); default the whole Web Mercator world.
        cache_tiles: decoded tiles kept in memory (≈ 0.45 MiB each at 256 px).
        backoff: seconds before the first retry, doubling after each.
    """

    kind = "xyz"

    def __init__(
        self,
        url: str,
        max_zoom: int,
        tile_size: int = 256,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        headers: dict[str, str] | None = None,
        bounds: tuple[float, float, float, float] | None = None,
        cache_tiles: int = 64,
        backoff: float = 0.1,
    ) -> None:
        self.url = validate_url(url)
        if not 0 <= int(max_zoom) <= 30:
            raise InvalidURLTemplate(f"max_zoom: must be in 0..30, got {max_zoom}")
        self.native_zoom = int(max_zoom)
        self.tile_size = int(tile_size)
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self._bounds = tuple(bounds) if bounds is not None else _world_bounds()
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": "orbis (xyz base)", **(headers or {})},
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
            follow_redirects=True,
        )
        self._cache_tiles = max(0, int(cache_tiles))
        self._lru: OrderedDict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()
        self._flight = SingleFlight()
        #: counters for benchmarks and /metrics-style checks
        self.fetches = 0
        self.failures = 0

    # ---- protocol --------------------------------------------------------------------------

    def identity(self) -> dict[str, object]:
        """Return the template, zoom, tile size and a given footprint (it decides where the
        fallback shows); upstream content changes are not seen, headers are not hashed."""
        out: dict[str, object] = {
            "kind": "xyz",
            "url": self.url,
            "max_zoom": self.native_zoom,
            "tile_size": self.tile_size,
        }
        if self._bounds != _world_bounds():
            out["bounds"] = [round(float(v), 9) for v in self._bounds]
        return out

    def bounds(self) -> tuple[float, float, float, float]:
        """Return the footprint (west, south, east, north); the whole world unless given."""
        return self._bounds  # type: ignore[return-value]

    def read(self, z: int, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
        """Return tile (z, x, y) as (uint8 (S, S, 3), float32 (S, S) alpha 0..1), read-only.

        x wraps modulo 2**z; 404/204 give alpha 0 everywhere.

        Raises:
            InvalidTile: z above the native zoom or y outside the grid.
            UpstreamError: the upstream failed (status None when it could not be reached).
        """
        if z > self.native_zoom:
            raise InvalidTile(f"xyz base: zoom {z} is above its max_zoom {self.native_zoom}")
        t = tiles.validate(z, x, y, self.native_zoom)
        key = (t.z, t.x, t.y)
        with self._lock:
            hit = self._lru.get(key)
            if hit is not None:
                self._lru.move_to_end(key)
                return hit
        value = self._flight.do(key, lambda: self._fetch(*key))
        if self._cache_tiles:
            with self._lock:
                self._lru[key] = value
                self._lru.move_to_end(key)
                while len(self._lru) > self._cache_tiles:
                    self._lru.popitem(last=False)
        return value

    def read_margin(self, z: int, x: int, y: int, margin: int) -> tuple[np.ndarray, np.ndarray]:
        """Return tile (z, x, y) with ``margin`` px of its neighbours around it.

        The composition's feather needs the data mask around a tile; the up-to-8 neighbours are
        fetched side by side on the pool (a cold tile costs one round trip, not nine). x wraps;
        rows beyond the poles repeat the edge row (the world's edge is not the data's edge, so
        it must not fade to the fallback there).

        Raises:
            UpstreamError: any of the tiles failed (no partial answer is returned).
        """
        s, n = self.tile_size, 1 << z
        if margin <= 0:
            return self.read(z, x, y)
        if margin > s:
            raise ValueError(f"margin {margin} is more than a tile ({s} px)")
        offsets = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if 0 <= y + dy < n]
        parts = list(_pool().map(lambda d: self.read(z, (x + d[0]) % n, y + d[1]), offsets))
        big = np.zeros((3 * s, 3 * s, 3), np.uint8)
        alpha = np.zeros((3 * s, 3 * s), np.float32)
        for (dx, dy), (rgb, a) in zip(offsets, parts, strict=True):
            sl = np.s_[(dy + 1) * s : (dy + 2) * s, (dx + 1) * s : (dx + 2) * s]
            big[sl], alpha[sl] = rgb, a
        if y == 0:  # above the north pole: the first row again
            big[:s], alpha[:s] = big[s : s + 1], alpha[s : s + 1]
        if y == n - 1:  # below the south pole: the last row again
            big[2 * s :], alpha[2 * s :] = big[2 * s - 1 : 2 * s], alpha[2 * s - 1 : 2 * s]
        c = np.s_[s - margin : 2 * s + margin, s - margin : 2 * s + margin]
        return big[c], alpha[c]

    # ---- helpers ---------------------------------------------------------------------------

    def tile_url(self, z: int, x: int, y: int) -> str:
        """Return the URL of tile (z, x, y) (``{-y}`` counts rows from the south, as TMS)."""
        return (
            self.url.replace("{z}", str(z))
            .replace("{x}", str(x))
            .replace("{-y}", str((1 << z) - 1 - y))
            .replace("{y}", str(y))
        )

    def clear(self) -> None:
        """Forget the decoded tiles held in memory."""
        with self._lock:
            self._lru.clear()

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> XYZSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fetch(self, z: int, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
        url = self.tile_url(z, x, y)
        self.fetches += 1
        try:
            response = self._get(url)
        except UpstreamError:
            self.failures += 1
            raise
        if response.status_code in _EMPTY:
            return self._empty()
        try:
            return self._decode(response.content)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
            self.failures += 1
            kind = response.headers.get("content-type", "no content-type")
            raise UpstreamError(
                url, response.status_code, f"undecodable tile ({kind}): {exc}"
            ) from None

    def _get(self, url: str) -> httpx.Response:
        """GET with retries on transport errors and retryable statuses; raise on failure."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._client.get(url)
            except httpx.TimeoutException as exc:
                problem, status = f"timed out ({type(exc).__name__})", None
            except httpx.TransportError as exc:
                problem, status = f"unreachable ({type(exc).__name__}: {exc})", None
            else:
                code = response.status_code
                if code == 200 or code in _EMPTY:
                    return response
                status = code
                problem = f"HTTP {code} {response.reason_phrase}".rstrip()
                if code not in _RETRY:
                    raise UpstreamError(url, status, problem)
            if last:
                tries = f" after {self.retries + 1} attempts" if self.retries else ""
                raise UpstreamError(url, status, problem + tries)
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _decode(self, body: bytes) -> tuple[np.ndarray, np.ndarray]:
        with Image.open(io.BytesIO(body)) as im:
            im.load()
            if im.width != im.height:
                raise ValueError(f"tile is {im.width}×{im.height}, not square")
            has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            im = im.convert("RGBA" if has_alpha else "RGB")
            if im.width != self.tile_size:
                im = im.resize((self.tile_size, self.tile_size), Image.Resampling.LANCZOS)
            arr = np.asarray(im)
        rgb = np.ascontiguousarray(arr[..., :3])
        if has_alpha:
            alpha = arr[..., 3].astype(np.float32) / 255.0
        else:
            alpha = np.ones(arr.shape[:2], dtype=np.float32)
        rgb.setflags(write=False)
        alpha.setflags(write=False)
        return rgb, alpha

    def _empty(self) -> tuple[np.ndarray, np.ndarray]:
        s = self.tile_size
        rgb = np.zeros((s, s, 3), dtype=np.uint8)
        alpha = np.zeros((s, s), dtype=np.float32)
        rgb.setflags(write=False)
        alpha.setflags(write=False)
        return rgb, alpha


#: the spelling ``generator.world.make_source`` imports
XyzSource = XYZSource
