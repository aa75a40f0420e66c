"""Painting the layout into the imagery (``generator.paint``): seams, determinism, what changes.

On the closed-form stub geography of ``tests/geo_stub.py`` (cropland lowlands with villages and
roads; see ``tests/test_layout.py``), so no data is needed; one slow test renders real ``earth``
tiles with the tiny model and checks that roads and parcels reach the pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import torch
from scipy import ndimage

from generator.geography import layout_classes as K
from generator.geography.grid import tile_rect
from generator.paint import (
    AREA_PULL,
    DECIDE_Z,
    PAINT_MIN_Z,
    Edits,
    LayoutPainter,
    mean_free,
    object_hashes,
)
from generator.planner import Rect
from tests.geo_stub import stub_geography
from tests.test_layout import FARM, _tile

Z = 15


@pytest.fixture(scope="module")
def painter() -> LayoutPainter:
    return LayoutPainter(stub_geography(7))


def _parent(rect: Rect, m: int = 16, seed: int = 0) -> np.ndarray:
    """A smooth parent-level field under ``rect`` with margin m, a pure function of the
    global parent pixel (so two rects read the same parent values where they overlap)."""
    y = np.arange(rect.y0 // 2 - m, rect.y0 // 2 + rect.h // 2 + m)[:, None]
    x = np.arange(rect.x0 // 2 - m, rect.x0 // 2 + rect.w // 2 + m)[None, :]
    base = np.stack([np.sin(x / 17.0 + c + seed) * np.cos(y / 23.0 - c) for c in range(3)])
    return (0.25 * base - 0.3).astype(np.float32)


def _image(rect: Rect) -> np.ndarray:
    y = np.arange(rect.y0, rect.y0 + rect.h)[:, None]
    x = np.arange(rect.x0, rect.x0 + rect.w)[None, :]
    return np.stack([0.2 * np.sin(x / 5.0 + c) * np.cos(y / 7.0) - 0.3 for c in range(3)]).astype(
        np.float32
    )


def _farm_rect(z: int = Z) -> Rect:
    t = _tile(*FARM, z)
    return tile_rect(z, t.x, t.y)


def test_painting_changes_farmland_and_keeps_what_has_no_layout(painter):
    rect = _farm_rect(DECIDE_Z)  # where colours are decided: every parcel pixel moves
    img = _image(rect)
    out = painter.edit(DECIDE_Z, rect, img, _parent(rect))
    cls = painter.layout.classes(DECIDE_Z, rect)
    assert np.isin(cls, list(K.PARCELS)).mean() > 0.3  # a farm tile indeed
    changed = np.abs(out - img).max(0) > 1e-3
    assert changed[np.isin(cls, list(K.PARCELS))].mean() > 0.9
    assert not changed[cls == K.WATER].any()  # water is the water edit's job
    # above the first painted zoom nothing changes at all
    coarse = _farm_rect(PAINT_MIN_Z - 1)
    img_c = _image(coarse)
    assert np.array_equal(painter.edit(PAINT_MIN_Z - 1, coarse, img_c, _parent(coarse)), img_c)


def test_overlapping_rects_get_the_same_pixels(painter):
    """A window and the tile inside it (and any two rects) paint a shared pixel alike."""
    big = _farm_rect()
    big = Rect(big.y0, big.x0, 288, 288)
    small = Rect(big.y0 + 32, big.x0 + 64, 128, 160)
    a = painter.edit(Z, big, _image(big), _parent(big))
    b = painter.edit(Z, small, _image(small), _parent(small))
    # float sums of the blurs run at other offsets: equal to ~1e-6 of the [-1, 1] range, far
    # below the 1/255 of a grey level
    np.testing.assert_allclose(a[:, 32:160, 64:224], b, atol=1e-5)
    # the tile's edit may read its layout from the window's cached one: the same values
    c = painter.edit(Z, small, _image(small), _parent(small), context=big)
    np.testing.assert_array_equal(b, c)


def test_each_parcel_has_one_colour_target_and_parcels_differ(painter):
    rect = _farm_rect(16)
    st = painter.layout.state(16, rect)
    h = object_hashes(7, st.objs.parcels, 1)
    assert len(h) > 3 and len(np.unique(h % np.uint64(8))) > 2  # palette entries vary
    # the same parcels from another rect have the same hashes (a point on the surface)
    other = Rect(rect.y0 + 100, rect.x0 + 100, rect.h, rect.w)
    h2 = object_hashes(7, painter.layout.state(16, other).objs.parcels, 1)
    assert len(set(h.tolist()) & set(h2.tolist())) > 0
    # and the painted tile of the zoom that decides colours shows distinct parcel colours:
    # per-parcel mean colours spread
    rect = _farm_rect(DECIDE_Z)
    img = _image(rect)
    out = painter.edit(DECIDE_Z, rect, img, _parent(rect))
    cls, _, ph, _, _ = painter._layout(DECIDE_Z, rect, None)
    means = [out[:, ph == v].mean(1) for v in np.unique(ph[np.isin(cls, list(K.PARCELS))])]
    assert np.std(np.array(means), axis=0).max() > 0.05


def test_mean_free_keeps_every_block_mean_and_is_aligned_globally():
    rng = np.random.default_rng(3)
    d = rng.normal(size=(3, 21, 30)).astype(np.float32)
    mask = rng.random((21, 30)) > 0.3
    y0, x0 = 5, 8  # an odd row: blocks start one pixel before the array
    out = mean_free(d, mask, y0, x0)
    assert not out[:, ~mask].any()
    pad = np.pad(out, ((0, 0), (1, 0), (0, 0)))[:, :22]  # global blocks from row 4
    sums = pad.reshape(3, 11, 2, 15, 2).sum((2, 4))
    np.testing.assert_allclose(sums, 0.0, atol=1e-5)
    assert np.abs(out).mean() > 0.3  # the contrast inside blocks stays
    # a sub-rect computes its whole blocks alike
    sub = mean_free(d[:, 3:15, 2:20], mask[3:15, 2:20], y0 + 3, x0 + 2)
    np.testing.assert_allclose(sub[:, 1:11], out[:, 4:14, 2:20], atol=1e-6)


def test_finer_levels_keep_the_parents_means_of_areas(painter):
    """Colours are decided at DECIDE_Z; a finer level's area edit moves no 2×2 block's mean
    (the parent PSNR of painted farmland is that of unpainted), while at DECIDE_Z it does."""
    for z, moved in ((DECIDE_Z + 2, False), (DECIDE_Z, True)):
        rect = _farm_rect(z)
        img = _image(rect)
        d = painter.edit(z, rect, img, _parent(rect)) - img
        cls = painter.layout.classes(z, rect)
        # (block ground also carries the roofs' shares, decided at BLOCKS_Z: tested below)
        areas = [k for k in AREA_PULL if k != K.SETTLEMENT]
        area = np.isin(cls, areas).reshape(128, 2, 128, 2).all((1, 3))
        assert area.mean() > 0.3
        means = np.abs(d.reshape(3, 128, 2, 128, 2).mean((2, 4)))[:, area]
        assert (means.max() > 0.02) == moved, (z, means.max())
        assert np.abs(d).max(0)[np.isin(cls, list(AREA_PULL))].mean() > 1e-3  # still painted


def test_town_streets_are_decided_at_their_first_zoom(painter):
    """Streets appear with the street blocks (BLOCKS_Z) as a network already 1–2 px wide: they
    get their full darkness there (2×2 means move), a contrast inside parent pixels after."""
    from generator.geography.layout import BLOCKS_Z
    from tests.test_layout_towns import VILLAGE

    moved = {}
    for z in (BLOCKS_Z, BLOCKS_Z + 1):
        t = _tile(*VILLAGE, z)
        rect = tile_rect(z, t.x, t.y)
        img = _image(rect) + 0.4  # pale settlement ground: far from the asphalt's colour
        d = painter.edit(z, rect, img, _parent(rect) + 0.4) - img
        from generator.paint import LINES

        cls = painter.layout.classes(z, rect)
        blocks = lambda a: a.reshape(128, 2, 128, 2)  # noqa: E731
        painted = np.isin(cls, [*AREA_PULL, *LINES])  # roofs keep their pull: not these
        sel = blocks(cls == K.STREET).any((1, 3)) & blocks(painted).all((1, 3))
        assert sel.sum() > 50, z
        moved[z] = float(np.abs(d.reshape(3, 128, 2, 128, 2).mean((2, 4)))[:, sel].mean())
    assert moved[BLOCKS_Z] > 0.05 and moved[BLOCKS_Z + 1] < 1e-4, moved


@pytest.mark.parametrize("z", [DECIDE_Z + 2, DECIDE_Z])
def test_roads_are_drawn_in_their_colour_and_fields_are_not(painter, z):
    """Roads move toward their colour, fields do not; past DECIDE_Z as a contrast inside each
    parent pixel (the 2×2 mean is the parent's, which carries the coarser level's road)."""
    from generator.paint import LINES

    rect = _farm_rect(z)  # the stub's farm tile has local roads at z12–z14
    img = (_image(rect) + 1.0) * 127.5
    out = (painter.edit(z, rect, img / 127.5 - 1.0, _parent(rect)) + 1.0) * 127.5
    cls = painter.layout.classes(z, rect)
    kinds = [k for k in (K.ROAD, K.MAIN_ROAD, K.MOTORWAY, K.TRACK, K.STREET) if (cls == k).any()]
    assert K.ROAD in kinds
    field = np.isin(cls, list(K.PARCELS))
    for k in kinds if z == DECIDE_Z else [K.ROAD]:  # a street block of its own holds its mean
        colour = LINES[k][0][:, None]
        road = cls == k
        closer = np.abs(img[:, road] - colour).mean() - np.abs(out[:, road] - colour).mean()
        fields = np.abs(img[:, field] - colour).mean() - np.abs(out[:, field] - colour).mean()
        assert closer > 3.0 and closer > 2 * max(fields, 0.0), (K.LAYOUT[k].name, closer, fields)


def test_repeated_edits_converge_instead_of_compounding(painter):
    """The cascade edits every level again, its parent carrying the previous level's edit: the
    result must settle (a pull toward a target), not darken or saturate without end. Here each
    round's parent is the previous result reduced ×2, as the next level's would be."""
    from generator.follow import pad_parent
    from generator.resample import box_down2

    rect = _farm_rect()
    outs = [_image(rect)]
    for _ in range(8):
        prev = outs[-1]
        parent = pad_parent(box_down2(torch.from_numpy(prev)[None])[0].numpy())
        outs.append(painter.edit(Z, rect, prev, parent))
    steps = [float(np.abs(b - a).mean()) for a, b in zip(outs, outs[1:], strict=False)]
    assert steps[-1] < 0.25 * steps[0], steps
    assert np.abs(outs[-1]).max() <= 1.0


def test_edits_chain_in_order(painter):
    rect = _farm_rect()
    img, par = _image(rect), _parent(rect)

    class Dim:
        def edit(self, z, rect, img, parent, context=None, final=False):
            return img * 0.5

    chained = Edits(Dim(), painter).edit(Z, rect, img, par)
    np.testing.assert_allclose(chained, painter.edit(Z, rect, img * 0.5, par), atol=1e-6)


@pytest.mark.slow
def test_earth_imagery_shows_parcels_and_roads(config_dir_paint, tiny_model):
    """Po valley farmland at z13, tiny model: painted world vs the same world unpainted."""
    import mercantile

    from generator.world import World

    t = mercantile.tile(10.2, 45.05, 13)
    on = World.load("earth", config_dir_paint["on"], model=tiny_model)
    off = World.load("earth", config_dir_paint["off"], model=tiny_model)
    assert on.content_hash != off.content_hash  # painting is part of the hash
    a = on.tile_array(13, t.x, t.y).astype(np.float32)
    b = off.tile_array(13, t.x, t.y).astype(np.float32)
    cls = on.layer("layout", 13, t.x, t.y)
    parcels = np.isin(cls, list(K.PARCELS))
    assert parcels.mean() > 0.3
    assert np.abs(a - b).mean() > 3.0  # the painting reaches the pixels

    # parcels become visible: the colour varies more between parcels than without painting
    def spread(img: np.ndarray) -> float:
        rect = tile_rect(13, t.x, t.y)
        painter = next(e for e in on.pyramid.follower.editors if isinstance(e, LayoutPainter))
        _, _, ph, _, _ = painter._layout(13, rect, None)
        ids = np.unique(ph[parcels])
        return float(np.std([img[(ph == v) & parcels].mean() for v in ids]))

    assert spread(a) > 1.4 * spread(b)  # measured 1.6× (z14) with the tiny random model


@pytest.fixture(scope="module")
def config_dir_paint(tmp_path_factory):
    from tests.helpers import CONFIG_DIR, write_world

    text = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
    out = {}
    for label, extra in [("on", ""), ("off", "[geography]\npaint = false\n\n")]:
        d = tmp_path_factory.mktemp(f"paint-{label}")
        write_world(d, "earth", text.replace("[model]", extra + "[model]"))
        out[label] = d
    return out


def test_every_road_class_has_a_paint_rule():
    """A road class the layout adds later must not be left to the model's moss."""
    from generator.paint import LINES

    assert set(K.ROADS) <= set(LINES)


def test_fields_get_rows_along_their_long_axis_at_fine_zooms(painter):
    """At ≤ 4 m/px arable parcels carry stripes (rows, tramlines): the painted tile's structure
    is more coherent than the unpainted texture; at coarse zooms no stripes are drawn."""
    from generator.paint import long_axis

    rect = _farm_rect(17)
    st = painter.layout.state(17, rect)
    ang = long_axis(st.objs.parcels)
    assert len(ang) and np.all(np.abs(ang) <= np.pi)
    box = shapely.box(0, 0, 100, 10)  # long along x
    assert abs(np.sin(long_axis(np.array([box]))[0])) < 1e-9
    img = _image(rect) * 0.2  # near-flat texture: the stripes dominate
    out = painter.edit(17, rect, img, _parent(rect))
    cls = painter.layout.classes(17, rect)
    field = cls == K.FIELD
    if field.mean() < 0.3:
        pytest.skip("no field in this stub tile")
    hp = out - ndimage.uniform_filter(out, (1, 9, 9))
    hp0 = img - ndimage.uniform_filter(img, (1, 9, 9))
    assert np.abs(hp[:, field]).mean() > 1.5 * np.abs(hp0[:, field]).mean()


def _village_rect(z: int) -> Rect:
    from tests.test_layout_towns import VILLAGE

    t = _tile(*VILLAGE, z)
    return tile_rect(z, t.x, t.y)


def test_roofs_show_by_their_share_before_buildings_are_drawn(painter):
    """From ROOFS_DECIDE_Z on, before the layer draws buildings, a settlement pixel moves
    toward the roofs over it by their share: pixels mostly under roofs change much, roofless
    ground (courtyards, streets) little; the layer itself still has no building pixel there."""
    from generator.paint import ROOF_JITTER, ROOF_PALETTE, ROOFS_DECIDE_Z

    z = ROOFS_DECIDE_Z
    rect = _village_rect(z)
    cls = painter.layout.classes(z, rect)
    assert not (cls == K.BUILDING).any()
    share, colour = painter._roof_cover(z, rect)
    share, colour = share[4:-4, 4:-4], colour[:, 4:-4, 4:-4]
    block = cls == K.SETTLEMENT
    assert (block & (share > 0.3)).sum() > 50 and (block & (share == 0)).sum() > 200
    # a roofed pixel's colour is a mix of the palette's (within its range, ± the jitter)
    roofed = share > 0
    lo, hi = 1.0 - ROOF_JITTER / 2 - 1e-3, 1.0 + ROOF_JITTER / 2 + 1e-3
    assert (colour[:, roofed] >= lo * ROOF_PALETTE.min(0)[:, None]).all()
    assert (colour[:, roofed] <= hi * ROOF_PALETTE.max(0)[:, None]).all()
    img = _image(rect) + 0.4
    d = np.abs(painter.edit(z, rect, img, _parent(rect) + 0.4) - img).max(0)
    under, bare = d[block & (share > 0.3)].mean(), d[block & (share == 0)].mean()
    assert under > 2.0 * bare and under > 0.1, (under, bare)


def test_roof_shares_agree_across_zooms_and_rects(painter):
    """A pixel's roof share is the mean of its four children's (the same footprints on finer
    sub-pixels), and two overlapping rects read the same shares."""
    from generator.paint import ROOFS_DECIDE_Z

    z = ROOFS_DECIDE_Z
    rect = _village_rect(z)
    share = painter._roof_cover(z, rect)[0][4:-4, 4:-4]
    kids = Rect(rect.y0 * 2, rect.x0 * 2, 512, 512)
    fine = painter._roof_cover(z + 1, kids)[0][4:-4, 4:-4]
    down = fine.reshape(256, 2, 256, 2).mean((1, 3))
    assert share.mean() > 0.02
    assert np.abs(down - share).mean() < 0.02 and abs(down.mean() - share.mean()) < 0.005
    part = Rect(rect.y0 + 40, rect.x0 + 24, 100, 120)
    np.testing.assert_array_equal(
        painter._roof_cover(z, part)[0][4:-4, 4:-4], share[40:140, 24:144]
    )


def test_roofs_are_decided_at_their_first_zoom(painter):
    """Roof shares change 2×2 means at ROOFS_DECIDE_Z, where they first show; one level finer
    they add only contrast inside each parent pixel (parent PSNR, as for the areas)."""
    from generator.paint import ROOFS_DECIDE_Z

    moved = {}
    for z in (ROOFS_DECIDE_Z, ROOFS_DECIDE_Z + 1):
        rect = _village_rect(z)
        cls = painter.layout.classes(z, rect)
        share = painter._roof_cover(z, rect)[0][4:-4, 4:-4]
        img = _image(rect) + 0.4
        d = painter.edit(z, rect, img, _parent(rect) + 0.4) - img
        blocks = lambda a: a.reshape(128, 2, 128, 2)  # noqa: E731
        sel = blocks(cls == K.SETTLEMENT).all((1, 3)) & blocks(share > 0.3).any((1, 3))
        assert sel.sum() > 50, z
        moved[z] = float(np.abs(d.reshape(3, 128, 2, 128, 2).mean((2, 4)))[:, sel].mean())
    assert moved[ROOFS_DECIDE_Z] > 0.02 and moved[ROOFS_DECIDE_Z + 1] < 1e-4, moved


def test_roof_colours_follow_the_neighbourhood():
    """Roof colours are a pure function of the footprint; neighbouring houses mostly share a
    palette entry (a street's houses look alike), distant ones differ."""
    from generator.paint import ROOF_PALETTE, roof_colours

    xs = np.arange(400) * 12.0  # a row of 400 houses 12 m apart (4.8 km)
    geoms = shapely.box(xs + 1e6, 5e6, xs + 1e6 + 8.0, 5e6 + 8.0)
    c = roof_colours(3, geoms)
    np.testing.assert_array_equal(c, roof_colours(3, geoms))
    np.testing.assert_array_equal(c[10:20], roof_colours(3, geoms[10:20]))
    entry = np.abs(c[:, None, :] / ROOF_PALETTE[None] - 1.0).max(2).argmin(1)
    alike = (entry[1:] == entry[:-1]).mean()
    mixed = np.random.default_rng(0).permutation(entry)
    assert alike > 0.4 and alike > (mixed[1:] == mixed[:-1]).mean() + 0.15  # neighbours alike
    assert len(np.unique(entry)) >= 3  # across kilometres, several kinds of roof
