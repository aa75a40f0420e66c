"""Structure in the imagery (issue 13): does orbis's imagery show fields, roads and towns?

    .venv/bin/python bench/layout_imagery.py --flightgear DIR [--model builtin] [--zooms 13-17]

DIR holds Debian ``flightgear-data-base``'s ``usr/share/games/flightgear`` (``make data`` unpacks
it; the package is too big for run time). The reference is its aerial photo textures that
``../shared/holdout/flightgear.txt`` holds out (evaluation only, never trained on): farmland
(``irrcrop-europe``, ``uk_countryside1``, ``cropgrass-hires``), town (``town-europe``,
``town-europe-south``) and city (``city1``), each box-reduced from its own ground resolution
(``Materials/*.xml``: ``xsize`` metres over the texture's width) to the m/px of each zoom at
the places' latitude. orbis: ``earth`` tiles at ``--zooms`` over farmland (the Po valley), a
town (Freising, Bavaria) and a city (Paris), with the layout painted into the imagery (today)
and without (``[geography] paint = false``: the imagery before it).

Figures (luminance; ARCHITECTURE §6 style, on whole tiles / texture crops):

- **coherence**: orientation coherence of the structure tensor (σ = 2 px integration),
  ``√((Jxx − Jyy)² + 4 Jxy²) / (Jxx + Jyy)``, averaged with the gradient energy as weight: 1 for
  pure straight stripes, near 0 for isotropic texture (moss);
- **straight edges**: the share of edge pixels (top 10 % gradient magnitude) whose coherence at
  a wider scale (σ = 6 px) exceeds 0.75: edges that run straight for several pixels;
- **road contrast** (orbis, where the layout has roads): mean |L(centreline) − L(5 px either
  side)| along the layout's road centrelines (road pixels farthest from the road's edge),
  across the road as its mask's structure tensor gives it. The held-out textures carry no road
  labels, so the real roads' figure the issue asks for is not measured here (a line detector on
  them picked shadows and black roofs, not roads: tried and dropped).

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
PLACES = {"farmland": (10.2, 45.05), "town": (11.745, 48.400), "city": (2.35, 48.86)}
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
    }


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


def orbis_figures(model: str, zooms: list[int]) -> dict:
    """Structure of orbis tiles with and without the painted layout."""
    from generator.geography import layout_classes as K
    from generator.world import World, load_model
    from tests.helpers import CONFIG_DIR, write_world

    m = load_model(model)
    text = (CONFIG_DIR / "worlds" / "earth.toml").read_text()
    out: dict = {}
    for label, extra in [("before", "[geography]\npaint = false\n\n"), ("after", "")]:
        cfg = Path(tempfile.mkdtemp())
        write_world(cfg, "earth", text.replace("[model]", extra + "[model]"))
        w = World.load("earth", cfg, model=m)
        for klass, (lon, lat) in PLACES.items():
            for z in sorted(zooms, reverse=True):  # the deepest first: its cone caches the rest
                t = mercantile.tile(lon, lat, z)
                rgb = w.tile_array(z, t.x, t.y)
                Image.fromarray(rgb).save(
                    Path(tempfile.gettempdir()) / f"li_{klass}_{z}_{label}.png"
                )
                fig = structure(rgb)
                cls = w.layer("layout", z, t.x, t.y)
                road = np.isin(cls, [K.ROAD, K.MAIN_ROAD, K.MOTORWAY, K.STREET, K.TRACK])
                if road.any():
                    dist = ndimage.distance_transform_edt(road)
                    centre = road & (dist >= ndimage.maximum_filter(dist, 3))
                    # across a road: the gradient direction of its own (blurred) mask
                    _, _, theta = tensor(road.astype(np.float32) * 255.0, 2.0)
                    fig["road_contrast"] = line_contrast(luminance(rgb), centre, theta)
                    fig["road_px"] = int(centre.sum())
                out[f"{label}/{klass}/z{z}"] = fig
                print(label, klass, z, {k: round(v, 3) for k, v in fig.items()}, flush=True)
    return out


def main() -> None:
    """Measure, print and save."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flightgear", type=Path, required=True)
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--zooms", default="13-17")
    args = ap.parse_args()
    a, b = (int(v) for v in args.zooms.split("-"))
    zooms = list(range(a, b + 1))
    real = real_figures(args.flightgear, zooms)
    for k, v in real.items():
        print("real", k, {kk: round(vv, 3) for kk, vv in v.items()}, flush=True)
    gen = orbis_figures(args.model, zooms)
    save("layout_imagery", {"model": args.model, "real": real, "orbis": gen})


if __name__ == "__main__":
    main()
