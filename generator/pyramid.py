"""The lazy tile pyramid: plan → sample windows → blend → parent-correct → cache.

``Pyramid.tile(t)`` returns a tile's pixels. Below the base zoom a tile is made from the windows
that cover it (``planner``), each window sampled by the model from its ×2-upsampled parent
neighbourhood, its ground resolution and its crop of the global noise field; the blend of those
windows is then made consistent with the parent (``blend.parent_correct``). A cold request plans
its whole dependency cone first and evaluates it ancestors first, level by level, in sorted order.
Every window and tile is cached under a key that starts with the world's content hash; identical
work requested concurrently is computed once (``SingleFlight``).

Nothing here depends on request order: a window is a pure function of its parents (themselves
pure), of the noise field and of the model, and is always evaluated alone (batch of one, so batch
composition cannot change its floats) and stored as float16 before anyone uses it.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from . import tiles
from .base import BaseLevel
from .blend import blend, parent_correct
from .conditioning import GeographyConditioner
from .errors import Cancelled, InvalidTile
from .follow import PARENT_MARGIN, WaterFollower, pad_parent
from .models.sr_model import SuperResolutionModel
from .noise import NoiseField
from .parallel import run_all
from .planner import Geometry, Rect, Window, plan
from .resample import box_down2_np, up2
from .samplers import sample_window
from .singleflight import SingleFlight
from .stages import LatentGeometry, Stage
from .store import MemoryStore, Store, pack, unpack
from .tiles import Tile


@dataclass
class Stats:
    """Counters of work done (model evaluations are the cost unit of ARCHITECTURE §6)."""

    model_evals: int = 0
    windows_generated: int = 0
    tiles_generated: int = 0
    tile_hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **kw: int) -> None:
        """Increment counters atomically."""
        with self._lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def snapshot(self) -> dict[str, int]:
        """Return the counters as a dict."""
        with self._lock:
            return {
                "model_evals": self.model_evals,
                "windows_generated": self.windows_generated,
                "tiles_generated": self.tiles_generated,
                "tile_hits": self.tile_hits,
            }


_model_locks: dict[int, threading.Lock] = {}
_model_locks_guard = threading.Lock()


def _model_lock(model: object) -> threading.Lock:
    # One evaluation at a time per diffusers checkpoint (a GPU runs one batch at a time, and
    # its text-embedding memo is shared). The built-in model takes none: its windows of a level
    # run side by side, one intra-op thread each (generator.parallel).
    with _model_locks_guard:
        return _model_locks.setdefault(id(model), threading.Lock())


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("no one waits for this tile any more")


class Pyramid:
    """Tiles of one world; thread-safe."""

    def __init__(
        self,
        *,
        key_prefix: str,
        base: BaseLevel,
        model: SuperResolutionModel,
        seed: int,
        geometry: Geometry,
        store: Store | None = None,
        steps: int | None = None,
        stages: Sequence[Stage] = (),
        batch: int = 1,
        follower: WaterFollower | None = None,
        conditioner: GeographyConditioner | None = None,
    ) -> None:
        self.prefix = key_prefix
        #: makes the features a conditioned model (v3) is told about each window's ground
        self.conditioner = conditioner
        #: edits the imagery of every generated level toward the geography's water layer
        self.follower = follower
        #: ``f(tile) -> pixels | None``: another pyramid known to hold this tile's exact bytes
        #: (a raster world far from its data: the fallback's); None → generate it here
        self.delegate: Callable[[Tile], np.ndarray | None] | None = None
        self.base = base
        self.base_zoom = base.zoom
        self.model = model
        self.noise = NoiseField(seed, geometry.tile)
        self.geometry = geometry
        self.store: Store = store if store is not None else MemoryStore()
        self._hot = MemoryStore(256 * 2**20)  # decoded-work front cache
        self.steps = steps or model.info.num_inference_steps
        self.stats = Stats()
        self._flight = SingleFlight()
        #: zoom ranges made by other models than ``model`` (``[[model.ranges]]``)
        self.stages = tuple(stages)
        #: windows of one level sampled together by latent models (1 on CPU: see docs/models.md)
        self.batch = max(1, int(batch))
        self._latent = {
            i: LatentGeometry(st.model, geometry, seed)  # type: ignore[arg-type]
            for i, st in enumerate(self.stages)
            if st.latent
        }

    # ---- keys and storage -------------------------------------------------------------
    def tile_key(self, t: Tile) -> str:
        """Return the cache key of a tile's pixels."""
        return f"{self.prefix}/t/{t.z}/{t.x}/{t.y}"

    def window_key(self, w: Window) -> str:
        """Return the cache key of a raw window."""
        return f"{self.prefix}/w/{w.z}/{w.col}/{w.row}"

    def _get(self, key: str) -> bytes | None:
        v = unpack(self._hot.get(key))
        if v is not None:
            return v
        raw = self.store.get(key)
        v = unpack(raw)
        if v is None:
            if raw is not None:  # corrupt or truncated: drop it, it will be regenerated
                self.store.delete(key)
            return None
        self._hot.set(key, pack(v))
        return v

    def _put(self, key: str, payload: bytes) -> None:
        framed = pack(payload)
        self._hot.set(key, framed)
        self.store.set(key, framed)

    def _load_tile(self, t: Tile) -> np.ndarray | None:
        v = self._get(self.tile_key(t))
        if v is None:
            return None
        s = self.geometry.tile
        return np.frombuffer(zlib.decompress(v), dtype=np.uint8).reshape(s, s, 3)

    def _save_tile(self, t: Tile, arr: np.ndarray) -> None:
        self._put(self.tile_key(t), zlib.compress(np.ascontiguousarray(arr).tobytes(), 1))

    def _load_window(self, w: Window) -> np.ndarray | None:
        v = self._get(self.window_key(w))
        if v is None:
            return None
        st = self.stage_for(w.z)
        if st is not None and st.latent:
            geo = self._latent_geometry(st)
            n = geo.latent.window
            return np.frombuffer(v, dtype=np.float16).reshape(geo.channels, n, n)
        n = self.geometry.window
        return np.frombuffer(v, dtype=np.float16).reshape(3, n, n)

    # ---- which model makes a level ------------------------------------------------------
    def stage_for(self, z: int) -> Stage | None:
        """Return the zoom range (model + settings) that makes level z; None → ``model``."""
        for st in self.stages:
            if st.zooms[0] <= z <= st.zooms[1]:
                return st
        return None

    def _latent_geometry(self, st: Stage) -> LatentGeometry:
        return self._latent[self.stages.index(st)]

    def window(self, w: Window) -> np.ndarray:
        """Return a window's raw samples, sampling it once (single flight) when not cached.

        For callers that schedule windows themselves (``orbis seed`` partitions a level's
        windows among workers so none is sampled twice).
        """
        return self._window(w)

    def write_back(self, key: str) -> bool:
        """Copy a value this process still holds in memory to the store; return True if it did.

        A shared store (Redis, a diskcache folder) may evict or lose what this process cached;
        seeding must fill the *shared* cache, so it writes such values back, not trusts them.
        """
        held = self._hot.get(key)
        if unpack(held) is None:
            return False
        self.store.set(key, held)  # type: ignore[arg-type]
        return True

    def is_cached(self, node: Tile | Window) -> bool:
        """Return True when a tile or window is in a cache (used by the planner)."""
        key = self.window_key(node) if isinstance(node, Window) else self.tile_key(node)
        return self._get(key) is not None

    # ---- public -----------------------------------------------------------------------
    def tile(self, t: Tile, cancel: threading.Event | None = None) -> np.ndarray:
        """Return a tile as uint8 (T, T, 3); generates it and its cone if needed.

        ``cancel``, once set, stops the generation before its next window or tile.

        Raises:
            InvalidTile: x or y outside the grid (callers wrap x with ``tiles.validate``).
            Cancelled: ``cancel`` was set before the tile was done.
        """
        n = 1 << t.z
        if t.z < 0 or not (0 <= t.x < n and 0 <= t.y < n):
            raise InvalidTile(f"tile {t.z}/{t.x}/{t.y} is outside the grid of zoom {t.z}")
        arr = self._load_tile(t)
        if arr is not None:
            self.stats.add(tile_hits=1)
            return arr
        if t.z > self.base_zoom:
            if self.delegate is not None:
                arr = self.delegate(t)
                if arr is not None:
                    return arr
            self._generate(t, cancel)
            arr = self._load_tile(t)
            if arr is None:  # evicted between store and load (tiny caches): compute directly
                arr = self._flight.do(self.tile_key(t), lambda: self._make_tile(t))
            return arr
        return self._flight.do(self.tile_key(t), lambda: self._make_upper(t))

    def children_mosaic(self, t: Tile, cancel: threading.Event | None = None) -> np.ndarray:
        """Return the 2×2 mosaic of a tile's children (uint8, 2T×2T×3): the same ground at
        twice the detail (the levels above the base, and ``@2x`` tiles)."""
        s = self.geometry.tile
        mosaic = np.empty((2 * s, 2 * s, 3), dtype=np.uint8)
        kids = list(tiles.children(t).items())
        # the four children are independent: side by side on the cores (generator.parallel)
        made = run_all(lambda item: self.tile(item[1], cancel), kids, cancel)
        for ((dx, dy), _), arr in zip(kids, made, strict=True):
            mosaic[dy * s : (dy + 1) * s, dx * s : (dx + 1) * s] = arr
        return mosaic

    def plan_cost(self, t: Tile) -> tuple[int, int]:
        """Return (tiles, windows) a request would generate now, from the cache's state."""
        if t.z <= self.base_zoom:
            return (0, 0)
        level_tiles, level_wins = plan(t, self.base_zoom, self.geometry, self.is_cached)
        return sum(map(len, level_tiles)), sum(map(len, level_wins))

    # ---- the cascade ------------------------------------------------------------------
    def _generate(self, target: Tile, cancel: threading.Event | None = None) -> None:
        """Run the plan, ancestors first. ``cancel`` is checked between units of work, outside
        ``SingleFlight`` calls, so a cancelled request never fails another that shares them."""
        level_tiles, level_wins = plan(target, self.base_zoom, self.geometry, self.is_cached)
        for ts, ws in zip(level_tiles, level_wins, strict=True):
            st = self.stage_for(ws[0].z) if ws else None
            if st is not None and st.latent and self.batch > 1:
                # batches of a fixed size (padded), so no window's floats depend on how many
                # others happened to be pending (see docs/models.md)
                todo = [w for w in ws if not self.is_cached(w)]
                for i in range(0, len(todo), self.batch):
                    _check(cancel)
                    self._make_latent_windows(todo[i : i + self.batch], st)
            # independent windows, then independent tiles, side by side on the cores (the
            # bytes cannot depend on which thread or in which order: each is pure)
            run_all(self._window, ws, cancel)
            run_all(
                lambda t: self._flight.do(self.tile_key(t), lambda: self._make_tile(t)), ts, cancel
            )

    def _make_upper(self, t: Tile) -> np.ndarray:
        """Base tiles come from the base; tiles above it are 2×2 box means of their children,
        or the base's own ``tile_at(z, x, y)`` when it has one."""
        arr = self._load_tile(t)
        if arr is not None:
            return arr
        if t.z == self.base_zoom:
            arr = self.base.tile(t.x, t.y)
        elif hasattr(self.base, "tile_at"):
            # a base that answers every zoom above its own (users' imagery: overviews), where
            # box-meaning children would cost 4^(base zoom - z) tiles
            arr = self.base.tile_at(t.z, t.x, t.y)
        else:
            mosaic = self.children_mosaic(t)
            arr = np.clip(np.rint(box_down2_np(mosaic)), 0, 255).astype(np.uint8)
        self._save_tile(t, arr)
        self.stats.add(tiles_generated=1)
        return arr

    def read_region(self, z: int, rect: Rect, cancel: threading.Event | None = None) -> np.ndarray:
        """Return (3, h, w) float32 pixels in [-1, 1] of zoom z, x wrapped and y clamped."""
        s = self.geometry.tile
        grid = (1 << z) * s
        ys = np.clip(np.arange(rect.y0, rect.y0 + rect.h), 0, grid - 1)
        xs = np.arange(rect.x0, rect.x0 + rect.w) % grid
        out = np.empty((rect.h, rect.w, 3), dtype=np.uint8)
        for ty in np.unique(ys // s):
            ri = np.nonzero(ys // s == ty)[0]
            for tx in np.unique(xs // s):
                ci = np.nonzero(xs // s == tx)[0]
                arr = self.tile(Tile(int(tx), int(ty), z), cancel)
                out[np.ix_(ri, ci)] = arr[np.ix_(ys[ri] % s, xs[ci] % s)]
        return out.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0

    def window_mpp(self, w: Window, geometry: Geometry | None = None) -> float:
        """Return the ground resolution told to the model: at the window's centre latitude."""
        g = geometry or self.geometry
        lat = tiles.latitude_of_row(w.z, w.row * g.tile + g.window / 2)
        return tiles.equator_resolution(w.z) * math.cos(math.radians(lat))

    def _window(self, w: Window) -> np.ndarray:
        return self._flight.do(self.window_key(w), lambda: self._make_window(w))

    def _make_window(self, w: Window) -> np.ndarray:
        arr = self._load_window(w)
        if arr is not None:
            return arr
        st = self.stage_for(w.z)
        if st is not None and st.latent:
            return self._make_latent_windows([w], st)[0]
        model, steps = (st.model, st.steps) if st is not None else (self.model, self.steps)
        g = self.geometry
        parent_np = self.read_region(w.z - 1, g.parent_rect(w))
        rect = g.window_rect(w)
        cond = up2(torch.from_numpy(parent_np)[None])
        if self.follower is not None:
            edited = self.follower.edit(w.z, rect, cond[0].numpy(), pad_parent(parent_np))
            cond = torch.from_numpy(edited)[None]
        noise = torch.from_numpy(self.noise.crop(w.z, rect.y0, rect.x0, rect.h, rect.w))[None]
        feats = None
        mpp = self.window_mpp(w)
        if self.conditioner is not None and getattr(model, "conditioned", False):
            feats = self.conditioner.features(w.z, rect, cond[0].numpy(), mpp)
            feats = torch.from_numpy(feats)[None]
        out = sample_window(model, cond, noise, mpp, steps, feats)  # type: ignore[arg-type]
        arr = out[0].numpy().astype(np.float16)
        self._put(self.window_key(w), arr.tobytes())
        self.stats.add(model_evals=steps, windows_generated=1)
        return arr

    def _make_latent_windows(self, ws: list[Window], st: Stage) -> list[np.ndarray]:
        """Sample latent windows together (one batch, padded to ``batch`` when batching).

        Each window gets its parent pixels, its latent noise crop and, for Text2Earth, the
        level label of its centre's ground resolution; results are cached as float16 latents.
        """
        from .models.diffusers_backend import google_level
        from .samplers.latent import model_evals, sample_latent_windows

        geo = self._latent_geometry(st)
        model = st.model
        parents = [self.read_region(w.z - 1, geo.pixel.parent_rect(w)) for w in ws]
        noise = [geo.window_noise(w) for w in ws]
        fixed = st.sampling.level  # type: ignore[union-attr]
        levels = [
            fixed if fixed is not None else google_level(self.window_mpp(w, geo.pixel)) for w in ws
        ]
        lowres = [geo.window_lowres_noise(w) for w in ws] if model.layout == "upscaler" else None
        pad = self.batch - len(ws) if self.batch > 1 else 0
        stack = lambda a: torch.from_numpy(np.stack(a + a[-1:] * pad))  # noqa: E731
        with _model_lock(model):
            lat = sample_latent_windows(
                model,  # type: ignore[arg-type]
                st.sampling,  # type: ignore[arg-type]
                parent=stack(parents),
                noise=stack(noise),
                levels=levels + levels[-1:] * pad,
                lowres_noise=stack(lowres) if lowres is not None else None,
            )
        out = []
        for i, w in enumerate(ws):
            arr = lat[i].numpy().astype(np.float16)
            self._put(self.window_key(w), arr.tobytes())
            out.append(arr)
        evals = model_evals(model, st.sampling)  # type: ignore[arg-type]
        self.stats.add(model_evals=evals * len(ws), windows_generated=len(ws))
        return out

    def _make_tile(self, t: Tile) -> np.ndarray:
        arr = self._load_tile(t)
        if arr is not None:
            return arr
        g = self.geometry
        s = g.tile
        windows = {w: self._window(w) for w in g.windows_for_tile(t)}
        st = self.stage_for(t.z)
        if st is not None and st.latent:
            region = self._decode_tile(t, st, windows)
        else:
            grid = (1 << t.z) * s
            y0, y1 = max(t.y * s - 2, 0), min((t.y + 1) * s + 2, grid)
            region = blend(g, t.z, Rect(y0, t.x * s - 2, y1 - y0, s + 4), windows)
            pad_top, pad_bottom = y0 - (t.y * s - 2), (t.y + 1) * s + 2 - y1
            region = np.pad(region, ((0, 0), (pad_top, pad_bottom), (0, 0)), mode="edge")
        if self.follower is None:
            parent = self.read_region(t.z - 1, g.correction_rect(t))
            out = parent_correct(region, parent)
        else:
            # one read of the parent around the tile: the water edit's local colours need a
            # PARENT_MARGIN of it, the correction the 1-px border inside that
            m, half = PARENT_MARGIN, s // 2
            around = self.read_region(
                t.z - 1, Rect(t.y * half - m, t.x * half - m, half + 2 * m, half + 2 * m)
            )
            parent = np.ascontiguousarray(around[:, m - 1 : m + half + 1, m - 1 : m + half + 1])
            out = parent_correct(region, parent)
            tile_rect = Rect(t.y * s, t.x * s, s, s)
            context = g.window_rect(Window(t.z, t.x, t.y))  # its layers are cached already
            out = self.follower.edit(t.z, tile_rect, out, around, context, final=True)
        arr = np.clip(np.rint((out + 1.0) * 127.5), 0, 255).astype(np.uint8).transpose(1, 2, 0)
        arr = np.ascontiguousarray(arr)
        self._save_tile(t, arr)
        self.stats.add(tiles_generated=1)
        return arr

    def _decode_tile(self, t: Tile, st: Stage, windows: dict[Window, np.ndarray]) -> np.ndarray:
        """Return (3, T+4, T+4) pixels of a latent tile and its 2-px border: its windows blended
        in latent space over the tile and a context border, decoded, cropped."""
        from .samplers.latent import decode_latents

        geo = self._latent_geometry(st)
        rect, pad_top, pad_bottom = geo.decode_rect(t.z, t.x, t.y)
        lat = blend(geo.latent, t.z, rect, windows)
        lat = np.pad(lat, ((0, 0), (pad_top, pad_bottom), (0, 0)), mode="edge")
        with _model_lock(st.model):
            px = decode_latents(st.model, torch.from_numpy(lat)[None])[0].numpy()  # type: ignore[arg-type]
        c, s = geo.context * geo.factor, self.geometry.tile
        return np.ascontiguousarray(px[:, c - 2 : c + s + 2, c - 2 : c + s + 2])
