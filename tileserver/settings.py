"""Server settings: passed to ``create_app``, never read at import time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Runtime knobs of a server; none of them changes tile bytes."""

    config_dir: Path | None = None
    #: a cache folder (diskcache) or None for an in-memory cache
    cache: str | None = None
    #: cache size limit in bytes (diskcache evicts least recently used past it)
    cache_size_limit: int = 8 * 2**30
    #: tiles generated at once; more requests wait in the queue
    max_generating: int = 2
    #: waiting generation requests beyond which the server answers 503 + Retry-After
    max_queue: int = 32
    #: worlds to load (all in the config folder when None)
    worlds: tuple[str, ...] | None = None
    #: model override for every world (path), e.g. from ``orbis serve --model``
    model: str | None = None
    #: prompt of every text-conditioned model (``--prompt``; part of the content hash)
    prompt: str | None = None
    #: device and dtype of diffusers models (``--device``, ``--dtype``; the dtype is part of the
    #: content hash: float16 moves pixels by more than rounding)
    device: str = "cpu"
    dtype: str = "float32"
    max_age: int = 3600
    #: in-process LRU of encoded tiles in front of the cache (bytes)
    hot_cache_bytes: int = 256 * 2**20
    #: remembered tile responses answered before routing (``tileserver.fastpath``)
    response_memo_entries: int = 16384
    #: seconds a request waits for a generation before 503 + Retry-After (work goes on)
    request_timeout: float = 120.0
    #: load worlds in a background thread; /health answers 503 until they are ready
    load_in_background: bool = False
