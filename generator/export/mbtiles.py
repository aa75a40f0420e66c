"""MBTiles 1.3: an SQLite file with ``metadata`` and ``tiles`` tables, rows in TMS order.

The stdlib's sqlite3 is all it takes. Tiles are stored with ``tile_row = 2**z - 1 - y`` (TMS,
origin at the bottom), as the specification requires; readers such as GDAL, QGIS, MapLibre
(through a server) and tileserver-gl flip them back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

from .. import tiles

SCHEMA = """
CREATE TABLE metadata (name TEXT, value TEXT);
CREATE UNIQUE INDEX metadata_name ON metadata (name);
CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);
"""


def tms_row(z: int, y: int) -> int:
    """Return the MBTiles (TMS) row of XYZ row y at zoom z."""
    return (1 << z) - 1 - y


def write_mbtiles(
    path: Path, items: Iterable[tuple[tiles.Tile, bytes]], metadata: Mapping[str, str]
) -> int:
    """Write a new MBTiles file at ``path`` (which must not hold a database) and return the
    number of tiles. Callers write to a temporary path and rename (``atomic_path``)."""
    db = sqlite3.connect(path)
    try:
        # a fresh file written once: no rollback journal needed, the rename is the commit
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.executescript(SCHEMA)
        db.executemany("INSERT INTO metadata VALUES (?, ?)", sorted(metadata.items()))
        count = 0
        batch: list[tuple[int, int, int, bytes]] = []
        for t, data in items:
            batch.append((t.z, t.x, tms_row(t.z, t.y), data))
            count += 1
            if len(batch) >= 256:
                db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", batch)
                batch.clear()
        db.executemany("INSERT INTO tiles VALUES (?, ?, ?, ?)", batch)
        db.commit()
    finally:
        db.close()
    return count
