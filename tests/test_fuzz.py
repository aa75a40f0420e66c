"""Property-based fuzzing of the HTTP API (hypothesis) through Starlette's TestClient.

Random request paths and query strings (world names, z/x/y, scales, formats, grids, ``tilesize``,
``v``, ``If-None-Match``, and free-form paths under /tiles/, /tileMatrixSets/ and /static/) must
never produce a 5xx other than 503 + Retry-After, and every 4xx of the API must be JSON with a
non-empty ``detail``. Real generation is kept cheap: requests that would render a tile below the
Blue Marble base zoom (4) are filtered out before they are sent (``_cheap``); every tile at zoom
<= 4 is a reprojection of the base, generated once per app.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

import httpx
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams
from starlette.testclient import TestClient

from generator.errors import InvalidTile
from tests.serving_helpers import decode, save_tiny_model
from tileserver import Settings, create_app
from tileserver import tms as tms_mod
from tileserver.params import parse_tile, parse_tilesize

BASE_ZOOM = 4  # earth's base: tiles at z <= 4 are Blue Marble reprojections (no model)

FUZZ = settings(
    max_examples=250,
    deadline=None,
    database=None,  # nothing written to .hypothesis/ in the repository
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="module")
def client(model_dir):
    with TestClient(create_app(Settings(model=str(model_dir), worlds=("earth",)))) as c:
        yield c


@pytest.fixture(scope="module")
def other_client(model_dir):
    """A second, independent app (its own in-memory caches): same bytes expected."""
    with TestClient(create_app(Settings(model=str(model_dir), worlds=("earth",)))) as c:
        yield c


# ---- strategies ----------------------------------------------------------------------------

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
#: literal (already encoded, or dot) segments, sent as they are
_raw = st.sampled_from(
    ["..", ".", "%2e%2e", "%2E%2E", "%2F", "%2f..%2f", "%00", "%ff", "%252e%252e", "%", "~", ""]
)
_encoded_text = _text.map(lambda s: quote(s, safe=""))
_segment = st.one_of(_raw, _encoded_text)

_world = st.one_of(
    st.just("earth"),
    st.just("earth"),
    st.sampled_from(["planet", "EARTH", "earth%20", "earth%00", "mars", "tilejson.json"]),
    st.just("x" * 5000),
    st.sampled_from(["%C3%A9arth", "%F0%9F%8C%8D", "%E5%9C%B0%E7%90%83"]),  # unicode, encoded
    _segment,
)


def _ints(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.integers(lo, hi).map(str)


_z = st.one_of(
    _ints(0, BASE_ZOOM),
    _ints(0, BASE_ZOOM),
    _ints(23, 2**40),  # above earth's max zoom (22), or too many digits
    _ints(-(2**40), -1),
    st.sampled_from(["00", "+1", " 1", "1.0", "0x1", "1e3", "９", "", "%2D1", "1%0A"]),
    _segment,
)
_xy_int = st.one_of(
    _ints(0, 2**BASE_ZOOM - 1),
    _ints(0, 2**BASE_ZOOM - 1),
    _ints(-(2**33), 2**33),
    _ints(2**33, 2**70),
    st.sampled_from(["-0", "007", "1_0", "１"]),
)
_x = st.one_of(_xy_int, _xy_int, _segment)
_scale = st.sampled_from(
    [
        "",
        "",
        "",
        "@1x",
        "@2x",
        "@2x",
        "@3x",
        "@0x",
        "@02x",
        "@-1x",
        "@x",
        "@99999999999999999999x",
        "@2X",
        "@2",
    ]
)
_fmt = st.sampled_from(
    [
        "png",
        "png",
        "jpg",
        "jpeg",
        "webp",
        "PNG",
        "gif",
        "",
        "p%00ng",
        "png%0A",
        "toolongformat",
        "png.png",
    ]
)
_y = st.one_of(
    st.tuples(_xy_int, _scale, _fmt).map(lambda t: f"{t[0]}{t[1]}.{t[2]}"),
    st.tuples(_xy_int, _scale, _fmt).map(lambda t: f"{t[0]}{t[1]}.{t[2]}"),
    _segment,
)
_tms = st.one_of(
    st.sampled_from(["WebMercatorQuad", "WorldCRS84Quad", "worldcrs84quad", "EuropeanETRS89"]),
    _segment,
)


@st.composite
def _query(draw) -> str:
    parts: list[str] = []
    if draw(st.booleans()):
        v = draw(
            st.one_of(
                st.sampled_from(["256", "512", "1024", "0", "-256", "", "256 "]), _encoded_text
            )
        )
        parts.append(f"tilesize={v}")
    if draw(st.booleans()):
        parts.append("v=" + draw(st.one_of(st.just("{hash}"), _encoded_text)))
    if draw(st.integers(0, 3)) == 0:
        parts.append(draw(_encoded_text) + "=" + draw(_encoded_text))
    if draw(st.integers(0, 5)) == 0:
        parts.append(draw(st.sampled_from(["tilesize=512&tilesize=256", "tilesize", "&&", "%zz"])))
    return "&".join(parts)


@st.composite
def _tile_path(draw) -> str:
    segs = [draw(_world)]
    if draw(st.integers(0, 3)) == 0:
        segs.append(draw(_tms))
    segs += [draw(_z), draw(_x), draw(_y)]
    return "/tiles/" + "/".join(segs)


@st.composite
def _free_path(draw) -> str:
    prefix = draw(st.sampled_from(["/tiles/", "/tileMatrixSets/", "/static/", "/tileMatrixSets"]))
    segs = draw(
        st.lists(
            st.one_of(
                _segment,
                st.sampled_from(
                    [
                        "earth",
                        "WorldCRS84Quad",
                        "WebMercatorQuad",
                        "tilejson.json",
                        "WMTSCapabilities.xml",
                        "orbis.js",
                        "vendor",
                        "index.html",
                        "..",
                        "0",
                        "0.png",
                    ]
                ),
            ),
            max_size=7,
        )
    )
    return prefix + "/".join(segs)


_request = st.tuples(
    st.one_of(_tile_path(), _tile_path(), _free_path()),
    _query(),
    st.sampled_from([None, None, None, "*", '"nope"', "W/*", ""]),
)

# ---- the oracle ----------------------------------------------------------------------------


def _as_served(url: str) -> tuple[str, QueryParams]:
    """Return the path and query the app sees (TestClient unquotes httpx's decoded path)."""
    u = httpx.URL("http://testserver" + url)
    return unquote(u.path), QueryParams(u.query.decode("ascii"))


def _cheap(path: str, query: QueryParams, max_zoom: int) -> bool:
    """Return False for a request that would render a tile below the base zoom (seconds each)."""
    segs = path.split("/")
    if len(segs) not in (6, 7) or segs[:3] != ["", "tiles", "earth"]:
        return True
    grid = segs[3] if len(segs) == 7 else "WebMercatorQuad"
    if grid not in tms_mod.SUPPORTED:
        return True
    try:
        a = parse_tile("earth", *segs[-3:])
        scale = parse_tilesize(query.get("tilesize"), a.scale)
    except InvalidTile:
        return True
    if grid == "WorldCRS84Quad":  # rendered from zoom z + 1
        return not (BASE_ZOOM <= a.z <= max_zoom - 1 and scale == 1)
    if not 0 <= a.z <= max_zoom or not 0 <= a.y < (1 << a.z):
        return True
    deepest = a.z + 1 if scale == 2 else a.z  # @2x is the mosaic of the four children
    return deepest <= BASE_ZOOM or deepest > max_zoom


def _check(client: TestClient, url: str, inm: str | None) -> httpx.Response:
    headers = {"If-None-Match": inm} if inm is not None else {}
    r = client.get(url, headers=headers)
    path, _ = _as_served(url)
    status = r.status_code
    assert status < 500 or (status == 503 and r.headers.get("retry-after")), (url, status, r.text)
    api = path.startswith(("/tiles", "/tileMatrixSets"))
    if 400 <= status < 500 and api:
        assert r.headers["content-type"].startswith("application/json"), (url, r.headers)
        detail = r.json().get("detail")
        assert isinstance(detail, str) and detail.strip(), (url, r.text)
    if status == 200 and r.headers["content-type"].startswith("image/"):
        im = decode(r.content)
        assert im.size in ((256, 256), (512, 512)), (url, im.size)
        assert r.headers["etag"].startswith('"') and r.headers["etag"].endswith('"')
    return r


# ---- tests ---------------------------------------------------------------------------------


@pytest.mark.slow
@FUZZ
@given(req=_request)
def test_random_requests_never_5xx_and_4xx_name_the_problem(client, req):
    path, query, inm = req
    world = client.app.state.worlds["earth"]
    url = path + ("?" + query.replace("{hash}", world.content_hash) if query else "")
    served_path, served_query = _as_served(url)
    assume(_cheap(served_path, served_query, world.max_zoom))
    r = _check(client, url, inm)
    event(f"{served_path.split('/')[1][:14]} {r.status_code}")  # --hypothesis-show-statistics


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    z=st.integers(0, BASE_ZOOM),
    x=st.integers(-(2**33), 2**33),
    y=st.integers(-(2**33), 2**33),
    fmt=st.sampled_from(["png", "jpg", "webp"]),
    grid=st.sampled_from(["", "WebMercatorQuad/", "WorldCRS84Quad/"]),
)
def test_integer_addresses(client, z, x, y, fmt, grid):
    """Any integer address at a cheap zoom is a 200 image or a 4xx naming the problem."""
    z = min(z, BASE_ZOOM - 1) if grid == "WorldCRS84Quad/" else z
    r = _check(client, f"/tiles/earth/{grid}{z}/{x}/{y}.{fmt}", None)
    if 0 <= y < (1 << z):  # both grids have 2**z rows
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 400
        assert str(y) in r.json()["detail"]


@pytest.mark.slow
@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_same_tile_twice_is_identical(client, other_client, data):
    z = data.draw(st.integers(0, 3), label="z")
    n = 1 << z
    x = data.draw(st.integers(0, n - 1), label="x")
    y = data.draw(st.integers(0, n - 1), label="y")
    suffix = data.draw(st.sampled_from(["", "@2x"]), label="scale")
    fmt = data.draw(st.sampled_from(["png", "webp", "jpg"]), label="fmt")
    url = f"/tiles/earth/{z}/{x}/{y}{suffix}.{fmt}"
    a = client.get(url)
    b = client.get(url)
    wrapped = client.get(
        f"/tiles/earth/{z}/{x + n * data.draw(st.integers(-3, 3))}/{y}{suffix}.{fmt}"
    )
    elsewhere = other_client.get(url)
    for r in (a, b, wrapped, elsewhere):
        assert r.status_code == 200, (url, r.text)
    assert a.content == b.content == wrapped.content == elsewhere.content, url
    assert a.headers["etag"] == b.headers["etag"] == wrapped.headers["etag"]
    assert a.headers["etag"] == elsewhere.headers["etag"]


@pytest.mark.parametrize(
    "url",
    ["/tiles/earth/3%0A/1/1.png", "/tiles/earth/3/1%0A/1.png", "/tiles/earth/3/1/1.png%0A"],
)
def test_a_trailing_newline_is_not_part_of_an_address(client, url):
    r = client.get(url)
    assert r.status_code == 400, (url, r.status_code)
    assert "\\n" in r.json()["detail"]


def test_latency_labels_stay_bounded(client):
    """After the fuzzing above, route labels are route names only (no per-path cardinality)."""
    client.get("/tiles/earth/x/y/z/w/v/u.png")
    text = client.get("/metrics").text
    labels = set(re.findall(r'orbis_request_duration_seconds_count\{route="([^"]*)"\}', text))
    names = {getattr(r, "name", None) for r in client.app.routes} | {"unmatched"}
    assert labels and labels <= names, labels - names
