"""Persistent tile caches behind the generator's ``Store`` contract, and ``--cache`` parsing.

A ``--cache`` value names a folder (:class:`DiskStore`, diskcache), ``redis://HOST:PORT/DB``
(:class:`~generator.stores.redis_store.RedisStore`, shared by a fleet of servers and seeding
workers) or ``memory``. They live in the generator, not the server, because ``orbis seed`` and
``orbis export`` read and write the same keys as ``orbis serve`` (windows, tiles and the encoded
bytes of :mod:`generator.encoded`), and the generator never imports ``tileserver``;
``tileserver.cache`` and ``tileserver.redis_store`` re-export these names.
"""

from __future__ import annotations

from ..store import MemoryStore, Store
from .disk import CacheConfigError, DiskStore

__all__ = ["CacheConfigError", "DiskStore", "cache_problem", "has", "open_store"]


def has(store: Store, key: str) -> bool:
    """Return True when ``store`` holds ``key`` (without reading the value where it can).

    Planning a seed asks this for every tile and format of a box; reading each encoded tile
    back from Redis just to learn it is there would move the whole cache over the network.
    """
    probe = getattr(store, "contains", None)
    return bool(probe(key)) if probe is not None else store.get(key) is not None


def cache_problem(store: Store) -> str | None:
    """Return what is wrong with a store now, or None (stores without ``problem()``, such as
    the in-memory one, cannot break)."""
    probe = getattr(store, "problem", None)
    return probe() if probe is not None else None


def open_store(spec: str | None, size_limit: int = 8 * 2**30) -> Store:
    """Return the store a ``--cache`` value names: a folder, ``redis://HOST:PORT/DB`` (shared
    by several servers, see :mod:`generator.stores.redis_store`), or memory when None.

    Raises:
        CacheConfigError: an unsupported scheme, a bad Redis URL or an unusable folder.
    """
    if spec is None or spec == "memory":
        return MemoryStore()
    if "://" in spec:
        scheme = spec.split("://", 1)[0]
        if scheme in ("redis", "rediss"):
            from .redis_store import RedisStore  # imported only when used

            return RedisStore(spec)
        raise CacheConfigError(
            f"cache {spec!r}: scheme {scheme!r} is not supported "
            "(give a directory or redis://HOST:PORT/DB)"
        )
    return DiskStore(spec, size_limit)
