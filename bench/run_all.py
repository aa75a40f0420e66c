"""Run every benchmark in turn, then write docs/benchmarks.md (`make bench`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["seams.py", "order.py", "cost.py", "quality.py", "gallery.py", "report.py"]

if __name__ == "__main__":
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        subprocess.run(
            [sys.executable, script, *sys.argv[1:]]
            if script != "report.py"
            else [sys.executable, script],
            cwd=HERE,
            check=True,
        )
