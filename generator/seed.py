"""Seeding: generate a bbox × zoom range of a world into a shared cache, on a Dask cluster.

``orbis seed WORLD --bbox W,S,E,N --zooms A-B`` is MapProxy's ``mapproxy-seed`` for a generated
world. Tiles are a pure function of their address, so workers need no coordination beyond the
shared cache: any worker may make any tile, and the same bytes come out. What the seeder adds is
an order that wastes no model evaluation.

Plan (``plan_seed``, run by the client, from the cache's state):

1. The tiles asked for are the bbox's tiles at each zoom (morecantile's ``tiles``).
2. Levels below the base are generated from windows. The dependency cone is walked from the
   deepest zoom up, exactly as ``planner.plan`` does for one tile: the tiles not cached, the
   windows they need that are not cached, then the parent tiles those windows and the tiles'
   parent corrections read, which join the level above. So the cone includes a margin of parent
   tiles just outside the bbox, and a resumed run (after an interruption) plans only what is
   missing. Nothing cached is planned again: a second run does no generation.
3. The base level and the levels above it (box means of their children) are cheap; they run
   first, the base first and then upwards, since above the base a tile is made from its children.

Execution (``run_seed``), level by level, ancestors before descendants. Each generated level is
two phases separated by a barrier:

- **windows**: every window of the level is assigned to exactly one task, so no window is
  sampled twice even though neighbouring tiles share windows (a tile blends 2×2 windows, each
  window feeds 4 tiles). Their parents were all made by the level above.
- **tiles**: blending and the parent correction, cheap; every window is cached by now.

Tasks are square blocks of B×B windows (or tiles), B = 4, 2 or 1: the largest that still gives
every worker four tasks per phase, for load balance. Blocks matter little for model work (the
partition already avoids duplicates) but a block of neighbouring windows reads overlapping parent
tiles, which each worker keeps in its in-process hot cache, so larger blocks mean fewer reads of
the shared cache; and fewer, larger tasks cost the scheduler less.

Workers open the world themselves (``World.load`` with the same cache spec and model path),
once per worker process: the model is never shipped through the scheduler. With no scheduler a
``LocalCluster`` of single-threaded worker processes is started (one per core is the way to use
a multi-core machine; Dask sets ``OMP_NUM_THREADS=1`` in each, and ``ORBIS_EVAL_WORKERS=1`` is
set so that no worker runs windows side by side on top; the bytes do not depend on either, see
``generator.parallel``). Every tile of the bbox is then encoded in ``--formats`` under the key
the server reads (``generator.encoded``): a seeded tile is served with no work. The cache must be
one all processes see: a diskcache folder or ``redis://``; an in-memory cache is refused with more
than one worker.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from . import tiles
from .encoded import encoded_key, encoded_tile
from .errors import InvalidTile, OrbisError
from .formats import DEFAULT_FORMAT, ImageFormat
from .planner import Window
from .region import Bbox
from .store import unpack
from .stores import has
from .tiles import Tile
from .world import World

#: tiles (summed over the zoom range, inside the bbox) one command may seed without --force:
#: about a city to z17; with the built-in model on 2 CPU cores ~1.4 s per tile, i.e. a day.
MAX_TILES = 50_000

_LL_EPSILON = 1e-11  # mercantile's: an east/south edge on a tile boundary is not in the next tile


class SeedError(OrbisError):
    """A seeding request that cannot be run (bad zooms, too large, unusable cache)."""


def format_bbox(bbox: Bbox) -> str:
    """Return ``W,S,E,N`` as a user would type it."""
    return ",".join(f"{v:g}" for v in bbox)


def _parts(bbox: Bbox) -> list[tuple[float, float, float, float]]:
    """Split a box that crosses the antimeridian (west > east) in two."""
    w, s, e, n = bbox
    return [(w, s, 180.0, n), (-180.0, s, e, n)] if w > e else [(w, s, e, n)]


def _ranges(bbox: Bbox, z: int) -> list[tuple[int, int, int, int]]:
    """Return (xmin, xmax, ymin, ymax), inclusive, of each part of a box at zoom z."""
    tms, top = tiles.tms(), (1 << z) - 1
    out = []
    for w, s, e, n in _parts(bbox):
        ul = tms.tile(w, n, z)
        lr = tms.tile(e - _LL_EPSILON, s + _LL_EPSILON, z)
        out.append((max(ul.x, 0), min(lr.x, top), max(ul.y, 0), min(lr.y, top)))
    return out


def bbox_tiles(bbox: Bbox, z: int) -> list[Tile]:
    """Return the tiles a bbox touches at zoom z (morecantile's ``tile`` at its corners)."""
    found = {
        Tile(x, y, z)
        for xmin, xmax, ymin, ymax in _ranges(bbox, z)
        for y in range(ymin, ymax + 1)
        for x in range(xmin, xmax + 1)
    }
    return sorted(found, key=lambda t: (t.y, t.x))


def count_tiles(bbox: Bbox, zooms: Iterable[int]) -> int:
    """Return how many tiles a bbox touches over some zooms, without listing them."""
    return sum(
        (xmax - xmin + 1) * (ymax - ymin + 1)
        for z in zooms
        for xmin, xmax, ymin, ymax in _ranges(bbox, z)
    )


# ---- the plan -------------------------------------------------------------------------------


class Phase(NamedTuple):
    """One barrier-separated step of one zoom: ``kind`` is "windows", "tiles" or "encode"
    (the served bytes of the bbox's tiles in ``formats``, under the server's keys)."""

    z: int
    kind: str
    items: list[tuple[int, int, int]]  # Tile or Window fields, as plain tuples for pickling
    formats: tuple[str, ...] = ()


@dataclass
class SeedPlan:
    """What a seed will do, computed from the cache's state before it starts."""

    world: str
    bbox: Bbox
    zooms: tuple[int, int]
    steps_per_window: int
    requested: dict[int, int]  # tiles in the bbox per zoom
    phases: list[Phase] = field(default_factory=list)
    #: encodings written for the bbox's tiles (``--formats``)
    formats: tuple[str, ...] = ()
    #: (tile, format) pairs not cached yet, to encode
    encodes: int = 0

    @property
    def tiles(self) -> int:
        """Tiles to generate (the cone's margin outside the bbox included)."""
        return sum(len(p.items) for p in self.phases if p.kind == "tiles")

    @property
    def windows(self) -> int:
        """Windows to sample with the model."""
        return sum(len(p.items) for p in self.phases if p.kind == "windows")

    @property
    def model_evals(self) -> int:
        """Model evaluations (the cost unit): windows × sampler steps."""
        return self.windows * self.steps_per_window

    def summary(self) -> str:
        """Return the estimate printed before a seed starts (one line)."""
        lo, hi = self.zooms
        return (
            f"seed {self.world} z{lo}-{hi} over {format_bbox(self.bbox)}: "
            f"{sum(self.requested.values()):,} tiles in the bbox; to generate "
            f"{self.tiles:,} tiles (cone included), {self.windows:,} windows, "
            f"{self.model_evals:,} model evaluations"
            + (
                f"; {self.encodes:,} tiles to encode ({','.join(self.formats)})"
                if self.formats
                else ""
            )
        )


def parse_formats(text: str | None) -> tuple[str, ...]:
    """Return the encodings of ``--formats png,webp`` (``none``: the pixels only).

    Raises:
        SeedError: an unknown format (the message lists the known ones).
    """
    if text is None:
        return (DEFAULT_FORMAT.value,)
    if text.strip().lower() == "none":
        return ()
    out: list[str] = []
    for part in text.split(","):
        try:
            fmt = ImageFormat.parse(part.strip()).value
        except InvalidTile:
            known = ", ".join(f.value for f in ImageFormat)
            raise SeedError(
                f"--formats: unknown format {part.strip()!r} (use {known} or none)"
            ) from None
        if fmt not in out:
            out.append(fmt)
    return tuple(out)


def plan_seed(
    world: World,
    bbox: Bbox,
    zooms: Sequence[int],
    force: bool = False,
    formats: Sequence[str] | None = None,
) -> SeedPlan:
    """Return the phases that generate what is missing from a bbox × zoom range.

    ``formats`` (default: the server's default, PNG) are the encodings written for every tile
    of the bbox under the key the server reads, so serving a seeded tile costs no generation
    and no encoding; ``()`` seeds the pixels only.

    Raises:
        SeedError: an unreachable cache, a zoom outside the world's range, or more than
            ``MAX_TILES`` tiles without ``force``.
    """
    healthy = getattr(world.pyramid.store, "healthy", None)
    if healthy is not None and not healthy():  # a seed into an unreachable cache is lost work
        raise SeedError(f"the cache is not reachable: {world.pyramid.store!r}")
    lo, hi = zooms[0], zooms[-1]  # (A, B) or range(A, B + 1)
    if lo < 0 or hi > world.max_zoom:
        raise SeedError(f"--zooms must lie in 0..{world.max_zoom} for {world.name}, got {lo}-{hi}")
    requested = {z: count_tiles(bbox, [z]) for z in range(lo, hi + 1)}
    total = sum(requested.values())
    if total > MAX_TILES and not force:
        raise SeedError(
            f"seeding {world.name} z{lo}-{hi} over {format_bbox(bbox)} covers {total:,} tiles, "
            f"over the limit of {MAX_TILES:,} per command; narrow --bbox or --zooms or pass --force"
        )
    pyr, geo, base = world.pyramid, world.geometry, world.pyramid.base_zoom
    fmts = tuple(formats) if formats is not None else (DEFAULT_FORMAT.value,)
    plan = SeedPlan(world.name, bbox, (lo, hi), pyr.steps, requested, formats=fmts)

    # Levels generated from windows: walk the cone up from the deepest zoom (planner.plan's walk
    # for a set of targets), then emit it ancestors first.
    carry: set[Tile] = set()
    generated: list[tuple[int, set[Tile], set[Window]]] = []
    for z in range(hi, base, -1):
        targets = set(bbox_tiles(bbox, z)) if z >= lo else set()
        need = {t for t in targets | carry if not pyr.is_cached(t)}
        wins = {w for t in need for w in geo.windows_for_tile(t) if not pyr.is_cached(w)}
        carry = {p for w in wins for p in geo.parents_for_window(w)}
        carry |= {p for t in need for p in geo.parents_for_tile(t)}
        generated.append((z, need, wins))

    # The base level and above: the bbox's tiles, plus base tiles the first generated level
    # reads; made base first, then upwards (a tile above the base is its children's box mean).
    upper: dict[int, set[Tile]] = defaultdict(set)
    for z in range(max(lo, 0), min(hi, base) + 1):
        upper[z] |= {t for t in bbox_tiles(bbox, z) if not pyr.is_cached(t)}
    if carry:
        upper[base] |= {t for t in carry if not pyr.is_cached(t)}
    for z in sorted(upper, reverse=True):
        for t in sorted(upper[z], key=lambda t: (t.y, t.x)):
            for d in range(z + 1, base + 1):  # its descendants at each level down to the base
                k = d - z
                for y in range(t.y << k, (t.y + 1) << k):
                    for x in range(t.x << k, (t.x + 1) << k):
                        c = Tile(x, y, d)
                        if c not in upper[d] and not pyr.is_cached(c):
                            upper[d].add(c)
    for z in sorted(upper, reverse=True):
        if upper[z]:
            items = sorted(((t.x, t.y, t.z) for t in upper[z]), key=lambda i: (i[1], i[0]))
            plan.phases.append(Phase(z, "tiles", items))

    for z, need, wins in reversed(generated):
        if wins:
            items = sorted(((w.z, w.col, w.row) for w in wins), key=lambda i: (i[2], i[1]))
            plan.phases.append(Phase(z, "windows", items))
        if need:
            items = sorted(((t.x, t.y, t.z) for t in need), key=lambda i: (i[1], i[0]))
            plan.phases.append(Phase(z, "tiles", items))

    # The served bytes, last (every tile exists by then): the bbox's tiles whose encoding in
    # some format is not cached (asked with EXISTS, not by reading the bytes back).
    for z in range(lo, hi + 1) if fmts else ():
        items = []
        for t in bbox_tiles(bbox, z):
            missing = [f for f in fmts if not has(pyr.store, _encoded_key(world, t, f))]
            if missing:
                items.append((t.x, t.y, t.z))
                plan.encodes += len(missing)
        if items:
            plan.phases.append(Phase(z, "encode", items, fmts))
    return plan


def _encoded_key(world: World, t: Tile, fmt: str) -> str:
    return encoded_key(world.content_hash, t.z, t.x, t.y, fmt)


def blocks(phase: Phase, workers: int) -> list[list[tuple[int, int, int]]]:
    """Split a phase into square blocks of B×B neighbours (B = 4, 2 or 1; see the module doc)."""

    def xy(item: tuple[int, int, int]) -> tuple[int, int]:
        # (x, y) of a tile item (x, y, z); (col, row) of a window item (z, col, row)
        return (item[1], item[2]) if phase.kind == "windows" else (item[0], item[1])

    for b in (4, 2, 1):
        groups: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
        for item in phase.items:
            x, y = xy(item)
            groups[(y // b, x // b)].append(item)
        if len(groups) >= 4 * workers or b == 1:
            return [groups[k] for k in sorted(groups)]
    raise AssertionError("unreachable")  # pragma: no cover


# ---- the work done in a worker process ----------------------------------------------------


@dataclass(frozen=True)
class WorldSpec:
    """What a worker needs to open the world itself (small, picklable, hashable)."""

    name: str
    cache: str | None
    model: str | None
    config_dir: str | None
    #: text-conditioned models' prompt and the diffusers device/dtype (``--prompt`` …)
    prompt: str | None = None
    device: str = "cpu"
    dtype: str = "float32"


_worlds: dict[WorldSpec, World] = {}
_worlds_lock = threading.Lock()
#: one task at a time per process, so a task's counters are its own work (a worker process is
#: one core: local clusters set ORBIS_EVAL_WORKERS=1)
_task_lock = threading.Lock()


def load_world(spec: WorldSpec) -> World:
    """Open the world of a spec with its cache (the caller closes ``world.pyramid.store``)."""
    from .stores import open_store

    store = open_store(spec.cache)
    try:
        return World.load(
            spec.name,
            spec.config_dir,
            store=store,
            model=spec.model,
            prompt=spec.prompt,
            device=spec.device,
            dtype=spec.dtype,
        )
    except BaseException:
        getattr(store, "close", lambda: None)()
        raise


def worker_world(spec: WorldSpec) -> World:
    """Return the world of a spec, opened once per worker process (model and cache included)."""
    with _worlds_lock:
        if spec not in _worlds:
            _worlds[spec] = load_world(spec)
        return _worlds[spec]


def run_block(
    spec: WorldSpec,
    kind: str,
    items: list[tuple[int, int, int]],
    formats: tuple[str, ...] = (),
) -> dict[str, int]:
    """Make one block of tiles or windows, or encode tiles in ``formats`` (skipping what is
    cached); return the work done."""
    world = worker_world(spec)
    pyr = world.pyramid
    encoded = 0
    with _task_lock:
        before = pyr.stats.snapshot()
        for item in items if kind == "encode" else ():
            t = Tile(*item)
            for fmt in formats:
                if not has(pyr.store, _encoded_key(world, t, fmt)):
                    encoded += encoded_tile(world, t.z, t.x, t.y, fmt)[1]
        for item in items if kind != "encode" else ():
            node = Window(*item) if kind == "windows" else Tile(*item)
            key = pyr.window_key(node) if kind == "windows" else pyr.tile_key(node)
            if unpack(pyr.store.get(key)) is not None:
                continue  # in the shared cache already
            # the seed's job is the *shared* cache: what this process still holds in memory
            # (the shared copy was evicted or deleted) is written back, not trusted as cached
            if pyr.write_back(key):
                continue
            if kind == "windows":
                pyr.window(node)  # type: ignore[arg-type]
            else:
                world.tile_array(node.z, node.x, node.y)  # type: ignore[union-attr]
        after = pyr.stats.snapshot()
    done = {k: after[k] - before[k] for k in after}
    done["items"] = len(items)
    done["tiles_encoded"] = encoded
    return done


# ---- running it -----------------------------------------------------------------------------


@dataclass
class SeedReport:
    """What a seed did (summed over the workers' own counters)."""

    tiles_generated: int = 0
    windows_generated: int = 0
    model_evals: int = 0
    #: (tile, format) encodings written under the server's keys
    tiles_encoded: int = 0
    tasks: int = 0
    seconds: float = 0.0
    workers: int = 0

    @property
    def tiles_per_second(self) -> float:
        """Return tiles generated per second of wall time."""
        return self.tiles_generated / self.seconds if self.seconds > 0 else 0.0

    def summary(self, plan: SeedPlan) -> str:
        """Return the closing line of a seed."""
        lo, hi = plan.zooms
        return (
            f"seeded {plan.world} z{lo}-{hi}: {self.tiles_generated:,} tiles and "
            f"{self.windows_generated:,} windows generated ({self.model_evals:,} model "
            f"evaluations), {self.tiles_encoded:,} encoded tiles, in {self.seconds:.1f} s "
            f"({self.tiles_per_second:.2f} tiles/s) "
            f"with {self.workers} worker{'s' if self.workers != 1 else ''}"
        )


def check_cache(cache: str | None, workers: int, remote: bool) -> None:
    """Refuse a cache that the workers would not share.

    Raises:
        SeedError: ``memory`` (or no cache) with several workers or a remote cluster.
    """
    if (cache is None or cache == "memory") and (workers > 1 or remote):
        raise SeedError(
            "--cache memory is private to each worker process: give a cache directory or "
            "redis://HOST:PORT/DB that every worker shares"
        )


def _local_path(value: str | None) -> str | None:
    """Return a local folder made absolute (worker processes may not share our cwd)."""
    if value is None or value == "memory" or "://" in value or value == "builtin":
        return value
    return str(Path(value).expanduser().resolve())


def run_seed(
    plan: SeedPlan,
    spec: WorldSpec,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    on_phase: Callable[[Phase], None] | None = None,
) -> SeedReport:
    """Run a plan on a Dask cluster: the one at ``scheduler`` or a new ``LocalCluster``.

    Raises:
        SeedError: the scheduler cannot be reached, or an unshared cache.
    """
    from distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    workers = workers or os.cpu_count() or 1
    check_cache(spec.cache, workers, scheduler is not None)
    if scheduler is None:
        spec = replace(spec, cache=_local_path(spec.cache), model=_local_path(spec.model))
        if spec.config_dir is not None:
            spec = replace(spec, config_dir=_local_path(spec.config_dir))
    report = SeedReport()
    started = time.perf_counter()
    cluster = None
    try:
        if scheduler is None:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # None would still try port 8787 (and warn if taken)
                # one worker per core already uses the cores: no eval pool inside a worker
                env={"ORBIS_EVAL_WORKERS": "1"},
            )
            client = Client(cluster)
        else:
            if not scheduler.startswith(("tcp://", "tls://")):
                raise SeedError(f"--scheduler must be tcp://HOST:PORT, got {scheduler!r}")
            try:
                client = Client(scheduler, timeout="5s")
            except (OSError, TimeoutError) as exc:
                raise SeedError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
        with client:
            n = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
            report.workers = len(client.scheduler_info()["workers"])
            total = sum(len(p.items) for p in plan.phases)
            with tqdm(total=total, unit="item", disable=not progress, leave=False) as bar:
                for phase in plan.phases:
                    if on_phase is not None:
                        on_phase(phase)
                    bar.set_description(f"z{phase.z} {phase.kind}")
                    futures = [
                        client.submit(run_block, spec, phase.kind, group, phase.formats, pure=False)
                        for group in blocks(phase, max(n, 1))
                    ]
                    try:
                        for fut in as_completed(futures):
                            done = fut.result()
                            report.tiles_generated += done["tiles_generated"]
                            report.windows_generated += done["windows_generated"]
                            report.model_evals += done["model_evals"]
                            report.tiles_encoded += done["tiles_encoded"]
                            report.tasks += 1
                            bar.update(done["items"])
                    except BaseException:
                        client.cancel(futures)  # an error or ^C: what finished stays cached
                        raise
    finally:
        if cluster is not None:
            cluster.close()
    report.seconds = time.perf_counter() - started
    return report
