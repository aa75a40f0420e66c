"""The Redis cache (``tileserver.redis_store``) against a real ``redis-server`` on 127.0.0.1.

Each test that needs it starts Debian's ``redis-server`` (installed by ``.ci/run``) on a free
port in a temporary folder, with persistence off. Redis is killed and restarted on the same port
to check that serving goes on by generating (no 500s) and that the store reconnects by itself.
The world is ``earth`` (a Blue Marble base at zoom 4, cheap) with the tiny random model; tiles
stay at z <= 6.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from starlette.testclient import TestClient

from generator.store import pack, unpack
from generator.tiles import Tile
from generator.world import World
from tests.serving_helpers import decode, parse_metrics, save_tiny_model, stop_process
from tileserver import Settings, create_app
from tileserver.cache import CacheConfigError, open_store
from tileserver.redis_store import RedisStore, parse_redis_url

REPO = Path(__file__).resolve().parent.parent
REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A real redis-server subprocess that can be killed and started again on its port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.directory),
        ]  # fmt: skip
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - handed to the process
        with log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(
            f"redis-server did not start: {(self.directory / 'redis.log').read_text()}"
        )

    def kill(self) -> None:
        """SIGKILL: Redis vanishes without a goodbye, as on a crash or a lost host."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:  # only the tests that need a server are skipped
        pytest.skip("redis-server is not installed (.ci/run installs Debian's)")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def raw(redis_server) -> Iterator[redis.Redis]:
    """A plain redis-py client to look at (and spoil) what the store wrote."""
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    yield client
    client.close()


@pytest.fixture
def store(redis_server) -> Iterator[RedisStore]:
    s = RedisStore(redis_server.url)
    yield s
    s.close()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


# ---- URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("redis://cache:6380/2", ("cache", 6380, 2, "orbis:", None)),
        ("redis://cache", ("cache", 6379, 0, "orbis:", None)),  # defaults: port 6379, db 0
        ("redis://cache/", ("cache", 6379, 0, "orbis:", None)),
        ("redis://cache:6379/0?prefix=t:&ttl=60", ("cache", 6379, 0, "t:", 60)),
        ("redis://:secret@cache:6379/1", ("cache", 6379, 1, "orbis:", None)),  # password only
    ],
)
def test_parse_redis_url(spec, expected):
    u = parse_redis_url(spec)
    assert (u.host, u.port, u.db, u.prefix, u.ttl) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("redis://cache:abc/0", "Port could not be cast"),
        ("redis://cache:70000/0", "out of range"),
        ("redis://cache:0/0", "port must be in 1..65535"),
        ("redis://:6379/0", "no host"),
        ("redis://cache:6379/zero", "database must be an integer"),
        ("redis://cache:6379/0?ttl=-5", "ttl must be a positive number"),
        ("redis://cache:6379/0?socket_timeout=nan", "socket_timeout must be a positive"),
        ("redis://cache:6379/0?pool=3", "unknown option 'pool'"),
    ],
)
def test_a_bad_redis_url_is_a_one_line_cache_config_error(spec, message):
    with pytest.raises(CacheConfigError, match=message) as info:
        open_store(spec)
    assert "\n" not in str(info.value)


def test_a_password_never_appears_in_an_error():
    with pytest.raises(CacheConfigError) as info:
        open_store("redis://user:hunter2@cache:6379/x")
    assert "hunter2" not in str(info.value) and "***" in str(info.value)


def test_open_store_dispatches_redis_urls():
    s = open_store("redis://127.0.0.1:1/3")  # nothing is contacted until the first command
    try:
        assert isinstance(s, RedisStore) and s.url.db == 3
    finally:
        s.close()


# ---- the Store contract -----------------------------------------------------------------


def test_round_trip_miss_and_delete(store, raw):
    value = pack(b"tile bytes" * 1000)
    assert store.get("a/t/5/1/2") is None  # a miss is None, never an exception
    store.set("a/t/5/1/2", value)
    assert store.get("a/t/5/1/2") == value
    assert raw.get("orbis:a/t/5/1/2") == value  # under the default key prefix
    store.delete("a/t/5/1/2")
    assert store.get("a/t/5/1/2") is None
    store.delete("never/written")  # deleting a missing key is fine
    assert store.healthy()


def test_prefix_and_ttl_from_the_url(redis_server, raw):
    s = RedisStore(redis_server.url + "?prefix=fleet:&ttl=300")
    try:
        s.set("k", b"v")
        assert raw.get("fleet:k") == b"v"
        assert 0 < raw.ttl("fleet:k") <= 300
    finally:
        s.close()


def test_a_corrupt_value_is_regenerated(tiny_model, store, raw):
    t = Tile(16, 10, 5)  # below the base: made from model windows
    first = World.load("earth", store=store, model=tiny_model)
    want = first.tile_array(t.z, t.x, t.y)
    key = "orbis:" + first.pyramid.tile_key(t)
    raw.set(key, pack(b"x" * 100)[:-1] + b"y")  # checksum no longer matches

    again = World.load("earth", store=store, model=tiny_model)  # empty in-process hot cache
    assert again.tile_array(t.z, t.x, t.y).tobytes() == want.tobytes()
    stats = again.pyramid.stats.snapshot()
    assert stats["tiles_generated"] == 1 and stats["model_evals"] == 0  # windows were cached
    assert unpack(raw.get(key)) is not None  # the good value replaced the corrupt one


# ---- Redis going away and coming back -----------------------------------------------------


def test_a_dead_redis_is_a_miss_and_a_skipped_write(redis_server, store):
    store.set("k", b"v")
    redis_server.kill()
    assert store.get("k") is None
    store.set("k2", b"v2")  # logged, skipped, no exception
    store.delete("k")
    assert not store.healthy()


def test_the_store_reconnects_when_redis_comes_back(redis_server, store, raw):
    store.set("before", b"1")
    redis_server.kill()
    assert store.get("before") is None
    redis_server.start()  # same port, empty (no persistence)
    time.sleep(store.breaker_seconds + 0.1)  # the breaker lets a probe through
    store.set("after", b"2")
    assert raw.get("orbis:after") == b"2"
    assert store.get("after") == b"2" and store.healthy()


class _Refuser:
    """A TCP listener that accepts and at once closes every connection, counting them: a Redis
    port that is there but broken, so each connection attempt can be counted."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.05)  # closing a socket does not wake a blocked accept()
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def test_the_breaker_costs_one_connection_attempt_per_second_not_per_key():
    refuser = _Refuser()
    s = RedisStore(f"redis://127.0.0.1:{refuser.port}/0")
    try:
        started = time.monotonic()
        for i in range(200):
            assert s.get(f"k{i}") is None
            s.set(f"k{i}", b"v")
        elapsed = time.monotonic() - started
        # the first command tries (redis-py retries the connect and the command once each:
        # up to 4 connections), the 399 after it are skipped
        assert 1 <= refuser.accepted <= 4, refuser.accepted
        assert elapsed < s.breaker_seconds
        first = refuser.accepted
        time.sleep(s.breaker_seconds + 0.1)  # one probe per breaker period
        for i in range(200):
            assert s.get(f"k{i}") is None
        assert 1 <= refuser.accepted - first <= 4, refuser.accepted
    finally:
        s.close()
        refuser.close()


def test_serving_goes_on_by_generating_while_redis_is_down(redis_server, raw, model_dir, caplog):
    settings = Settings(cache=redis_server.url, model=str(model_dir), worlds=("earth",))
    urls = [f"/tiles/earth/{z}/{x}/{y}.png" for z, x, y in ((3, 4, 2), (5, 9, 9), (4, 8, 5))]
    urls += ["/tiles/earth/5/10/9.png", "/tiles/earth/4/9/5.png"]
    with TestClient(create_app(settings)) as client:
        store = client.app.state.store
        assert isinstance(store, RedisStore)
        world = client.app.state.worlds["earth"]

        def route_key(url: str) -> str:
            z, x, y = url.removesuffix(".png").split("/")[-3:]
            return f"orbis:{world.content_hash}/e/{z}/{x}/{y}@1.png"

        r = client.get(urls[0])
        assert r.status_code == 200
        assert raw.exists(route_key(urls[0]))  # written through to Redis

        redis_server.kill()
        with caplog.at_level(logging.WARNING, logger="orbis.cache"):
            for url in urls[1:3] + urls[:1]:
                r = client.get(url)
                assert r.status_code == 200, (url, r.status_code, r.text)
                decode(r.content)
        assert not store.healthy()
        unreachable = [m for m in caplog.messages if "unreachable" in m]
        assert len(unreachable) == 1, caplog.messages  # one line, not one per key

        redis_server.start()
        time.sleep(store.breaker_seconds + 0.1)
        for url in urls[3:]:
            r = client.get(url)
            assert r.status_code == 200, (url, r.status_code, r.text)
            assert raw.exists(route_key(url)), url  # writes land again
        assert store.healthy()


# ---- two real servers on one Redis --------------------------------------------------------


def _metrics(base: str) -> dict[str, float]:
    return parse_metrics(httpx.get(f"{base}/metrics", timeout=10).text)


def _wait_healthy(base: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"orbis serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"orbis serve did not answer /health in {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_two_servers_on_one_redis_serve_each_others_tiles(redis_server, model_dir, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    servers = []
    try:
        for name in ("a", "b"):
            port = free_port()
            log = tmp_path / f"serve-{name}.log"
            cmd = [
                sys.executable, "-m", "generator.cli", "serve", "--host", "127.0.0.1",
                "--port", str(port), "--cache", redis_server.url, "--model", str(model_dir),
            ]  # fmt: skip
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
                )
            servers.append((f"http://127.0.0.1:{port}", proc, log))
        for base, proc, log in servers:
            _wait_healthy(base, proc, log)
        (a, _, _), (b, _, _) = servers

        url = "/tiles/earth/5/16/10.png"
        ra = httpx.get(a + url, timeout=120)
        assert ra.status_code == 200
        assert _metrics(a)["orbis_tiles_generated_total"] == 1.0

        rb = httpx.get(b + url, timeout=120)
        assert rb.status_code == 200 and rb.content == ra.content
        assert rb.headers["etag"] == ra.headers["etag"]
        mb = _metrics(b)
        assert mb["orbis_tiles_generated_total"] == 0.0  # B generated nothing
        assert mb["orbis_cache_hits_total"] == 1.0
        assert mb['orbis_world_model_evals_total{world="earth"}'] == 0.0
    finally:
        for _, proc, _ in servers:
            stop_process(proc, timeout=30)
    for _, _, log in servers:
        assert "Traceback" not in log.read_text()
