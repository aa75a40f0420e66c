"""The cache contract the generator writes through, and an in-memory implementation.

A store maps string keys to bytes. Values are framed (:func:`pack` / :func:`unpack`) with a
magic and a SHA-256 prefix, so a truncated or corrupt entry reads as a miss and is regenerated
instead of being served. :mod:`generator.stores` provides the persistent backends (diskcache,
Redis).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Protocol

_MAGIC = b"ORB1"


class Store(Protocol):
    """Bytes by key; implementations must be thread-safe and never raise on a miss."""

    def get(self, key: str) -> bytes | None:
        """Return the value or None."""
        ...

    def set(self, key: str, value: bytes) -> None:
        """Store a value (atomically: a reader sees all of it or nothing)."""
        ...

    def delete(self, key: str) -> None:
        """Drop a value if present."""
        ...


def pack(payload: bytes) -> bytes:
    """Frame a payload with a magic and its checksum."""
    return _MAGIC + hashlib.sha256(payload).digest()[:16] + payload


def unpack(value: bytes | None) -> bytes | None:
    """Return the payload of a framed value, or None if it is missing or corrupt."""
    if value is None or len(value) < 20 or value[:4] != _MAGIC:
        return None
    payload = value[20:]
    if hashlib.sha256(payload).digest()[:16] != value[4:20]:
        return None
    return payload


class MemoryStore:
    """A bounded in-process LRU store (the default when no cache is configured)."""

    def __init__(self, max_bytes: int = 512 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        """Return the value or None."""
        with self._lock:
            v = self._data.get(key)
            if v is not None:
                self._data.move_to_end(key)
            return v

    def set(self, key: str, value: bytes) -> None:
        """Store a value, evicting the least recently used past the size limit."""
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._data[key] = value
            self._size += len(value)
            while self._size > self.max_bytes and len(self._data) > 1:
                _, v = self._data.popitem(last=False)
                self._size -= len(v)

    def contains(self, key: str) -> bool:
        """Return True when the key is stored (no LRU refresh)."""
        with self._lock:
            return key in self._data

    def delete(self, key: str) -> None:
        """Drop a value if present."""
        with self._lock:
            v = self._data.pop(key, None)
            if v is not None:
                self._size -= len(v)
