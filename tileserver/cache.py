"""Persistent tile caches: re-exported from :mod:`generator.stores`, where they now live.

The generator's seeder and exporter write the same keys the server reads (the encoded tiles of
:mod:`generator.encoded` included) and the generator never imports ``tileserver``, so the stores
moved there; these names stay importable from here for the server and existing code.
"""

from __future__ import annotations

from generator.store import MemoryStore, Store
from generator.stores import CacheConfigError, DiskStore, cache_problem, has, open_store

__all__ = [
    "CacheConfigError",
    "DiskStore",
    "MemoryStore",
    "Store",
    "cache_problem",
    "has",
    "open_store",
]
