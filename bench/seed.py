"""Seeding a city with 1, 2 and 4 local Dask workers (issue 7).

    .venv/bin/python bench/seed.py [--bbox 2.25,48.81,2.42,48.90] [--zooms 0-12] [--workers 1,2,4]

For each model (the shipped ``builtin`` and the tests' tiny random model) and each worker count,
``orbis seed``'s code (``plan_seed`` + ``run_seed``) seeds the bbox into a fresh diskcache folder
on a new ``LocalCluster`` of single-threaded worker processes. Recorded per run: wall time with
and without the cluster's start (workers importing torch), tiles and windows generated, windows/s,
and the scaling efficiency T1 / (N · TN) on the work time. Then the same bbox is seeded again
into the last cache: the plan must be empty and nothing generated.
Writes bench/results/seed.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from common import save

from generator.models.sr_model import random_model
from generator.region import parse_bbox, parse_zooms
from generator.seed import WorldSpec, load_world, plan_seed, run_seed


def one_run(spec: WorldSpec, bbox, zooms, workers: int) -> dict:
    world = load_world(spec)
    try:
        t0 = time.perf_counter()
        plan = plan_seed(world, bbox, zooms)
        plan_s = time.perf_counter() - t0
    finally:
        world.pyramid.store.close()
    marks: list[float] = []
    report = run_seed(
        plan, spec, workers=workers, progress=False, on_phase=lambda _: marks.append(time.time())
    )
    end = time.time()
    load_1min = os.getloadavg()[0]  # other work on the machine skews the scaling
    work = end - marks[0] if marks else 0.0
    upper = sum(len(p.items) for p in plan.phases if p.kind == "tiles" and p.z <= 4)
    return {
        "workers": workers,
        "plan_seconds": plan_s,
        "seconds_total": report.seconds,
        "seconds_work": work,
        "cluster_start_seconds": report.seconds - work,
        "tiles_in_bbox": sum(plan.requested.values()),
        "tiles_generated": report.tiles_generated,
        "tiles_generated_below_base": report.tiles_generated - upper,
        "windows_generated": report.windows_generated,
        "windows_planned": plan.windows,
        "model_evals": report.model_evals,
        "tasks": report.tasks,
        "tiles_per_s": report.tiles_generated / work if work else 0.0,
        "windows_per_s": report.windows_generated / work if work else 0.0,
        "load_average_1min_at_end": load_1min,
    }


def bench_model(name: str, model: str, bbox, zooms, counts: list[int], tmp: Path) -> dict:
    runs = {}
    last = None
    for n in counts:
        cache = tmp / f"{name}-{n}"
        spec = WorldSpec("earth", str(cache), model, None)
        r = one_run(spec, bbox, zooms, n)
        runs[str(n)] = r
        last = spec
        print(
            f"{name}: {n} worker(s): {r['seconds_work']:.1f} s work "
            f"(+{r['cluster_start_seconds']:.1f} s start), {r['windows_generated']} windows, "
            f"{r['tiles_generated']} tiles",
            flush=True,
        )
    t1 = runs[str(counts[0])]["seconds_work"] * counts[0]
    for n in counts:
        r = runs[str(n)]
        r["speedup"] = t1 / r["seconds_work"]
        r["efficiency"] = r["speedup"] / n
    assert last is not None
    second = one_run(last, bbox, zooms, counts[-1])
    print(f"{name}: second run: {second['windows_generated']} windows generated", flush=True)
    return {"runs": runs, "second_run": second}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bbox", default="2.25,48.81,2.42,48.90")  # Paris
    ap.add_argument("--zooms", default="0-12")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--tiny-only", action="store_true")
    args = ap.parse_args()
    bbox, zooms = parse_bbox(args.bbox), parse_zooms(args.zooms)
    counts = [int(c) for c in args.workers.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="orbis-seed-bench-"))
    try:
        tiny_dir = tmp / "tiny-model"
        random_model(block_out_channels=(8, 16), seed=0, steps=2).save_pretrained(tiny_dir)
        results = {}
        if not args.tiny_only:
            results["builtin"] = bench_model("builtin", "builtin", bbox, zooms, counts, tmp)
        results["tiny"] = bench_model("tiny", str(tiny_dir), bbox, zooms, counts, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    save(
        "seed",
        {
            "command": "bench/seed.py "
            + " ".join(f"--{k} {v}" for k, v in (("bbox", args.bbox), ("zooms", args.zooms))),
            "bbox": args.bbox,
            "zooms": args.zooms,
            "cpu_cores": os.cpu_count(),
            "worker_threads": 1,
            "note": (
                "Each Dask worker is a single-threaded process (Dask sets OMP_NUM_THREADS=1), so "
                f"{os.cpu_count()} cores cannot run more than {os.cpu_count()} workers at once: "
                "4 workers on 2 cores cannot scale past 2; other work on the machine slows every "
                "run (compare the runs' load averages). Work time starts when the cluster is "
                "up (worker start-up, i.e. importing torch, is reported apart). z0 needs every "
                "base (z4) tile: the Blue Marble level is made in full (256 tiles, no model); "
                "tiles below the base cost windows."
            ),
            **results,
        },
    )


if __name__ == "__main__":
    main()
