"""Training set v3: the FlightGear hold-out rule, m/px from Materials XML, labels, manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.geography import classes as C
from generator.training import data_v3 as D
from generator.training import labels as L
from generator.training.data import DataError

STEMS = frozenset({"city1", "town-europe", "irrcrop-europe", "uk_countryside1"})


# ---- hold-out rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "city1.png",
        "city1.mask.png",
        "city1.dds",
        "town-europe.png",
        "town-europe-winter.png",
        "Terrain.winter/town-europe-winter-relief-light.png",
        "irrcrop-europe.mask.png",
    ],
)
def test_listed_files_are_held_out(name: str) -> None:
    assert D.held_out(name, STEMS)
    assert D.derived_from_held_out(name, STEMS)


@pytest.mark.parametrize("name", ["city2.png", "city10.png", "town-europe2.png", "irrcrop.png"])
def test_other_files_are_not_held_out(name: str) -> None:
    assert not D.held_out(name, STEMS)
    assert not D.derived_from_held_out(name, STEMS)


@pytest.mark.parametrize(
    "name", ["town-europe-autumn.png", "city1-middle-east.png", "city1_overlay.png"]
)
def test_variants_are_kept_out_of_training(name: str) -> None:
    # not on the list by its literal rule, but v3 keeps them out as well
    assert not D.held_out(name, STEMS)
    assert D.derived_from_held_out(name, STEMS)


def test_read_holdout_skips_comments(tmp_path: Path) -> None:
    f = tmp_path / "fg.txt"
    f.write_text("# comment\ncity1\n\n  town-europe \n")
    assert D.read_holdout(f) == frozenset({"city1", "town-europe"})
    with pytest.raises(DataError):
        D.read_holdout(tmp_path / "missing.txt")


def test_real_holdout_list_is_read() -> None:
    if not D.HOLDOUT_LIST.is_file():
        pytest.skip("the shared hold-out list is not beside this checkout")
    stems = D.read_holdout()
    assert "city1" in stems and all(not s.startswith("#") for s in stems)


def _fake_fg(tmp_path: Path, textures: dict[str, int]) -> Path:
    """A tiny FlightGear tree: noise textures (name → size in px) and one Materials file."""
    root = tmp_path / "fg"
    (root / "Textures" / "Terrain").mkdir(parents=True)
    (root / "Materials" / "regions").mkdir(parents=True)
    mats = []
    rng = np.random.default_rng(0)
    for i, (name, px) in enumerate(textures.items()):
        img = rng.integers(0, 255, (px, px, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "Textures" / "Terrain" / f"{name}.png")
        mats.append(
            f"<material><name>M{i}</name><texture>Terrain/{name}.png</texture>"
            f"<xsize>{px * 2}</xsize><ysize>{px * 2}</ysize></material>"
        )
    (root / "Materials" / "regions" / "x.xml").write_text(
        "<?xml version='1.0'?><PropertyList>" + "".join(mats) + "</PropertyList>"
    )
    return root


def test_no_listed_stem_reaches_train(tmp_path: Path) -> None:
    names = ("town-europe", "town-europe-autumn", "city1", "city2", "drycrop2")
    root = _fake_fg(tmp_path, dict.fromkeys(names, 128))
    out = {t.stem: t for t in D.fg_textures(root, STEMS)}
    assert set(out) == {"town-europe", "town-europe-autumn", "city1", "city2", "drycrop2"}
    assert out["town-europe"].split == out["city1"].split == "eval"
    assert out["town-europe-autumn"].split == "eval"
    assert out["city2"].split == out["drycrop2"].split == "train"
    assert out["city2"].mpp == pytest.approx(2.0)
    assert out["drycrop2"].klass == C.CROPLAND and out["city1"].klass == C.URBAN


def test_near_duplicate_under_another_name_is_held_out(tmp_path: Path) -> None:
    root = _fake_fg(tmp_path, {"town-europe": 128, "city2": 128})
    # city2 becomes a rotated copy of the held-out texture: the name rule cannot see it
    held = np.asarray(Image.open(root / "Textures/Terrain/town-europe.png"))
    Image.fromarray(np.rot90(held).copy()).save(root / "Textures/Terrain/city2.png")
    out = {t.stem: t for t in D.fg_textures(root, STEMS)}
    assert out["city2"].split == "eval" and "near-duplicate" in out["city2"].note


def test_check_refuses_a_held_out_texture_in_train() -> None:
    e = D.Entry(
        "fg-city1", "images/x.png", "labels/x.npz", 2.0, "train",
        "FlightGear terrain texture Terrain/city1.png", "GPL-2+", C.URBAN, "city", 64, 64,
    )  # fmt: skip
    with pytest.raises(DataError, match="held-out"):
        D.check([e], STEMS)
    D.check([D.dataclasses.replace(e, split="eval")], STEMS)


# ---- m/px from Materials XML ---------------------------------------------------------------

SNIPPET = """<?xml version="1.0"?>
<PropertyList>
  <material>
    <name>Town</name><name>SubUrban</name>
    <texture-set>
      <texture>Terrain/town-a.png</texture>
      <texture n="2">Terrain/town-a-relief-light.png</texture>
    </texture-set>
    <texture-set><texture>Terrain/town-b.png</texture></texture-set>
    <object-mask>Terrain/town-a.mask.png</object-mask>
    <xsize>1024</xsize>
    <ysize>512</ysize>
  </material>
  <material>
    <name>Grass</name><name>Airport</name>
    <texture>Terrain/grass.png</texture>
    <xsize>128</xsize>
  </material>
  <material>
    <name>GrassCover</name>
    <texture>Terrain/grass.png</texture>
    <xsize>2000</xsize><ysize>2000</ysize>
  </material>
</PropertyList>
"""


def test_material_sizes_from_xml() -> None:
    uses = D.material_textures(SNIPPET)
    assert set(uses) == {"Terrain/town-a.png", "Terrain/town-b.png", "Terrain/grass.png"}
    a = uses["Terrain/town-a.png"]
    assert a.sizes == [(1024.0, 512.0)] and a.materials == {"Town", "SubUrban"}
    assert a.masks == ["Terrain/town-a.mask.png"]
    assert uses["Terrain/town-b.png"].masks == []  # the one mask belongs to the first set
    # the airport use (128 m, no ysize → square) is kept apart from the land-cover use
    g = uses["Terrain/grass.png"]
    assert g.airport_sizes == [(128.0, 128.0)] and g.sizes == [(2000.0, 2000.0)]
    assert D.texture_mpp(a.sizes, 1024, 512) == (1.0, 1.0)
    assert D.texture_mpp(g.sizes, 1024, 1024) == pytest.approx((1.953125, 1.953125))


def test_texture_mpp_takes_the_most_frequent_size_then_the_smallest() -> None:
    assert D.texture_mpp([(1000, 1000), (10000, 10000), (1000, 1000)], 1000, 1000) == (1, 1)
    assert D.texture_mpp([(10000, 10000), (1000, 1000)], 1000, 1000) == (1, 1)
    with pytest.raises(ValueError):
        D.texture_mpp([], 10, 10)


def test_mask_stem_and_classes() -> None:
    assert D.mask_stem("Terrain/city1.mask.png") == "city1"
    assert D.mask_stem("Terrain/cemetery-mask.png") == "cemetery"
    assert D.mask_stem("Terrain/australia_suburbs_tree_mask.png") == "australia_suburbs"
    assert D.classify("cerrado-crop") == ("farmland/crop", C.CROPLAND)
    assert D.classify("california-town2") == ("town", C.URBAN)
    assert D.classify("irrcrop-europe") == ("farmland/irrcrop", C.CROPLAND)
    assert D.classify("glacier3")[1] == C.ICE and D.classify("lava1")[1] == C.ROCK
    assert D.classify("dec_evergreen")[1] == C.NEEDLELEAF
    assert D.classify("sand3")[1] == C.DESERT and D.classify("zzz") is None


# ---- labels on synthetic images ------------------------------------------------------------


def _field(h: int = 128, w: int = 128) -> np.ndarray:
    rgb = np.zeros((h, w, 3), dtype=np.uint8)
    rgb[...] = (110, 140, 60)  # grass
    return rgb


def test_blue_square_is_water() -> None:
    rgb = _field()
    rgb[32:96, 32:96] = (20, 40, 90)  # dark blue
    w = L.water(rgb)
    assert w[40:88, 40:88].min() >= 0.9
    assert w[:20].max() <= 0.1
    p, present = L.planes(rgb)
    st, have = L.stack(p, present, mpp=2.0)
    i = L.CHANNELS.index("distance")
    assert have[i]
    assert st[i][64, 64] > 0 and st[i][5, 5] < 0
    assert st[i][64, 64] == pytest.approx((32 - 0.5) * 2.0, abs=2.0)  # centre: 32 px inside
    assert st[L.CHANNELS.index("vegetation")][5, 5] > 0.5
    assert st[L.CHANNELS.index("vegetation")][64, 64] < 0.1
    lc = st[L.CHANNELS.index("landcover")]
    assert lc[64, 64] == C.WATER and lc[5, 5] == L.UNKNOWN
    assert not have[L.CHANNELS.index("landcover")]  # no class given: the channel is missing


def test_green_water_is_not_vegetation() -> None:
    rgb = np.zeros((64, 64, 3), dtype=np.uint8)
    rgb[...] = (20, 60, 62)  # dark green-blue sea (FlightGear's tidal texture)
    assert L.water(rgb).min() > 0.9
    p, _ = L.planes(rgb, landcover=C.WETLAND)
    assert p[L.PLANES.index("vegetation")].max() < 20
    assert (p[L.PLANES.index("landcover")] == C.WATER).all()


def test_ndwi_beats_colour_where_nir_exists() -> None:
    rgb = _field(64, 64)
    refl = np.zeros((64, 64, 4), dtype=np.float32)
    refl[...] = (0.05, 0.08, 0.04, 0.40)  # vegetation: NIR high
    refl[:, :20] = (0.04, 0.06, 0.05, 0.01)  # water: NIR absorbed
    w = L.water(rgb, refl)
    assert w[:, :18].min() == 1.0 and w[:, 24:].max() == 0.0
    p, present = L.planes(rgb, reflectance=refl, landcover=C.CROPLAND)
    lc = p[L.PLANES.index("landcover")]
    assert (lc[:, :18] == C.WATER).all() and (lc[:, 24:] == C.CROPLAND).all()
    assert L.vegetation(rgb, refl)[:, 30:].min() > 0.9


def test_straight_line_is_found_and_texture_is_not() -> None:
    rng = np.random.default_rng(1)
    rgb = _field(160, 160)
    rgb[78:82, 10:150] = (230, 230, 225)  # a road, 4 px wide, 140 px long
    p, _ = L.planes(rgb)
    lines = p[L.PLANES.index("lines")] > 0
    assert lines[70:90, 20:140].sum() >= 100  # its edges are lines
    assert lines[:60].sum() == 0 and lines[100:].sum() == 0  # nothing off the road
    noise = rng.integers(60, 200, (160, 160, 3), dtype=np.uint8)  # texture, no line
    pn, _ = L.planes(noise)
    assert (pn[L.PLANES.index("lines")] > 0).mean() < 0.005


def test_flat_ground_has_no_edges() -> None:
    rgb = _field(96, 96)
    assert not L.edges(rgb).any()


def test_fg_mask_and_presence() -> None:
    rgb = _field(64, 64)
    mask = np.zeros((16, 16, 3), dtype=np.uint8)
    mask[:8, :, 1] = 255  # trees in the top half
    mask[8:, :, 2] = 255  # buildings in the bottom half
    p, present = L.planes(rgb, mask_rgb=mask, landcover=C.URBAN)
    t, b = p[L.PLANES.index("trees")], p[L.PLANES.index("building")]
    # masks tile like their textures (the resize wraps): compare away from the wrap seam
    assert t[8:24].min() > 200 and t[40:56].max() < 50
    assert b[40:56].min() > 200 and b[8:24].max() < 50
    st, have = L.stack(p, present, mpp=1.0)
    named = dict(zip(L.CHANNELS, have, strict=True))
    assert named["trees"] and named["building"] and named["landcover"] and named["edge"]
    assert not named["rivers"] and not named["elevation"] and not named["hillshade"]
    assert not named["distance"]  # no water in view: the shore's distance is unknown
    p2, present2 = L.planes(rgb)
    assert not present2[L.PLANES.index("trees")] and not present2[L.PLANES.index("landcover")]


def test_down2_keeps_classes_and_lines() -> None:
    p = np.zeros((len(L.PLANES), 4, 4), dtype=np.uint8)
    p[L.PLANES.index("landcover")] = [[7, 12, 7, 7]] * 4
    p[L.PLANES.index("lines"), 0, 1] = 255
    p[L.PLANES.index("water"), :2, :2] = 255
    d = L.down2(p)
    assert d.shape == (len(L.PLANES), 2, 2)
    assert d[L.PLANES.index("landcover")].tolist() == [[7, 7], [7, 7]]
    assert d[L.PLANES.index("lines"), 0, 0] == 255
    assert d[L.PLANES.index("water")].tolist() == [[255, 0], [0, 0]]


def test_assemble_matches_stack_order() -> None:
    h = w = 8
    layout = np.zeros((4, h, w), dtype=np.uint8)
    layout[2, 3] = 255
    st, have = L.assemble(
        np.full((h, w), C.OCEAN, np.uint8),
        np.full((h, w), 50.0, np.float32),
        np.zeros((h, w), np.float32),
        np.zeros((h, w), np.float32),
        np.full((h, w), C.WATER, np.uint8),
        layout,
        mpp=10.0,
    )
    assert st.shape == (len(L.CHANNELS), h, w)
    assert st[L.CHANNELS.index("water")].min() == 1.0
    assert st[L.CHANNELS.index("road"), 3].min() == 255
    assert st[L.CHANNELS.index("lines"), 3].min() == 255
    assert not have[L.CHANNELS.index("vegetation")] and have[L.CHANNELS.index("distance")]


def test_save_load_roundtrip(tmp_path: Path) -> None:
    p, present = L.planes(_field(32, 32))
    L.save(tmp_path / "a.npz", p, present)
    q, pr = L.load(tmp_path / "a.npz")
    assert np.array_equal(p, q) and np.array_equal(present, pr)
    assert not list(tmp_path.glob("*.tmp*"))


# ---- manifest schema -----------------------------------------------------------------------


def test_manifest_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _fake_fg(tmp_path, {"city1": 128, "city2": 128, "rice1": 128})
    (tmp_path / "list.txt").write_text("city1\n")
    # the packaged satellite scenes and NEON are exercised by the real build, not here
    monkeypatch.setattr(D, "_satellite_with_nir", lambda: [])
    monkeypatch.setattr(D, "neon_images", lambda wheel: {})
    out = tmp_path / "set"
    D.build(out, flightgear=root, wheel=tmp_path / "none.whl", holdout_list=tmp_path / "list.txt")
    m = json.loads((out / "manifest.json").read_text())
    assert m["version"] == "3" and m["channels"] == list(L.CHANNELS)
    assert m["planes"] == list(L.PLANES) and m["holdout_stems"] == ["city1"]
    keys = {"name", "file", "labels", "mpp", "split", "source", "licence", "class", "kind"}
    for row in m["entries"]:
        assert keys <= set(row)
        assert row["split"] in D.SPLITS
        assert (out / row["file"]).is_file() and (out / row["labels"]).is_file()
        assert "GPL-2+" in row["licence"] and row["wraps"] is True
    splits = {r["name"]: r["split"] for r in m["entries"]}
    assert splits == {"fg-city1": "eval", "fg-city2": "train", "fg-rice1": "train"}
    items = D.load(out, "train")
    assert len(items) == 2 and items[0].planes.shape[1:] == items[0].rgb.shape[:2]
    table = D.summary(m["entries"])
    assert "| urban | 1 | 0 | 1 |" in table


def test_pyramid_keeps_labels_beside_the_image() -> None:
    rgb = _field(64, 64)
    rgb[:32] = (20, 40, 90)
    p, _ = L.planes(rgb)
    levels = L.pyramid(rgb, p, 1.0, min_size=16)
    assert [lv[2] for lv in levels] == [1.0, 2.0, 4.0]
    for img, planes, _ in levels:
        assert planes.shape[1:] == img.shape[:2]
        assert planes[L.PLANES.index("water"), 0, 0] > 200  # the top half stays water
