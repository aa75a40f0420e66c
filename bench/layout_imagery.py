"""Structure in the imagery (issue 13): does orbis's imagery show fields, roads and towns?

    .venv/bin/python bench/layout_imagery.py --flightgear DIR [--spacenet DIR] [--model builtin]
        [--zooms 13-17] [--labels before,after] [--classes farmland,town,city]

DIR holds Debian ``flightgear-data-base``'s ``usr/share/games/flightgear`` (``make data`` unpacks
it; the package is too big for run time). The reference is its aerial photo textures that
``../shared/holdout/flightgear.txt`` holds out (evaluation only, never trained on): farmland
(``irrcrop-europe``, ``uk_countryside1``, ``cropgrass-hires``), town (``town-europe``,
``town-europe-south``) and city (``city1``), each box-reduced from its own ground resolution
(``Materials/*.xml``: ``xsize`` metres over the texture's width) to the m/px of each zoom at
the places' latitude. orbis: ``earth`` tiles at ``--zooms`` over farmland (the Po valley), a
town (Freiburg im Breisgau: the layout's town ground at every zoom; the first choice, Freising,
is cropland in the layout, so its "town" figures were farmland's) and a city (Paris's 19th
arrondissement, away from the Seine: on the first choice, 2.35° E 48.86° N, the river's dark
banks carried 42–46 % of the gradient energy at z13–z14, and the held-out city texture has no
river), with the
layout painted into the imagery (``after``) and without (``before``: ``[geography] paint =
false``).

Real roads (``--spacenet DIR``, the ``solaris/data`` folder of the ``solaris`` 0.4.0 wheel,
unpacked; not a dependency): SpaceNet's Las Vegas sample ``road_mask_input.tif`` (WorldView-3
panchromatic, 2.7e-6° ≈ 0.24 × 0.30 m pixels, 11-bit, stretched to 0–255 between its 0.5 and
99.5 % quantiles as a display would) with its road centrelines
``sample_roads_for_masking.geojson`` (the labels of that image; ``sample_roads.geojson``
lies 6 km west, outside it), box-reduced to each zoom's m/px at the places' latitude and
measured like orbis's roads.

Figures (luminance; ARCHITECTURE §6 style, on whole tiles / texture crops):

- **coherence**: orientation coherence of the structure tensor (σ = 2 px integration),
  ``√((Jxx − Jyy)² + 4 Jxy²) / (Jxx + Jyy)``, averaged with the gradient energy as weight: 1 for
  pure straight stripes, near 0 for isotropic texture (moss);
- **straight edges**: the share of edge pixels (top 10 % gradient magnitude) whose coherence at
  a wider scale (σ = 6 px) exceeds 0.75: edges that run straight for several pixels;
- **line share** (scikit-image): the share of Canny edge pixels (σ = 1.5, the top 20 % of
  gradients as its quantile thresholds) within 1 px of a straight segment of ≥ 15 px found by
  the probabilistic Hough transform (``probabilistic_hough_line``, votes ≥ 10, gaps ≤ 2 px,
  a fixed rng): how much of the image's edge content is long straight lines (field edges,
  streets, roofs) rather than texture;
- **road contrast** (orbis, where the layout has roads): mean |L(centreline) − L(5 px either
  side)| along the layout's road centrelines (road pixels farthest from the road's edge),
  across the road as its mask's structure tensor gives it; for the real roads the same along
  their labelled centrelines (rasterised on the reduced grid).

Writes bench/results/layout_imagery.json.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import mercantile
import numpy as np
from common import save
from PIL import Image
from scipy import ndimage

from generator.metrics_realism import structure_tensor as tensor  # shared with bench/realism.py

REAL = {
    "farmland": ["irrcrop-europe", "uk_countryside1", "cropgrass-hires"],
    "town": ["town-europe", "town-europe-south"],
    "city": ["city1"],
}
PLACES = {"farmland": (10.2, 45.05), "town": (7.85, 47.995), "city": (2.38, 48.885)}
#: The layout's road classes whose centrelines the road contrast follows.
ROAD_CLASSES = ("ROAD", "MAIN_ROAD", "MOTORWAY", "STREET", "TRACK", "AVENUE")
HOLDOUT = Path(__file__).resolve().parent.parent.parent / "shared" / "holdout" / "flightgear.txt"


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Return L (0–255) of an (h, w, 3) uint8/float image."""
    rgb = rgb.astype(np.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def structure(rgb: np.ndarray) -> dict[str, float]:
    """Return coherence and straight-edge share of an image (see the module docstring)."""
    lum = luminance(rgb)
    coh, tr, _ = tensor(lum, 2.0)
    wide, _, _ = tensor(lum, 6.0)
    g = np.hypot(ndimage.sobel(lum, 1), ndimage.sobel(lum, 0))
    edge = g >= np.quantile(g, 0.9)
    return {
        "coherence": float((coh * tr).sum() / (tr.sum() + 1e-6)),
        "straight": float((wide[edge] > 0.75).mean()),
        "lines": line_share(lum),
    }


def line_share(lum: np.ndarray, length: int = 15) -> float:
    """Return the share of Canny edge pixels within 1 px of a straight segment ≥ ``length`` px
    (probabilistic Hough transform, scikit-image; see the module docstring)."""
    from skimage.draw import line
    from skimage.feature import canny
    from skimage.transform import probabilistic_hough_line

    edges = canny(lum, sigma=1.5, low_threshold=0.8, high_threshold=0.9, use_quantiles=True)
    if edges.sum() == 0:
        return 0.0
    segs = probabilistic_hough_line(
        edges, threshold=10, line_length=length, line_gap=2, rng=np.random.default_rng(0)
    )
    on = np.zeros(lum.shape, bool)
    for (x0, y0), (x1, y1) in segs:
        rr, cc = line(y0, x0, y1, x1)
        on[rr, cc] = True
    on = ndimage.binary_dilation(on, iterations=1)
    return float((edges & on).sum() / edges.sum())


def road_contrast(lum: np.ndarray, road: np.ndarray, centre: np.ndarray | None = None) -> float:
    """Return the road contrast (module docstring) of a road mask; ``centre``: the centreline
    pixels when known (labels), else the mask's pixels farthest from its edge."""
    if centre is None:
        dist = ndimage.distance_transform_edt(road)
        centre = road & (dist >= ndimage.maximum_filter(dist, 3))
    # across a road: the gradient direction of its own (blurred) mask
    _, _, theta = tensor(road.astype(np.float32) * 255.0, 2.0)
    return line_contrast(lum, centre, theta)


def spacenet_roads(folder: Path, zooms: list[int]) -> dict:
    """Road contrast of SpaceNet's labelled Las Vegas roads at each zoom's m/px (see the
    module docstring); the places' mean latitude sets the m/px, as for the textures."""
    import json

    import rasterio
    import shapely
    from affine import Affine
    from rasterio import features

    with rasterio.open(folder / "road_mask_input.tif") as src:
        a = src.read(1).astype(np.float32)
        tr = src.transform
        lat = (src.bounds.top + src.bounds.bottom) / 2
    lo, hi = np.quantile(a, [0.005, 0.995])
    lum = np.clip((a - lo) / (hi - lo) * 255.0, 0, 255).astype(np.float32)
    doc = json.loads((folder / "sample_roads_for_masking.geojson").read_text())
    lanes = [float(f["properties"].get("lane_number") or 2) for f in doc["features"]]
    lines = [shapely.geometry.shape(f["geometry"]) for f in doc["features"]]
    mx = tr.a * 111_320.0 * np.cos(np.radians(lat))  # native metres per pixel, x and y
    my = -tr.e * 110_574.0
    place_lat = float(np.mean([ll[1] for ll in PLACES.values()]))
    out: dict = {}
    for z in zooms:
        mpp = 156543.03392 / 2**z * np.cos(np.radians(place_lat))
        w = max(8, round(lum.shape[1] * mx / mpp))
        h = max(8, round(lum.shape[0] * my / mpp))
        small = np.asarray(
            Image.fromarray(lum, mode="F").resize((w, h), Image.Resampling.BOX), np.float32
        )
        t2 = tr * Affine.scale(lum.shape[1] / w, lum.shape[0] / h)
        centre = features.rasterize([(g, 1) for g in lines], out_shape=(h, w), transform=t2) > 0
        # the road's own width (3.5 m a lane), at least the centreline
        half = [max(0.5, n * 3.5 / 2 / mpp) for n in lanes]
        width = features.rasterize(
            [(g.buffer(hw * mpp / 111_000.0), 1) for g, hw in zip(lines, half, strict=True)],
            out_shape=(h, w),
            transform=t2,
        )
        road = (width > 0) | centre
        out[f"z{z}"] = {
            "road_contrast": road_contrast(small, road, centre),
            "road_px": int(centre.sum()),
            "mpp": float(mpp),
            "size_px": [int(h), int(w)],
        }
    return out


def line_contrast(lum: np.ndarray, line: np.ndarray, theta: np.ndarray, d: int = 5) -> float:
    """Mean |L − mean(L at ±d px across the line)| over ``line`` pixels; ``theta`` is the
    direction across the line (the gradient's) at each pixel."""
    ys, xs = np.nonzero(line)
    if len(ys) == 0:
        return float("nan")
    c, s = np.cos(theta[ys, xs]), np.sin(theta[ys, xs])
    side = []
    for sign in (1, -1):
        yy, xx = ys + sign * d * s, xs + sign * d * c
        side.append(ndimage.map_coordinates(lum, [yy, xx], order=1, mode="nearest"))
    return float(np.abs(lum[ys, xs] - 0.5 * (side[0] + side[1])).mean())


def texture_mpp(fg: Path) -> dict[str, float]:
    """Return metres per pixel of every Terrain texture from ``Materials/**/*.xml``."""
    out: dict[str, float] = {}
    pat = re.compile(r"<texture>Terrain/([\w.-]+)\.png</texture>.*?<xsize>([\d.]+)</xsize>", re.S)
    for xml in (fg / "Materials").rglob("*.xml"):
        for name, xsize in pat.findall(xml.read_text(errors="ignore")):
            png = fg / "Textures" / "Terrain" / f"{name}.png"
            if name not in out and png.exists():
                with Image.open(png) as im:
                    out[name] = float(xsize) / im.size[0]
    return out


def held_out() -> set[str]:
    """Return the held-out texture stems (evaluation only)."""
    lines = HOLDOUT.read_text().splitlines()
    return {ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")}


def real_figures(fg: Path, zooms: list[int]) -> dict:
    """Structure of the held-out textures at each zoom's m/px (latitude of the places)."""
    mpp = texture_mpp(fg)
    hold = held_out()
    out: dict = {}
    for klass, names in REAL.items():
        lat = PLACES[klass][1]
        for z in zooms:
            target = 156543.03392 / 2**z * np.cos(np.radians(lat))
            figs = []
            for name in names:
                assert name in hold, f"{name} is not held out"
                with Image.open(fg / "Textures" / "Terrain" / f"{name}.png") as im:
                    rgb = im.convert("RGB")
                f = max(1.0, target / mpp[name])  # never enlarge: finer than the data → native
                if f > 1.0:
                    size = (max(32, round(rgb.size[0] / f)), max(32, round(rgb.size[1] / f)))
                    rgb = rgb.resize(size, Image.Resampling.BOX)
                a = np.asarray(rgb)
                fig = structure(a)
                fig["mpp"] = float(mpp[name] * f)
                figs.append(fig)
            out[f"{klass}/z{z}"] = {k: float(np.mean([f[k] for f in figs])) for k in figs[0]}
    return out


def orbis_figures(model: str, zooms: list[int], labels: list[str], classes: list[str]) -> dict:
    """Structure of orbis tiles with and without the painted layout."""
    from generator.geography import layout_classes as K
    from generator.world import World, load_model
    from tests.helpers import CONFIG_DIR, write_world

    m = load_model(model)
    text = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
    out: dict = {}
    runs = [("before", "[geography]\npaint = false\n\n"), ("after", "")]
    for label, extra in [r for r in runs if r[0] in labels]:
        cfg = Path(tempfile.mkdtemp())
        write_world(cfg, "earth", text.replace("[model]", extra + "[model]"))
        w = World.load("earth", cfg, model=m)
        for klass, (lon, lat) in [p for p in PLACES.items() if p[0] in classes]:
            for z in sorted(zooms, reverse=True):  # the deepest first: its cone caches the rest
                t = mercantile.tile(lon, lat, z)
                rgb = w.tile_array(z, t.x, t.y)
                Image.fromarray(rgb).save(
                    Path(tempfile.gettempdir()) / f"li_{klass}_{z}_{label}.png"
                )
                fig = structure(rgb)
                cls = w.layer("layout", z, t.x, t.y)
                road = np.isin(cls, [getattr(K, n) for n in ROAD_CLASSES])
                if road.any():
                    fig["road_contrast"] = road_contrast(luminance(rgb), road)
                    fig["road_px"] = int(road.sum())
                out[f"{label}/{klass}/z{z}"] = fig
                print(label, klass, z, {k: round(v, 3) for k, v in fig.items()}, flush=True)
    return out


def main() -> None:
    """Measure, print and save."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flightgear", type=Path, required=True)
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--zooms", default="13-17")
    ap.add_argument("--spacenet", type=Path, help="solaris/data of the solaris 0.4.0 wheel")
    ap.add_argument("--labels", default="before,after")
    ap.add_argument("--classes", default=",".join(PLACES))
    ap.add_argument("--out", default="layout_imagery", help="result name (bench/results/)")
    args = ap.parse_args()
    a, b = (int(v) for v in args.zooms.split("-"))
    zooms = list(range(a, b + 1))
    real = real_figures(args.flightgear, zooms)
    for k, v in real.items():
        print("real", k, {kk: round(vv, 3) for kk, vv in v.items()}, flush=True)
    roads = spacenet_roads(args.spacenet, zooms) if args.spacenet else {}
    for k, v in roads.items():
        print("real roads", k, {kk: v[kk] for kk in ("road_contrast", "road_px")}, flush=True)
    gen = orbis_figures(args.model, zooms, args.labels.split(","), args.classes.split(","))
    doc = {"model": args.model, "real": real, "real_roads": roads, "orbis": gen}
    save(args.out, doc)


if __name__ == "__main__":
    main()
