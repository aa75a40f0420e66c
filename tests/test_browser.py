"""The viewer pages in a real browser: Playwright driving Debian's Chromium against a real server.

One ``orbis serve`` subprocess (tiny random model, fresh disk cache) and one headless Chromium
serve the whole module; every test gets its own browser context (no shared HTTP cache). Views
stay at zoom <= 5 so tiles are cheap: z4 is the Blue Marble base, z5 the tiny model. Chromium is
the system one (``/usr/bin/chromium``, installed by ``.ci/run``), never a Playwright download.
Screenshots of every test's final page land in ``tests/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request

from tests.serving_helpers import chromium, served

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 768, "height": 512}  # 4 x 3 tiles at most: cheap views
TILE_RE = re.compile(r"/tiles/(?P<world>[\w.-]+)/(?P<z>\d+)/(?P<x>-?\d+)/(?P<y>-?\d+)\.png$")
START = "/#earth/4/48/10"  # Europe on the Blue Marble base level
PLANET_TITLE = "Planet (synthetic, seed 7)"

pytestmark = pytest.mark.slow

# The tiles of the current view, as Leaflet computes them (GridLayer._pxBoundsToTileRange).
VISIBLE_TILES_JS = """() => {
  const map = orbisViewer.map, b = map.getPixelBounds(), z = map.getZoom(), n = 2 ** z;
  const out = [];
  for (let x = Math.floor(b.min.x / 256); x <= Math.ceil(b.max.x / 256) - 1; x++)
    for (let y = Math.max(0, Math.floor(b.min.y / 256));
         y <= Math.min(n - 1, Math.ceil(b.max.y / 256) - 1); y++)
      out.push([z, ((x % n) + n) % n, y]);
  return out;
}"""

# True when every tile of the current view of WORLD has a loaded <img>.
ALL_VISIBLE_LOADED_JS = (
    """(world) => {
  if (!window.orbisViewer || orbisViewer.world() !== world) return false;
  const loaded = new Set([...document.querySelectorAll('img.leaflet-tile-loaded')]
    .map(img => new URL(img.src).pathname));
  const visible = ("""
    + VISIBLE_TILES_JS
    + """)();
  return visible.length > 0 &&
    visible.every(([z, x, y]) => loaded.has(`/tiles/${world}/${z}/${x}/${y}.png`));
}"""
)

# Records every state of the "generating N tiles…" badge in window.badgeLog.
WATCH_BADGE_JS = """() => {
  const el = document.getElementById('orbis-loading');
  window.badgeLog = [];
  new MutationObserver(() => badgeLog.push([el.hidden, el.textContent]))
    .observe(el, {attributes: true, childList: true, characterData: true, subtree: true});
}"""


# ---- the server and the browser ------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium(CHROMIUM_ARGS) as b:
        yield b


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """``orbis serve`` on a free port of 127.0.0.1; yields its base URL."""
    with served(tmp_path_factory.mktemp("browser-server")) as base:
        yield base


@dataclass
class Tab:
    """A page of a fresh browser context, with what it logged and which tiles it asked for."""

    page: Page
    base: str
    errors: list[str] = field(default_factory=list)
    tiles: list[tuple[str, int, int, int]] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    def assert_no_errors(self) -> None:
        assert self.errors == [], "console errors:\n" + "\n".join(self.errors)

    def wait_for_view(self, world: str = "earth", timeout_s: float = 30) -> None:
        """Wait until every tile of the current view of ``world`` has loaded."""
        self.page.wait_for_function(ALL_VISIBLE_LOADED_JS, arg=world, timeout=timeout_s * 1000)

    def visible(self) -> set[tuple[int, int, int]]:
        return {tuple(t) for t in self.page.evaluate(VISIBLE_TILES_JS)}

    def hash(self) -> str:
        return self.page.evaluate("location.hash")

    def center(self) -> list[float]:
        return self.page.evaluate("(c => [c.lat, c.lng])(orbisViewer.map.getCenter())")

    def checked_world(self) -> str:
        """The title of the world checked in the layers control."""
        checked = self.page.locator(".leaflet-control-layers input:checked + span")
        return checked.inner_text().strip()


@pytest.fixture
def tab(browser: Browser, server: str, request) -> Iterator[Tab]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    t = Tab(page, server)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        where = msg.location.get("url", "") if msg.location else ""
        if where.endswith(".js.map"):  # vendored builds name source maps that are not vendored
            return
        t.errors.append(f"{msg.text} ({where})")

    def on_request(req: Request) -> None:
        m = TILE_RE.search(req.url)
        if m:
            t.tiles.append((m["world"], int(m["z"]), int(m["x"]), int(m["y"])))

    page.on("console", on_console)
    page.on("pageerror", lambda exc: t.errors.append(f"uncaught: {exc}"))
    page.on("request", on_request)
    try:
        yield t
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            page.wait_for_timeout(300)  # let tiles finish fading in
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
        finally:
            context.close()


# ---- the Leaflet viewer ----------------------------------------------------------------------


def test_viewer_loads_tiles_without_errors(tab: Tab):
    tab.goto(START)
    tab.wait_for_view("earth")
    page = tab.page
    assert page.locator("img.leaflet-tile-loaded").count() >= 6
    assert {t[:2] for t in tab.tiles} == {("earth", 4)}

    info = page.locator(".orbis-info").inner_text()
    assert re.search(r"z 4 · [\d.]+ km/px at 48\.0°", info), info
    assert "Blue Marble" in page.locator(".leaflet-control-attribution").inner_text()
    page.wait_for_function("orbisViewer.pendingTiles() === 0")
    assert page.locator("#orbis-loading").is_hidden()

    # the links to the other pages carry the view, and the pages behind them answer
    links = {
        "#orbis-link-ol": "/static/openlayers.html#earth/4/48.0000/10.0000",
        "#orbis-link-snippets": "/static/snippets.html#earth",
    }
    for link, href in links.items():
        assert page.locator(link).get_attribute("href") == href
        assert httpx.get(tab.base + href, timeout=10).status_code == 200
    tab.assert_no_errors()


def test_zoom_in_requests_the_next_zoom_in_view(tab: Tab):
    tab.goto(START)
    tab.wait_for_view("earth")
    page = tab.page
    page.evaluate(WATCH_BADGE_JS)
    tab.tiles.clear()

    page.locator(".leaflet-control-zoom-in").click()
    page.wait_for_function("orbisViewer.map.getZoom() === 5")
    tab.wait_for_view("earth", timeout_s=60)  # z5: generated by the tiny model

    requested = {(z, x, y) for _, z, x, y in tab.tiles}
    visible = tab.visible()
    assert {z for z, _, _ in requested} == {5}
    assert requested == visible, f"requested {sorted(requested)}, in view {sorted(visible)}"
    assert {w for w, *_ in tab.tiles} == {"earth"}

    # the badge counted the pending tiles, then hid
    page.wait_for_function("document.getElementById('orbis-loading').hidden")
    shown = [text for hidden, text in page.evaluate("badgeLog") if not hidden]
    assert shown and all(re.fullmatch(r"generating \d+ tiles?…", s) for s in shown), shown
    assert max(int(s.split()[1]) for s in shown) >= 2

    assert page.locator(".orbis-info").inner_text().startswith("z 5 · ")
    assert tab.hash().startswith("#earth/5/")
    tab.assert_no_errors()


def test_pan_requests_the_tiles_coming_into_view(tab: Tab):
    tab.goto(START)
    tab.wait_for_view("earth")
    before = tab.visible()
    tab.tiles.clear()

    tab.page.evaluate("orbisViewer.map.panBy([600, 300], {animate: false})")
    tab.wait_for_view("earth")
    after = tab.visible()
    requested = {(z, x, y) for _, z, x, y in tab.tiles}
    assert after - before, "the pan brought no new tiles into view"
    assert requested == after - before, (
        f"requested {sorted(requested)}, new in view {sorted(after - before)}"
    )
    tab.assert_no_errors()


def test_permalink_follows_a_drag_and_restores_the_view(tab: Tab):
    tab.goto(START)
    tab.wait_for_view("earth")
    page = tab.page
    assert tab.hash() == "#earth/4/48.0000/10.0000"

    page.mouse.move(400, 300)
    page.mouse.down()
    page.mouse.move(300, 220, steps=8)
    page.mouse.up()
    page.wait_for_function("location.hash !== '#earth/4/48.0000/10.0000'")
    page.wait_for_timeout(600)  # let the drag's inertia settle (moveend writes the hash)
    m = re.fullmatch(r"#earth/4/(-?\d+\.\d{4})/(-?\d+\.\d{4})", tab.hash())
    assert m, tab.hash()
    lat, lon = float(m[1]), float(m[2])
    assert lat < 48 and lon > 10  # dragged up and left: the view moved south-east
    assert tab.center() == pytest.approx([lat, lon], abs=1e-4)

    # the permalink opens the same view
    page.reload()
    page.wait_for_function("window.orbisViewer && orbisViewer.world() === 'earth'")
    assert tab.center() == pytest.approx([lat, lon], abs=1e-3)
    assert page.evaluate("orbisViewer.map.getZoom()") == 4

    # an edited hash moves the map
    page.evaluate("location.hash = '#earth/3/40/0'")
    page.wait_for_function("orbisViewer.map.getZoom() === 3")
    tab.wait_for_view("earth")
    tab.assert_no_errors()


def test_old_permalink_form_is_accepted(tab: Tab):
    tab.goto("/#4/47/9")
    tab.wait_for_view("earth")
    assert tab.center() == pytest.approx([47, 9], abs=1e-6)
    assert tab.hash() == "#earth/4/47.0000/9.0000"  # rewritten in the new form
    tab.assert_no_errors()


def test_switch_to_planet(tab: Tab):
    tab.goto(START)
    tab.wait_for_view("earth")
    tab.tiles.clear()

    tab.page.locator(".leaflet-control-layers label", has_text=PLANET_TITLE).click()
    tab.wait_for_view("planet", timeout_s=60)  # planet's base level is built on first request
    assert {(w, z) for w, z, _, _ in tab.tiles} == {("planet", 4)}
    assert tab.hash() == "#planet/4/48.0000/10.0000"
    assert tab.checked_world() == PLANET_TITLE
    attribution = tab.page.locator(".leaflet-control-attribution").inner_text()
    assert "Generated by orbis" in attribution and "Blue Marble" not in attribution
    tab.page.wait_for_function("orbisViewer.pendingTiles() === 0")

    # a permalink naming the world opens that world
    tab.goto("/#planet/3/20/0")
    tab.wait_for_view("planet")
    assert tab.checked_world() == PLANET_TITLE
    tab.assert_no_errors()


# ---- the other pages -------------------------------------------------------------------------


def test_openlayers_page_loads_tiles(tab: Tab):
    tab.goto("/static/openlayers.html#earth/4/48/10")
    page = tab.page
    page.wait_for_function("window.orbisOl && orbisOl.loadedTiles() >= 6")
    page.wait_for_function("document.getElementById('orbis-loading').hidden", timeout=30_000)
    assert page.evaluate("orbisOl.failedTiles()") == 0
    assert tab.tiles and {t[:2] for t in tab.tiles} == {("earth", 4)}
    assert "Blue Marble" in page.locator(".ol-attribution").inner_text()
    assert tab.hash() == "#earth/4/48.0000/10.0000"
    page.wait_for_timeout(400)  # OpenLayers fades tiles in: a clear screenshot
    tab.assert_no_errors()


def test_snippets_page_fills_in_this_server(tab: Tab):
    tab.goto("/static/snippets.html")
    page = tab.page
    page.wait_for_function("document.getElementById('world-info').textContent !== ''")
    xyz = f"{tab.base}/tiles/earth/{{z}}/{{x}}/{{y}}.png"
    tilejson = f"{tab.base}/tiles/earth/tilejson.json"
    assert page.locator("#xyz-url").inner_text() == xyz
    assert page.locator("#qgis-url").inner_text() == xyz
    assert page.locator("#tilejson-url").inner_text() == tilejson
    assert f'L.tileLayer("{xyz}"' in page.locator("#leaflet").inner_text()
    assert f'url: "{xyz}"' in page.locator("#openlayers").inner_text()
    assert "%7Bz%7D/%7Bx%7D/%7By%7D.png" in page.locator("#pyqgis").inner_text()

    doc = httpx.get(tilejson, timeout=10).json()  # the URLs shown work
    assert doc["tiles"] == [xyz]
    assert httpx.get(xyz.format(z=2, x=2, y=1), timeout=30).status_code == 200

    page.locator("#world").select_option("planet")
    assert page.locator("#xyz-url").inner_text() == f"{tab.base}/tiles/planet/{{z}}/{{x}}/{{y}}.png"
    assert tab.hash() == "#planet"
    tab.assert_no_errors()
