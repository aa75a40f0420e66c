"""Order independence: the same tiles rendered in two orders by two processes, empty caches.

    .venv/bin/python bench/order.py [--model builtin]

Each process gets its own empty diskcache folder and renders the tiles with `orbis render`
(the CLI, as a user would); the PNG bytes are compared. Writes bench/results/order.json.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, save

TILES = ["earth 7/66/44", "earth 7/67/45", "earth 6/33/22", "planet 7/62/62", "planet 6/31/31"]


def render(order: list[str], model: str, tmp: Path, tag: str) -> dict[str, str]:
    hashes = {}
    cache = tmp / f"cache-{tag}"
    for item in order:
        world, addr = item.split()
        out = tmp / tag / (item.replace(" ", "_").replace("/", "_") + ".png")
        cmd = [
            sys.executable,
            "-m",
            "generator.cli",
            "render",
            world,
            addr,
            "-o",
            str(out),
            "--cache",
            str(cache),
            "--model",
            model,
        ]
        subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
        hashes[item] = hashlib.sha256(out.read_bytes()).hexdigest()
    return hashes


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        a = render(TILES, args.model, Path(d), "forward")
        b = render(TILES[::-1], args.model, Path(d), "reverse")
    same = all(a[k] == b[k] for k in TILES)
    print("identical:", same)
    print(save("order", {"model": args.model, "tiles": TILES, "identical": same, "sha256": a}))
