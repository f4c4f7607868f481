"""Panel build times (issue: widget panels).

    python benchmarks/bench_panels.py [--quick]

Targets: building the runs panel for 1,000 runs <= 1 s and for 10,000 runs <= 2 s (10 params and
10 metrics each); the compare view for 10 runs with 5 stepped metrics of 1,000 steps <= 1 s.
There is no peer to compare with: MLflow and W&B have no in-notebook comparison panel (their
notebook views are iframes onto a running server). Times are medians of a few builds in one
process, after one warm-up build; the store is written through the public API first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import cpu_model, machine_load

import nbmlops as nbm
from nbmlops.widgets import CompareView, RunsPanel


def populate(store: Path, runs: int) -> None:
    for i in range(runs):
        with nbm.start_run(f"r{i}", experiment="bench", store=store) as run:
            run.log_params({f"p{k}": i * 0.001 + k for k in range(10)})
            run.log_metrics({f"m{k}": (i % 97) / 97 + k for k in range(10)})


def stepped(store: Path, runs: int, metrics: int, steps: int) -> list[str]:
    ids = []
    for i in range(runs):
        with nbm.start_run(f"s{i}", experiment="steps", store=store) as run:
            run.log_params({"lr": 0.01 * (i + 1), "depth": i % 4})
            for step in range(steps):
                for k in range(metrics):
                    run.log_metric(f"loss{k}", 1 / (step + 1 + i + k), step=step)
        ids.append(run.run_id)
    return ids


def timed(build: Callable[[], object], repeat: int) -> float:
    build()  # warm-up: imports, first figure
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        build()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} cores, {machine_load()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Smaller stores, fewer repeats.")
    args = parser.parse_args()
    sizes = (200, 1_000) if args.quick else (1_000, 10_000)
    steps = 200 if args.quick else 1_000
    repeat = 2 if args.quick else 3
    print(f"date:     {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
    print(f"machine:  {machine()}")
    print(f"python:   {sys.version.split()[0]}   nbmlops {nbm.__version__}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, target in zip(sizes, (1.0, 2.0), strict=True):
            store = Path(tmp) / f"runs{n}" / ".nbmlops"
            start = time.perf_counter()
            populate(store, n)
            print(f"populated {n} runs in {time.perf_counter() - start:.1f} s")
            seconds = timed(lambda s=store: RunsPanel(store=s), repeat)
            rows.append((f"runs panel, {n:,} runs x 10 params x 10 metrics", seconds, target))
        store = Path(tmp) / "steps" / ".nbmlops"
        ids = stepped(store, 10, 5, steps)
        seconds = timed(lambda: CompareView(nbm.compare_runs(*ids, store=store)), repeat)
        rows.append((f"compare view, 10 runs x 5 metrics x {steps:,} steps", seconds, 1.0))
    print()
    print(f"{'case':<52} {'time':>9} {'target':>9}  result")
    print("-" * 82)
    for name, seconds, target in rows:
        result = "MET" if seconds <= target else "MISSED"
        print(f"{name:<52} {seconds:>8.3f}s {target:>8.1f}s  {result}")


if __name__ == "__main__":
    main()
