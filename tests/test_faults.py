"""Faults around the persistent cache: crashes mid-write, a vanished or corrupt cache, a cache
folder that cannot be created, and the size limit.

The server runs through Starlette's TestClient over a diskcache folder in a temporary directory,
with the tiny random model of ``tests/serving_helpers.py``; tiles stay at zoom <= 5.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from generator.store import pack, unpack
from generator.tiles import Tile
from tests.serving_helpers import decode, save_tiny_model
from tileserver import Settings, create_app
from tileserver.cache import CacheConfigError, DiskStore, open_store

REPO = Path(__file__).resolve().parent.parent

#: a z5 tile (windows sampled by the model), z <= 4 tiles (Blue Marble base and box means),
#: an @2x mosaic and a reprojected WorldCRS84Quad tile
URLS = (
    "/tiles/earth/5/9/9.png",
    "/tiles/earth/4/4/5.webp",
    "/tiles/earth/3/2/2@2x.png",
    "/tiles/earth/WorldCRS84Quad/2/3/1.png",
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@contextmanager
def serving(model_dir: Path, cache: Path) -> Iterator[TestClient]:
    settings = Settings(cache=str(cache), model=str(model_dir), worlds=("earth",))
    with TestClient(create_app(settings)) as client:
        yield client


def fetch(client: TestClient, url: str) -> bytes:
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code, r.text)
    decode(r.content)  # a complete, valid image
    return r.content


def route_key(client: TestClient, z: int, x: int, y: int, fmt: str = "png") -> str:
    """The key the tile route stores encoded tiles under (WebMercatorQuad, @1x)."""
    world = client.app.state.worlds["earth"]
    return f"{world.content_hash}/e/{z}/{x}/{y}@1.{fmt}"


def pyramid_key(client: TestClient, z: int, x: int, y: int) -> str:
    """The key the pyramid stores a tile's pixels under."""
    return client.app.state.worlds["earth"].pyramid.tile_key(Tile(x, y, z))


# ---- a writer killed mid-write -------------------------------------------------------------

#: writes 300 KB framed values forever, printing each key once ``set`` has returned. The
#: ``tileserver`` package is stubbed so that ``tileserver.cache`` loads without the app (and
#: torch): the writer starts in a fraction of a second.
WRITER = r"""
import os, sys, types
pkg = types.ModuleType("tileserver")
pkg.__path__ = [os.path.join(sys.argv[2], "tileserver")]
sys.modules["tileserver"] = pkg
from generator.store import pack
from tileserver.cache import DiskStore

store = DiskStore(sys.argv[1])
print("started", flush=True)
i = int(sys.argv[3])
while True:
    store.set(f"k{i}", pack(os.urandom(300_000)))
    print(i, flush=True)
    i += 1
"""


def _write_then_kill(directory: Path, first: int, seconds: float) -> list[int]:
    """Run the writer, SIGKILL it ``seconds`` after it started; return the keys it finished."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), str(REPO), str(first)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "started", (line, proc.stderr.read())
        time.sleep(seconds)
    finally:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err
    return [int(s) for s in out.split()]


@pytest.mark.slow
def test_killed_writer_leaves_no_half_entry(tmp_path):
    directory = tmp_path / "c"
    rng = random.Random(0)
    done: list[int] = []
    for _ in range(3):  # three kills at different points of a write; keys never reused
        done += _write_then_kill(directory, max(done, default=-1) + 10, 0.8 + rng.random() * 0.5)
    assert len(done) >= 3, "the writer finished almost nothing: the test proves nothing"

    store = DiskStore(directory)
    try:
        keys = set(store._cache.iterkeys()) | {f"k{i}" for i in range(max(done) + 12)}
        present = 0
        for key in sorted(keys):
            value = store.get(key)
            if value is None:
                assert int(key[1:]) not in done, f"{key} was committed but is gone"
                continue
            assert unpack(value) is not None, f"{key}: a half-written entry is returned"
            assert len(unpack(value)) == 300_000
            present += 1
        assert present >= len(done)
        # the store still works after the crashes
        store.set("after", pack(b"ok"))
        assert unpack(store.get("after")) == b"ok"
    finally:
        store.close()


# ---- the cache folder removed while serving ------------------------------------------------


@pytest.mark.slow
def test_cache_directory_removed_while_serving(model_dir, tmp_path):
    cache = tmp_path / "c"
    with serving(model_dir, cache) as client:
        first = fetch(client, "/tiles/earth/4/4/5.png")
        assert client.get("/health").json()["cache"] == {"ok": True, "detail": "ok"}
        assert any(cache.iterdir())
        shutil.rmtree(cache)
        r = client.get("/health")  # reported before anything notices it
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "degraded"
        assert "missing" in r.json()["cache"]["detail"]
        for url in URLS + ("/tiles/earth/4/5/5.png", "/tiles/earth/3/1/1.jpg"):
            fetch(client, url)
        assert fetch(client, "/tiles/earth/4/4/5.png") == first
        # the next write recreated the folder, and tiles are cached in it again
        assert cache.is_dir()
        store = client.app.state.store
        assert unpack(store.get(route_key(client, 4, 5, 5))) is not None
        r = client.get("/health")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ok"
        assert client.get("/metrics").status_code == 200
    # a new server over the vanished folder recreates it and serves the same bytes
    with serving(model_dir, cache) as client:
        assert fetch(client, "/tiles/earth/4/4/5.png") == first
    assert cache.is_dir()


# ---- the disk filling up while serving ---------------------------------------------------


@pytest.fixture()
def small_filesystem(tmp_path) -> Iterator[Path]:
    """A real 8 MB tmpfs (needs root, as CI has; skipped with the reason elsewhere)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def _fill(folder: Path) -> Path:
    """Write a file until the filesystem is full; return it."""
    filler = folder / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


@pytest.mark.slow
def test_full_disk_is_survived_and_reported(model_dir, small_filesystem):
    cache = small_filesystem / "c"
    fresh = ("/tiles/earth/4/6/5.png", "/tiles/earth/4/7/5.png", "/tiles/earth/3/3/2.png")
    with serving(model_dir, cache / "reference") as reference:
        expected = {url: fetch(reference, url) for url in fresh}
    shutil.rmtree(cache / "reference")
    with serving(model_dir, cache / "live") as client:
        fetch(client, "/tiles/earth/4/4/5.png")
        filler = _fill(small_filesystem)
        for url in fresh[:2]:
            assert fetch(client, url) == expected[url]  # generated and served all the same
        r = client.get("/health")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "degraded"
        assert "cache write failed" in body["cache"]["detail"]
        filler.unlink()  # space comes back: the next write lands and the report clears
        assert fetch(client, fresh[2]) == expected[fresh[2]]
        assert unpack(client.app.state.store.get(route_key(client, 3, 3, 2))) is not None
        assert client.get("/health").json()["status"] == "ok"


# ---- corrupt entries on disk ---------------------------------------------------------------


def _corruptions(framed: bytes) -> dict[str, object]:
    payload_flip = bytearray(framed)
    payload_flip[-1] ^= 0x01
    header_flip = bytearray(framed)
    header_flip[5] ^= 0x80
    return {
        "garbage": b"garbage" * 100,
        "empty": b"",
        "truncated": framed[: len(framed) // 2],
        "payload bit flip": bytes(payload_flip),
        "checksum bit flip": bytes(header_flip),
        "unframed payload": framed[20:],
        "not bytes": "a str value",
    }


def _write_raw(cache: Path, key: str, value: object) -> None:
    store = DiskStore(cache)
    try:
        store._cache.set(key, value)  # raw: bypasses framing, as a broken writer would
    finally:
        store.close()


def _read(cache: Path, key: str) -> bytes | None:
    store = DiskStore(cache)
    try:
        return unpack(store.get(key))
    finally:
        store.close()


@pytest.fixture(scope="module")
def warm_cache(model_dir, tmp_path_factory):
    """A cache folder holding URLS, their bytes, and the keys of the z5 tile."""
    cache = tmp_path_factory.mktemp("warm") / "c"
    with serving(model_dir, cache) as client:
        before = {url: fetch(client, url) for url in URLS}
        keys = {"route": route_key(client, 5, 9, 9), "pyramid": pyramid_key(client, 5, 9, 9)}
    return cache, before, keys


def test_corrupt_entries_under_a_running_server(model_dir, warm_cache):
    cache, before, keys = warm_cache
    with serving(model_dir, cache) as client:
        assert fetch(client, URLS[0]) == before[URLS[0]]
        client.app.state.store.set(keys["route"], b"garbage")
        client.app.state.store.set(keys["pyramid"], b"ORB1" + bytes(40))
        assert fetch(client, URLS[0]) == before[URLS[0]]
        fetch(client, "/tiles/earth/5/9/9.jpg")  # a new encoding of the corrupt pyramid entry


def test_corrupt_route_entry_is_regenerated(model_dir, warm_cache):
    cache, before, keys = warm_cache
    framed = pack(before[URLS[0]])
    for name, bad in _corruptions(framed).items():
        _write_raw(cache, keys["route"], bad)
        with serving(model_dir, cache) as client:  # fresh in-memory caches
            assert fetch(client, URLS[0]) == before[URLS[0]], name
        assert _read(cache, keys["route"]) == before[URLS[0]], f"{name}: not repaired"


@pytest.mark.slow
def test_corrupt_pyramid_entry_is_regenerated(model_dir, warm_cache):
    cache, before, keys = warm_cache
    pixels = _read(cache, keys["pyramid"])
    assert pixels is not None
    for name, bad in _corruptions(pack(pixels)).items():
        _write_raw(cache, keys["route"], b"garbage")  # so that the route asks the pyramid
        _write_raw(cache, keys["pyramid"], bad)
        with serving(model_dir, cache) as client:  # a fresh pyramid: empty front cache
            assert fetch(client, URLS[0]) == before[URLS[0]], name
        assert _read(cache, keys["pyramid"]) == pixels, f"{name}: not repaired"


@pytest.mark.slow
def test_every_entry_corrupt_regenerates_the_same_bytes(model_dir, warm_cache):
    cache, before, _ = warm_cache
    store = DiskStore(cache)
    try:
        keys = list(store._cache.iterkeys())
        assert any("/w/" in k for k in keys)  # windows too
        for i, key in enumerate(keys):
            store._cache.set(key, os.urandom(64) if i % 2 else b"ORB1" + bytes(40))
    finally:
        store.close()
    with serving(model_dir, cache) as client:
        for url, body in before.items():
            assert fetch(client, url) == body, url


# ---- a cache folder that cannot be created -------------------------------------------------


@pytest.fixture
def not_a_dir(tmp_path) -> Path:
    """A cache path under a regular file."""
    (tmp_path / "afile").write_text("not a folder")
    return tmp_path / "afile" / "cache"


@pytest.mark.parametrize("kind", ["under a file", "a file"])
def test_open_store_names_an_unusable_folder(not_a_dir, kind):
    path = not_a_dir if kind == "under a file" else not_a_dir.parent
    with pytest.raises(CacheConfigError, match=re.escape(str(path))):
        open_store(str(path))


def test_open_store_rejects_a_scheme():
    # redis:// is a supported scheme (tileserver.redis_store); others are refused by name
    with pytest.raises(CacheConfigError, match="'memcached' is not supported"):
        open_store("memcached://localhost:11211")


@pytest.mark.slow
def test_serve_with_an_unusable_cache_is_a_one_line_error(model_dir, not_a_dir, tmp_path):
    # A real process: uvicorn.run in-process would reconfigure logging for the whole session.
    # The port is held by a listening socket, so a server that did start could not bind (and
    # would exit) instead of serving forever.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "generator.cli",
                "serve",
                "--cache",
                str(not_a_dir),
                "--model",
                str(model_dir),
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            timeout=180,
        )
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "serving on" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("orbis: error: "), proc.stderr[-2000:]
    assert str(not_a_dir) in lines[0]
    assert proc.returncode == 2


# ---- the size limit ------------------------------------------------------------------------


def test_disk_store_stays_under_its_size_limit(tmp_path):
    limit = 2_000_000
    store = DiskStore(tmp_path / "c", size_limit=limit)
    try:
        values = {}
        for i in range(20):
            values[f"k{i}"] = os.urandom(300_000)
            store.set(f"k{i}", pack(values[f"k{i}"]))
            # diskcache culls on set: past the limit it evicts up to cull_limit (10) LRU entries
            assert store.volume() <= limit + 300_000, (i, store.volume())
        store._cache.cull()
        assert store.volume() <= limit
        files = [p for p in (tmp_path / "c").rglob("*") if p.is_file()]
        data = sum(p.stat().st_size for p in files if not p.name.startswith("cache.db"))
        assert data <= limit  # evicted values' files are removed, not just forgotten

        present = {k for k in values if store.get(k) is not None}
        assert 0 < len(present) <= limit // 300_000
        for k in values:
            v = store.get(k)
            assert v is None or unpack(v) == values[k], k  # evicted: a miss, never a stale value
    finally:
        store.close()


def test_disk_store_evicts_least_recently_used(tmp_path):
    # 100 KB values: ~20 fit, so a cull (10 entries at a time) never empties the cache
    limit = 2_000_000
    store = DiskStore(tmp_path / "c", size_limit=limit)
    try:
        values = {}
        for i in range(40):
            values[f"k{i}"] = os.urandom(100_000)
            store.set(f"k{i}", pack(values[f"k{i}"]))
            assert unpack(store.get(f"k{i}")) == values[f"k{i}"]
            assert unpack(store.get("k0")) == values["k0"], i  # k0 is kept recently used
            assert store.volume() <= limit + 100_000, (i, store.volume())
        evicted = [k for k in values if store.get(k) is None]
        assert "k1" in evicted and len(evicted) >= 20
    finally:
        store.close()
