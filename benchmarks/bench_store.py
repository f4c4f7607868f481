"""Tracking-store benchmark: nbmlops against MLflow 3 on a SQLite backend, side by side.

Run it with ``make bench`` (installs the ``bench`` extra, i.e. MLflow), or directly::

    .venv/bin/python benchmarks/bench_store.py [--quick]

Cases (targets from the performance issue; the ratio is MLflow time / nbmlops time):

1. start and end a run that logs 10 params and 10 metrics   nbmlops >= 20x faster
2. 1,000 ``log_metric`` calls in one run, plus the run's end  nbmlops >= 100x faster
3. ``nbm.runs()`` over 10,000 runs (10 params, 10 metrics)    <= 150 ms and >= 50x faster
   than ``mlflow.search_runs()`` over the same runs
4. ``import nbmlops`` in a fresh interpreter                  <= 100 ms

Each tool runs in its own child process (so neither pays for the other's imports or heap) with
a fresh temporary directory as working directory and store. ``--quick`` shrinks every size for a
smoke run; the targets are meant for the default (full) sizes.
"""

from __future__ import annotations

import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from _common import (
    child_env,
    fmt_time,
    machine_lines,
    machine_load,
    mlflow_store,
    quiet_mlflow,
    run_side,
    sizes_or_child,
    spread,
    table_lines,
    timed,
)

SCRIPT = Path(__file__).resolve()
EXPERIMENT = "bench"

Timings = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    warmup_runs: int = 20  # untimed runs before case 1 (MLflow: a quarter of it)
    runs_nbmlops: int = 200  # case 1, per style
    runs_mlflow: int = 50
    metric_calls: int = 1_000  # case 2
    metric_repeats_nbmlops: int = 20
    metric_calls_mlflow: int = 1_000  # timed MLflow calls; scaled up to metric_calls
    search_runs: int = 10_000  # case 3
    search_repeats: int = 5  # warm calls after the cold one
    import_repeats: int = 7  # case 4

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            warmup_runs=8,
            runs_nbmlops=50,
            runs_mlflow=10,
            metric_repeats_nbmlops=5,
            metric_calls_mlflow=200,
            search_runs=1_000,
            search_repeats=3,
            import_repeats=3,
        )


# -- workload ---------------------------------------------------------------------------------


def params_for(i: int) -> dict[str, object]:
    """10 params of mixed types (floats, ints, strings, a bool), varying from run to run."""
    return {
        "lr": 10.0 ** -(1 + i % 4),
        "momentum": 0.9,
        "dropout": round(0.1 * (i % 5), 2),
        "weight_decay": 1e-4,
        "epochs": 10 + i % 20,
        "batch_size": 2 ** (4 + i % 4),
        "seed": i,
        "optimizer": ("adam", "sgd", "rmsprop")[i % 3],
        "model": f"resnet{18 + 16 * (i % 3)}",
        "augment": i % 2 == 0,
    }


METRIC_NAMES = (
    "accuracy",
    "auc",
    "f1",
    "precision",
    "recall",
    "loss",
    "val_accuracy",
    "val_loss",
    "rmse",
    "train_time_s",
)


def metrics_for(i: int) -> dict[str, float]:
    rng = random.Random(i)
    return {name: rng.random() for name in METRIC_NAMES}


# -- nbmlops side (child process) -------------------------------------------------------------


def bench_nbmlops(sizes: Sizes, workdir: Path) -> Timings:
    import nbmlops as nbm

    out: Timings = {}
    nbm.set_store(workdir / "runs" / ".nbmlops")
    workload = [(params_for(i), metrics_for(i)) for i in range(sizes.runs_nbmlops)]

    def batch(i: int) -> None:
        params, metrics = workload[i % len(workload)]
        with nbm.start_run(f"run-{i}", experiment=EXPERIMENT):
            nbm.log_params(params)
            nbm.log_metrics(metrics)

    def per_call(i: int) -> None:
        params, metrics = workload[i % len(workload)]
        with nbm.start_run(f"run-{i}", experiment=EXPERIMENT):
            for key, value in params.items():
                nbm.log_param(key, value)
            for key, metric in metrics.items():
                nbm.log_metric(key, metric)

    for i in range(sizes.warmup_runs):
        batch(i)
    out["run_batch"] = [timed(lambda i=i: batch(i)) for i in range(sizes.runs_nbmlops)]
    out["run_per_call"] = [timed(lambda i=i: per_call(i)) for i in range(sizes.runs_nbmlops)]

    def metric_loop(run: nbm.Run) -> None:
        for step in range(sizes.metric_calls):
            nbm.log_metric("loss", 1.0 / (step + 1), step=step)
        run.end()

    out["metric_calls"] = []
    for _ in range(sizes.metric_repeats_nbmlops):
        run = nbm.start_run("metric-loop", experiment=EXPERIMENT)
        out["metric_calls"].append(timed(lambda run=run: metric_loop(run)))

    # Case 3: a fresh store with exactly search_runs runs, populated through the public API.
    nbm.set_store(workdir / "search" / ".nbmlops")
    out["populate"] = timed(lambda: populate_nbmlops(nbm, sizes.search_runs))
    frame = None

    def read() -> None:
        nonlocal frame
        frame = nbm.runs()

    out["search_cold"] = timed(read)
    out["search_warm"] = [timed(read) for _ in range(sizes.search_repeats)]
    check_frame(frame, sizes.search_runs)
    return out


def populate_nbmlops(nbm: Any, n: int) -> None:
    for i in range(n):
        with nbm.start_run(f"run-{i}", experiment=EXPERIMENT):
            nbm.log_params(params_for(i))
            nbm.log_metrics(metrics_for(i))


def check_frame(frame: Any, n: int) -> None:
    """The DataFrame holds every run, with a column per param and per metric."""
    n_params = sum(c.startswith("params.") for c in frame.columns)
    n_metrics = sum(c.startswith("metrics.") for c in frame.columns)
    if len(frame) != n or n_params != 10 or n_metrics != 10:
        raise RuntimeError(f"unexpected frame: {len(frame)} rows, {n_params} params, {n_metrics}")


# -- MLflow side (child process) --------------------------------------------------------------


def bench_mlflow(sizes: Sizes, workdir: Path) -> Timings:
    quiet_mlflow()
    import mlflow
    from mlflow import MlflowClient

    out: Timings = {}
    exp_id = mlflow_store(mlflow, workdir / "runs", EXPERIMENT)
    mlflow.set_experiment(experiment_id=exp_id)
    workload = [(params_for(i), metrics_for(i)) for i in range(sizes.runs_mlflow)]

    def batch(i: int) -> None:
        params, metrics = workload[i % len(workload)]
        with mlflow.start_run(run_name=f"run-{i}"):
            mlflow.log_params(params)
            mlflow.log_metrics(metrics)

    def per_call(i: int) -> None:
        params, metrics = workload[i % len(workload)]
        with mlflow.start_run(run_name=f"run-{i}"):
            for key, value in params.items():
                mlflow.log_param(key, value)
            for key, metric in metrics.items():
                mlflow.log_metric(key, metric)

    for i in range(max(1, sizes.warmup_runs // 4)):
        batch(i)
    out["run_batch"] = [timed(lambda i=i: batch(i)) for i in range(sizes.runs_mlflow)]
    out["run_per_call"] = [timed(lambda i=i: per_call(i)) for i in range(sizes.runs_mlflow)]

    def metric_loop() -> None:
        for step in range(sizes.metric_calls_mlflow):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.end_run()

    mlflow.start_run(run_name="metric-loop")
    scale = sizes.metric_calls / sizes.metric_calls_mlflow
    out["metric_calls"] = [timed(metric_loop) * scale]
    out["metric_calls_timed"] = sizes.metric_calls_mlflow

    # Case 3: a fresh SQLite DB. Runs are written with MlflowClient's batch API: create_run,
    # one log_batch with the 10 params and 10 metrics, set_terminated (3 calls per run).
    exp_id = mlflow_store(mlflow, workdir / "search", EXPERIMENT)
    out["populate"] = timed(lambda: populate_mlflow(MlflowClient(), exp_id, sizes.search_runs))
    frame = None

    def search() -> None:
        nonlocal frame
        frame = mlflow.search_runs(experiment_ids=[exp_id])

    out["search_cold"] = timed(search)
    out["search_warm"] = [timed(search) for _ in range(sizes.search_repeats)]
    check_frame(frame, sizes.search_runs)
    return out


def populate_mlflow(client: Any, exp_id: str, n: int) -> None:
    from mlflow.entities import Metric, Param

    for i in range(n):
        run_id = client.create_run(exp_id, run_name=f"run-{i}").info.run_id
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics_for(i).items()],
            params=[Param(k, str(v)) for k, v in params_for(i).items()],
        )
        client.set_terminated(run_id)


SIDES: dict[str, Callable[[Sizes, Path], Timings]] = {
    "nbmlops": bench_nbmlops,
    "mlflow": bench_mlflow,
}


# -- parent: orchestration and report ---------------------------------------------------------


def import_times(repeats: int, env: dict[str, str]) -> dict[str, list[float]]:
    """Seconds to import each package in a fresh interpreter, interleaved, after one warm-up."""
    times: dict[str, list[float]] = {"nbmlops": [], "mlflow": []}
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        for i in range(repeats + 1):
            for package in times:
                code = f"import time;t=time.perf_counter();import {package};"
                code += "print(time.perf_counter()-t)"
                done = subprocess.run(
                    [sys.executable, "-c", code],
                    cwd=tmp,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                if i > 0:  # the first round only warms the OS file cache and .pyc files
                    times[package].append(float(done.stdout.split()[-1]))
    return times


def header(quick: bool) -> list[str]:
    return [
        *machine_lines(),
        f"python:   {platform.python_version()}",
        f"nbmlops:  {version('nbmlops')}   mlflow: {version('mlflow')} (SQLite backend)",
        f"mode:     {'--quick (reduced sizes; targets are for full sizes)' if quick else 'full'}",
    ]


@dataclass
class Row:
    case: str
    nbmlops: float
    mlflow: float
    target: str = "info"
    min_ratio: float | None = None
    max_seconds: float | None = None

    @property
    def ratio(self) -> float:
        return self.mlflow / self.nbmlops

    @property
    def status(self) -> str:
        if self.min_ratio is None and self.max_seconds is None:
            return "-"
        missed = []
        if self.max_seconds is not None and self.nbmlops > self.max_seconds:
            missed.append("time")
        if self.min_ratio is not None and self.ratio < self.min_ratio:
            missed.append("ratio")
        return f"MISSED ({', '.join(missed)})" if missed else "MET"


def rows(sizes: Sizes, nbm: Timings, mlf: Timings, imports: dict[str, list[float]]) -> list[Row]:
    med = statistics.median
    n = sizes.search_runs
    calls = f"{sizes.metric_calls:,} log_metric calls + end"
    if mlf["metric_calls_timed"] != sizes.metric_calls:
        calls += f" (MLflow: {mlf['metric_calls_timed']:,} timed, scaled)"
    return [
        Row(
            "1. run, 10 params + 10 metrics (batch calls)",
            med(nbm["run_batch"]),
            med(mlf["run_batch"]),
            ">= 20x",
            min_ratio=20,
        ),
        Row(
            "   same, one call per param/metric",
            med(nbm["run_per_call"]),
            med(mlf["run_per_call"]),
        ),
        Row(f"2. {calls}", med(nbm["metric_calls"]), med(mlf["metric_calls"]), ">= 100x", 100),
        Row(
            f"3. runs() / search_runs(), {n:,} runs (warm)",
            med(nbm["search_warm"]),
            med(mlf["search_warm"]),
            "<= 150 ms, >= 50x",
            min_ratio=50,
            max_seconds=0.150,
        ),
        Row("   same, first (cold) call", nbm["search_cold"], mlf["search_cold"]),
        Row("   populate, per run", nbm["populate"] / n, mlf["populate"] / n),
        Row(
            "4. import (fresh interpreter)",
            med(imports["nbmlops"]),
            med(imports["mlflow"]),
            "<= 100 ms",
            max_seconds=0.100,
        ),
    ]


def table(report: list[Row]) -> list[str]:
    cells = [("case", "nbmlops", "MLflow", "ratio", "target", "result")]
    for r in report:
        ratio = f"{r.ratio:,.0f}x" if r.ratio >= 10 else f"{r.ratio:.1f}x"
        cells.append((r.case, fmt_time(r.nbmlops), fmt_time(r.mlflow), ratio, r.target, r.status))
    return table_lines(cells)


def details(nbm: Timings, mlf: Timings, imports: dict[str, list[float]]) -> list[str]:
    lines = ["", "spread (min / median / max):"]
    for side, t in (("nbmlops", nbm), ("mlflow", mlf)):
        for key in ("run_batch", "run_per_call", "metric_calls", "search_warm"):
            lines.append(spread(f"{side} {key}", t[key]))
        lines.append(spread(f"{side} import", imports[side]))
    return lines


def main(argv: list[str] | None = None) -> None:
    chosen = sizes_or_child(argv, __doc__, Sizes, SIDES)
    if chosen is None:  # a child process: one side's cases ran
        return
    sizes, quick = chosen
    started = time.perf_counter()
    print("\n".join(header(quick)), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        env = child_env(Path(pycache))
        nbm = run_side(SCRIPT, "nbmlops", asdict(sizes), env)
        mlf = run_side(SCRIPT, "mlflow", asdict(sizes), env)
        imports = import_times(sizes.import_repeats, env)
    print()
    print("\n".join(table(rows(sizes, nbm, mlf, imports))))
    print("\n".join(details(nbm, mlf, imports)))
    print(
        f"\nmedians; ratio = MLflow / nbmlops. Case 1: {sizes.runs_nbmlops} nbmlops and "
        f"{sizes.runs_mlflow} MLflow runs per style after warm-up. Case 3: MLflow populated "
        "with MlflowClient create_run + log_batch + set_terminated; only the search is timed; "
        f"warm = median of {sizes.search_repeats} calls after the cold one. Case 4: median of "
        f"{sizes.import_repeats} fresh interpreters, interleaved."
    )
    print(f"total {time.perf_counter() - started:.0f} s; at end: {machine_load()}")


if __name__ == "__main__":
    main()
