"""Speed of the determinism rule: cold deep link and panning at 1 and 2 cores, before and after.

    .venv/bin/python bench/threads.py --before DIR [--threads 1,2] [--zoom 14]

``--before DIR`` is a copy of the code before the rule (``git archive <commit> | tar -x -C DIR``):
there torch used ``OMP_NUM_THREADS`` intra-op threads for one window at a time (a per-model
lock); after it, every evaluation has one intra-op thread and a level's windows run side by
side on the cores. Each (code, cores) pair runs in a fresh process pinned with ``taskset`` to
that many cores, with ``OMP_NUM_THREADS`` = cores (what "before" used), the built-in model and
the earth world without geography (the same work in both trees; the geography is not what is
measured). Per run:

- **cold**: one tile at ``--zoom`` over the Alps with an empty cache (its whole cone from the
  base), base tile warmed;
- **pan, one at a time**: an 8×8 block next to it, parents cached first, tiles asked one after
  the other (a script, or a client with one connection);
- **pan, 6 in flight**: another 8×8 block, parents cached, 6 tiles asked at once (a browser's
  connections to one host), as a map client pans.

It also hashes the tiles each run made: the "after" hashes must agree across core counts.
Writes bench/results/threads.json. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EARTH = (ROOT / "config" / "worlds" / "earth.toml").read_text() + '\n[geography]\nkind = "none"\n'


def child(zoom: int, config_dir: str) -> dict:
    """Run the measurements in this process (the code on ``sys.path`` first is measured)."""
    import mercantile
    import torch

    from generator import tiles
    from generator.world import World, load_model

    w = World.load("earth", config_dir, model=load_model("builtin"))
    digest = hashlib.sha256()
    t = mercantile.tile(8.0, 46.5, zoom)
    b = mercantile.tile(8.0, 46.5, w.config.base.zoom)
    w.pyramid.tile(tiles.Tile(b.x, b.y, b.z))
    s0 = w.pyramid.stats.snapshot()
    t0 = time.perf_counter()
    digest.update(w.tile_array(zoom, t.x, t.y).tobytes())
    cold = time.perf_counter() - t0
    s1 = w.pyramid.stats.snapshot()
    g = w.geometry

    def block(bx: int, by: int) -> list:
        ts = [tiles.Tile(bx + i, by + j, zoom) for j in range(8) for i in range(8)]
        wins = {win for u in ts for win in g.windows_for_tile(u)}
        parents = {p for win in wins for p in g.parents_for_window(win)}
        parents |= {p for u in ts for p in g.parents_for_tile(u)}
        for p in sorted(parents, key=lambda p: (p.y, p.x)):
            w.pyramid.tile(p)
        return ts

    seq = block(t.x + 2, t.y - 4)
    t0 = time.perf_counter()
    for u in seq:
        digest.update(w.tile_array(u.z, u.x, u.y).tobytes())
    pan_seq = (time.perf_counter() - t0) / len(seq)
    par = block(t.x + 12, t.y - 4)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(6) as pool:
        arrays = list(pool.map(lambda u: w.tile_array(u.z, u.x, u.y), par))
    pan_par = (time.perf_counter() - t0) / len(par)
    for a in arrays:
        digest.update(a.tobytes())
    return {
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "torch_threads_now": torch.get_num_threads(),
        "cold_seconds": cold,
        "cold_windows": s1["windows_generated"] - s0["windows_generated"],
        "pan_one_at_a_time_s_per_tile": pan_seq,
        "pan_6_in_flight_s_per_tile": pan_par,
        "tiles_sha256": digest.hexdigest()[:16],
        "content_hash": w.content_hash,
    }


def run(tree: Path, cores: int, zoom: int, config_dir: str) -> dict:
    """Measure one (code, cores) pair in a fresh process pinned to ``cores`` cores."""
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS=str(cores))
    env.pop("ORBIS_EVAL_WORKERS", None)
    cpus = ",".join(str(i) for i in range(cores))
    cmd = ["taskset", "-c", cpus, sys.executable, str(Path(__file__).resolve()), "--child"]
    cmd += ["--zoom", str(zoom), "--config", config_dir]
    out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", type=Path, help="a copy of the code before the rule")
    ap.add_argument("--threads", default="1,2", help="core counts to measure, e.g. 1,2")
    ap.add_argument("--zoom", type=int, default=14)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--config", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.path.insert(0, os.environ["PYTHONPATH"])
        print(json.dumps(child(args.zoom, args.config)))
        return
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "worlds").mkdir()
        (Path(d) / "worlds" / "earth.toml").write_text(EARTH)
        results: dict[str, dict[str, dict]] = {}
        trees = {"after": ROOT} | ({"before": args.before.resolve()} if args.before else {})
        for cores in (int(c) for c in args.threads.split(",")):
            for name, tree in trees.items():
                r = run(tree, cores, args.zoom, d)
                results.setdefault(name, {})[str(cores)] = r
                print(name, cores, r, flush=True)
    sys.path.insert(0, str(ROOT / "bench"))
    from common import save

    print(save("threads", {"zoom": args.zoom, "model": "builtin", "runs": results}))


if __name__ == "__main__":
    main()
