"""The diskcache-backed store: a cache folder on one machine (the default persistent cache).

``DiskStore`` wraps diskcache: values are written in an SQLite transaction (large ones to a file
first, committed after), so a crash mid-write leaves no half entry; the size limit evicts least
recently used entries. Values carry the generator's checksum framing, so a corrupt entry is a
miss, not a broken tile. (Moved here from ``tileserver.cache``, which re-exports it: the
generator's seeder and exporter write the very keys the server reads, and the generator never
imports the server.)
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import diskcache

from ..errors import OrbisError

log = logging.getLogger("orbis.cache")


class CacheConfigError(OrbisError):
    """A ``--cache`` value that cannot be used."""


class DiskStore:
    """diskcache-backed store (the default persistent cache).

    Survives its folder being removed or its disk filling up while the server runs: every
    failure is a logged miss or a skipped write (tiles are regenerated and served), a removed
    folder is recreated by the next write, and :meth:`problem` tells ``/health`` what is wrong
    until a write succeeds again.
    """

    def __init__(self, directory: str | Path, size_limit: int = 8 * 2**30) -> None:
        self.directory = Path(directory)
        self.size_limit = size_limit
        self._lock = threading.Lock()
        self._error: str | None = None
        try:
            self._cache = self._open()
        except OSError as exc:
            raise CacheConfigError(
                f"cannot use cache directory {str(directory)!r}: {exc}"
            ) from None

    def _open(self) -> diskcache.Cache:
        self.directory.mkdir(parents=True, exist_ok=True)
        return diskcache.Cache(
            str(self.directory), size_limit=self.size_limit, eviction_policy="least-recently-used"
        )

    def _reopen_if_removed(self) -> None:
        """Recreate a folder removed under us (SQLite would go on writing to the unlinked file,
        so every later tile would be cached nowhere)."""
        if self.directory.is_dir():
            return
        with self._lock:
            if self.directory.is_dir():
                return
            log.warning("cache directory %s was removed; recreating it", self.directory)
            try:
                self._cache = self._open()
            except OSError as exc:
                self._error = f"cannot recreate cache directory {str(self.directory)!r}: {exc}"
                log.warning("%s", self._error)

    def get(self, key: str) -> bytes | None:
        """Return the value or None (a read error counts as a miss)."""
        try:
            v = self._cache.get(key, default=None, retry=True)
        except Exception as exc:  # noqa: BLE001 - a broken cache must not break serving
            log.warning("cache read failed for %s: %s", key, exc)
            return None
        return v if isinstance(v, bytes) else None

    def set(self, key: str, value: bytes) -> None:
        """Store a value; a write error is logged and the tile is still served."""
        self._reopen_if_removed()
        try:
            self._cache.set(key, value, retry=True)
        except Exception as exc:  # noqa: BLE001
            self._error = f"cache write failed: {type(exc).__name__}: {exc}"
            log.warning("cache write failed for %s: %s", key, exc)
        else:
            self._error = None

    def contains(self, key: str) -> bool:
        """Return True when the key is stored (a read error counts as absent)."""
        try:
            return key in self._cache
        except Exception as exc:  # noqa: BLE001
            log.warning("cache read failed for %s: %s", key, exc)
            return False

    def delete(self, key: str) -> None:
        """Drop a value if present."""
        try:
            self._cache.delete(key, retry=True)
        except Exception as exc:  # noqa: BLE001
            log.warning("cache delete failed for %s: %s", key, exc)

    def problem(self) -> str | None:
        """Return what is wrong with the cache now (for ``/health``), or None when it works."""
        if not self.directory.is_dir():
            return f"cache directory {str(self.directory)!r} is missing (recreated on next write)"
        return self._error

    def volume(self) -> int:
        """Return the bytes used on disk."""
        return int(self._cache.volume())

    def close(self) -> None:
        """Close the underlying SQLite handles."""
        self._cache.close()
