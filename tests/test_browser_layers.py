"""The geography pages in a real browser: the 3D view (MapLibre) and the Leaflet overlays.

As ``test_browser.py`` (Playwright driving Debian's Chromium against a real ``orbis serve``
subprocess), but the server runs through ``python -m tests.geo_stub serve``, which gives every
world the stub geography of ``tests/geo_stub.py``: the tests need none of the real data, and
the stub's elevation is known in closed form. MapLibre needs WebGL, which headless Chromium
renders in software (SwiftShader) with the flags below. Screenshots land in ``tests/artifacts/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, ConsoleMessage

from tests.geo_stub import stub_elevation
from tests.serving_helpers import chromium, served
from tests.test_browser import ARTIFACTS, VIEWPORT, Tab

pytestmark = pytest.mark.slow

#: software WebGL for MapLibre (no GPU in CI): ANGLE on SwiftShader
WEBGL_ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAYER_RE = re.compile(r"/tiles/(?P<world>[\w.-]+)/layers/(?P<layer>\w+)/(?P<z>\d+)/-?\d+/\d+\.png")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium(WEBGL_ARGS) as b:
        yield b


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """``orbis serve`` with the stub geography on a free port; yields its base URL."""
    with served(tmp_path_factory.mktemp("browser-layers"), module="tests.geo_stub") as base:
        yield base


class LayerTab(Tab):
    """A :class:`Tab` that also records the geography layer tiles requested."""

    layer_tiles: list[tuple[str, str, int]]


@pytest.fixture
def tab(browser: Browser, server: str, request) -> Iterator[LayerTab]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    t = LayerTab(page, server)
    t.layer_tiles = []

    def on_console(msg: ConsoleMessage) -> None:
        where = msg.location.get("url", "") if msg.location else ""
        if msg.type == "error" and not where.endswith(".js.map"):
            t.errors.append(f"{msg.text} ({where})")

    def on_request(req) -> None:
        m = LAYER_RE.search(req.url)
        if m:
            t.layer_tiles.append((m["world"], m["layer"], int(m["z"])))

    page.on("console", on_console)
    page.on("pageerror", lambda exc: t.errors.append(f"uncaught: {exc}"))
    page.on("request", on_request)
    try:
        yield t
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            page.wait_for_timeout(300)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
        finally:
            context.close()


# ---- the 3D view -----------------------------------------------------------------------------


def test_3d_view_drapes_imagery_over_the_elevation_layer(tab: LayerTab):
    tab.goto("/3d#earth/4/46.0000/10.0000/20/60")
    page = tab.page
    page.wait_for_function("window.orbis3d && orbis3d.terrainLoaded()")
    page.wait_for_function("orbis3d.map.loaded() && orbis3d.map.areTilesLoaded()", timeout=90_000)
    assert page.evaluate("orbis3d.demRequests()") > 0
    assert {(w, lay) for w, lay, _ in tab.layer_tiles} == {("earth", "elevation")}
    assert page.evaluate("orbis3d.map.getPitch()") == pytest.approx(60)
    assert page.evaluate("orbis3d.map.getBearing()") == pytest.approx(20)
    style = page.evaluate("orbis3d.map.getStyle()")
    assert style["terrain"] == {"source": "terrain-dem", "exaggeration": 1.5}
    assert style["sources"]["terrain-dem"]["type"] == "raster-dem"
    assert "hillshade" in [lay["id"] for lay in style["layers"]]

    # MapLibre decodes the Terrarium tiles to the stub's heights (times the exaggeration)
    got = page.evaluate("orbis3d.elevationAt(10, 46)") / 1.5
    want = float(stub_elevation(np.array([10.0]), np.array([46.0]))[0, 0])
    assert got == pytest.approx(want, abs=150), (got, want)

    # the exaggeration slider reaches the terrain
    page.locator("#orbis-3d-exaggeration").fill("3")
    page.wait_for_function("orbis3d.map.getTerrain().exaggeration === 3")
    page.locator("#orbis-3d-pitch").fill("40")
    page.wait_for_function("Math.round(orbis3d.map.getPitch()) === 40")
    page.wait_for_function("/^#earth\\/4\\.00\\/46\\.0+\\/10\\.0+\\/20\\/40$/.test(location.hash)")
    assert page.locator("#orbis-3d-link-2d").get_attribute("href") == "/#earth/4/46.0000/10.0000"
    page.wait_for_function("orbis3d.map.areTilesLoaded()", timeout=90_000)

    # the world picker moves the terrain to the other world's elevation layer
    tab.layer_tiles.clear()
    page.locator("#orbis-3d-world").select_option("planet")
    page.wait_for_function(
        "orbis3d.world() === 'planet' && orbis3d.map.isStyleLoaded() !== false"
        " && orbis3d.map.getStyle().sources['terrain-dem'].url.includes('/planet/')"
        " && orbis3d.terrainLoaded()"
    )
    assert ("planet", "elevation") in {(w, lay) for w, lay, _ in tab.layer_tiles}
    assert tab.hash().startswith("#planet/")
    tab.assert_no_errors()


# ---- the Leaflet overlays --------------------------------------------------------------------


def test_leaflet_overlay_switcher_requests_layer_tiles(tab: LayerTab):
    tab.goto("/#earth/4/48/10")
    tab.wait_for_view("earth")
    page = tab.page
    control = page.locator(".leaflet-control-layers-overlays")
    labels = [t.strip() for t in control.locator("label").all_inner_texts()]
    assert labels == [
        "elevation (hillshade)",
        "land cover",
        "water",
        "layout (fields, roads, towns)",
    ]
    assert tab.layer_tiles == []  # overlays start off

    control.locator("label", has_text="water").click()
    page.wait_for_function(
        "document.querySelectorAll('img.leaflet-tile-loaded[src*=\"/layers/water/\"]').length >= 6"
    )
    assert {(w, lay, z) for w, lay, z in tab.layer_tiles} == {("earth", "water", 4)}

    page.locator("#orbis-overlay-opacity").fill("0.3")
    assert page.evaluate("orbisViewer.overlays().water.options.opacity") == pytest.approx(0.3)

    control.locator("label", has_text="elevation").click()
    page.wait_for_function(
        "(() => { const o = orbisViewer.overlays().elevation; return o && o.isLoading() === false"
        " && Object.keys(o._tiles).length >= 6; })()"
    )
    assert ("earth", "elevation", 4) in tab.layer_tiles
    # the hillshade canvases are drawn: not one flat grey
    spread = page.evaluate(
        """() => { const c = document.querySelector('canvas.leaflet-tile-loaded');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let lo = 255, hi = 0;
          for (let i = 0; i < d.length; i += 4) {
            lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]);
          }
          return hi - lo; }"""
    )
    assert spread > 40

    control.locator("label", has_text="layout").click()
    page.wait_for_function(
        "document.querySelectorAll('img.leaflet-tile-loaded[src*=\"/layers/layout/\"]').length >= 6"
    )
    assert ("earth", "layout", 4) in tab.layer_tiles

    href = page.locator("#orbis-link-3d").get_attribute("href")
    assert href == "/3d#earth/4/48.0000/10.0000"
    assert httpx.get(tab.base + "/3d", timeout=10).status_code == 200
    tab.assert_no_errors()
