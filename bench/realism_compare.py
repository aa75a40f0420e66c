"""Model v3 against v2 on the realism benchmark: the issue's targets, run beside run.

    .venv/bin/python bench/realism_compare.py --runs v2=realism,v3=realism_v3[,...]

Reads ``bench/results/<name>.json`` written by ``bench/realism.py --out <name>`` (one per model;
the first run is the reference, v2) and writes ``docs/benchmarks-realism-v3.md``: for the chains
from real photos and the free zoom, every run's two-sample accuracy and coherence distance side
by side, and whether each later run meets the issue's bounds against the reference:

* chains reduced 32× (5 steps): accuracy ≤ 0.75, accuracy − 0.5 ≤ (reference − 0.5) / 2 and
  coherence distance ≤ 0.5 × the reference's;
* free zoom z12–z17: accuracy ≤ 0.8 and accuracy − 0.5 ≤ (reference − 0.5) / 2.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from common import RESULTS

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks-realism-v3.md"


def _has(v: dict | None) -> bool:
    """Return True when a figure has an accuracy (a class with too few patches has NaN)."""
    return bool(v) and "accuracy" in v and not math.isnan(v["accuracy"])  # type: ignore[index]


def _acc(v: dict | None) -> str:
    return f"{v['accuracy']:.2f}" if _has(v) else "–"  # type: ignore[index]


def _meets(v: dict | None, ref: dict | None, bound: float, coherence: bool) -> str:
    """Return ✓/✗ for the issue's bounds of one run against the reference run."""
    if not _has(v) or not _has(ref):
        return ""
    ok = v["accuracy"] <= bound and v["accuracy"] - 0.5 <= (ref["accuracy"] - 0.5) / 2
    if coherence:
        ok = ok and v["coherence"] <= 0.5 * ref["coherence"]
    return "✓" if ok else "✗"


def chains_table(runs: dict[str, dict]) -> list[str]:
    """Rows per class and reduction: accuracy and coherence W1 of every run."""
    names = list(runs)
    ref = names[0]
    keys = sorted(
        {k for r in runs.values() for k in r.get("chains", {})},
        key=lambda k: (k.split("/")[0] == "all", k),
    )
    head = (
        ["class", "reduced"]
        + [f"accuracy {n}" for n in names]
        + [f"coherence W1 {n}" for n in names]
    )
    head += [f"{n} meets" for n in names[1:]] + ["bicubic"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in keys:
        klass, f = k.split("/")
        vs = [runs[n].get("chains", {}).get(k, {}).get("model") for n in names]
        cells = [klass, f.replace("x", "") + "×"]
        cells += [_acc(v) for v in vs]
        cells += [f"{v['coherence']:.2f}" if v and "coherence" in v else "–" for v in vs]
        for v in vs[1:]:
            cells.append(_meets(v, vs[0], 0.75, True) if f == "x32" else "")
        bic = runs[ref].get("chains", {}).get(k, {}).get("bicubic")
        cells.append(_acc(bic))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def zoom_table(runs: dict[str, dict]) -> list[str]:
    """Rows per class and zoom of the free zoom: accuracy of every run."""
    names = list(runs)
    keys = sorted({k for r in runs.values() for k in r.get("free_zoom", {}).get("figures", {})})
    head = ["class", "zoom", "m/px"] + [f"accuracy {n}" for n in names]
    head += [f"{n} meets" for n in names[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in keys:
        figs = [runs[n].get("free_zoom", {}).get("figures", {}).get(k, {}) for n in names]
        vs = [f.get("model") for f in figs]
        if not any(_has(v) for v in vs):
            continue
        klass, z = k.split("/")
        mpp = next((f["mpp"] for f in figs if "mpp" in f), 0.0)
        cells = [klass, z, f"{mpp:.2f}"] + [_acc(v) for v in vs]
        cells += [_meets(v, vs[0], 0.8, False) for v in vs[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write(runs: dict[str, dict], sources: dict[str, str], study: str) -> Path:
    """Write the comparison document; return its path."""
    out = ["## Model v3 against v2: realism (issue 14)", ""]
    out.append(
        "Written by `.venv/bin/python bench/realism_compare.py --runs "
        + ",".join(f"{n}={s}" for n, s in sources.items())
        + "` from the JSON of `bench/realism.py` runs (one per model; methods: "
        "[benchmarks-realism.md](benchmarks-realism.md)). Runs:"
    )
    out.append("")
    for n, r in runs.items():
        out.append(
            f"- **{n}**: `{r.get('command', '?')}` ({r.get('measured', '?')}, {r.get('load', '')})"
        )
    out += ["", "### Chains from real photos (the held-out FlightGear textures)", ""]
    out.append(
        "A conditioned model in a chain is told what `orbis upscale` tells it: features measured "
        "on each step's own input (colour water and vegetation, edges, straight lines), never "
        "the held-out photo's labels."
    )
    out += [""] + chains_table(runs)
    if any("free_zoom" in r for r in runs.values()):
        out += ["", "### Free zoom in `earth` and `planet`", ""] + zoom_table(runs)
    if study:
        out += ["", study]
    DOC.write_text("\n".join(out) + "\n")
    return DOC


def main() -> None:
    """Read the runs and write the document."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="v2=realism,v3=realism_v3")
    ap.add_argument("--study", type=Path, default=None, help="a markdown file to append")
    args = ap.parse_args()
    sources = dict(kv.split("=", 1) for kv in args.runs.split(","))
    runs = {n: json.loads((RESULTS / f"{s}.json").read_text()) for n, s in sources.items()}
    study = args.study.read_text() if args.study else ""
    print(write(runs, sources, study))


if __name__ == "__main__":
    main()
