"""The response micro-cache in front of the router (``tileserver.fastpath``).

A remembered response must be the full route's response byte for byte, headers included, and
everything the full route decides per request (conditional requests, HEAD, query strings,
metrics) must stay as it was.
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.serving_helpers import metric, save_tiny_model
from tileserver import Settings, create_app

TILE = "/tiles/earth/3/4/2.png"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture()
def client(model_dir):
    app = create_app(Settings(model=str(model_dir), worlds=("earth",)))
    with TestClient(app) as c:
        yield c


def memo_hits(client) -> int:
    return client.app.state.memo.hits


def test_third_request_is_answered_by_the_memo_identically(client):
    generated = client.get(TILE)  # generated
    from_route = client.get(TILE)  # cache hit through the full route: remembered
    assert memo_hits(client) == 0
    fast = client.get(TILE)
    assert memo_hits(client) == 1
    assert fast.status_code == from_route.status_code == generated.status_code == 200
    assert fast.content == from_route.content == generated.content
    assert dict(fast.headers) == dict(from_route.headers)


def test_fast_hits_count_as_cache_hits_and_latency_of_the_tile_route(client):
    client.get(TILE)
    client.get(TILE)
    text = client.get("/metrics").text
    before = metric(text, "orbis_cache_hits_total")
    tile_count = metric(text, 'orbis_request_duration_seconds_count{route="tile"}')
    for _ in range(3):
        client.get(TILE)
    text = client.get("/metrics").text
    assert memo_hits(client) == 3
    assert metric(text, "orbis_cache_hits_total") == before + 3
    assert metric(text, 'orbis_request_duration_seconds_count{route="tile"}') == tile_count + 3


def test_if_none_match_still_gives_304(client):
    client.get(TILE)
    etag = client.get(TILE).headers["etag"]
    r = client.get(TILE, headers={"If-None-Match": etag})
    assert r.status_code == 304
    assert r.content == b""
    assert memo_hits(client) == 0


def test_head_takes_the_full_route(client):
    body = client.get(TILE).content
    client.get(TILE)
    r = client.head(TILE)
    assert r.status_code == 200
    assert r.content == b""
    assert int(r.headers["content-length"]) == len(body)
    assert memo_hits(client) == 0


def test_query_string_is_part_of_the_memo_key(client):
    version = client.get(TILE).headers["x-orbis-world-version"]
    client.get(TILE)
    plain = client.get(TILE)
    assert memo_hits(client) == 1
    pinned = client.get(f"{TILE}?v={version}")
    assert "immutable" in pinned.headers["cache-control"]
    assert "immutable" not in plain.headers["cache-control"]
    assert memo_hits(client) == 1  # a new query string went through the route


def test_evicted_body_falls_back_to_the_full_route(client):
    body = client.get(TILE).content
    client.get(TILE)
    state = client.app.state
    for key in list(state.hot._data):
        state.hot.delete(key)
    r = client.get(TILE)
    assert r.status_code == 200
    assert r.content == body
    assert memo_hits(client) == 0
    assert client.get(TILE).content == body
    assert memo_hits(client) == 1


def test_memo_is_bounded(model_dir):
    app = create_app(Settings(model=str(model_dir), worlds=("earth",), response_memo_entries=2))
    with TestClient(app) as c:
        for x in range(4):
            c.get(f"/tiles/earth/2/{x}/1.png")
            c.get(f"/tiles/earth/2/{x}/1.png")
        assert len(app.state.memo) == 2


def test_errors_are_never_remembered(client):
    for _ in range(3):
        r = client.get("/tiles/earth/3/4/99.png")
        assert r.status_code == 400
    assert len(client.app.state.memo) == 0
