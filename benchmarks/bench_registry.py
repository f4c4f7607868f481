"""Model-registry benchmark: nbmlops against MLflow 3 (SQLite tracking and registry), side by side.

Run it directly (MLflow and scikit-learn must be installed)::

    .venv/bin/python benchmarks/bench_registry.py [--quick]

Cases (targets from the registry issue; ratio = MLflow time / nbmlops time), on a
RandomForestRegressor whose pickle is about 1.3 MB (the actual size is printed):

1. Register a model trained in a run: nbmlops ``log_model`` + the run's end +
   ``register_model(run_id, name)``, against MLflow ``mlflow.sklearn.log_model`` +
   ``mlflow.register_model``: nbmlops <= 50 ms and >= 20x faster.
2. ``register_model`` alone, from a run that already logged the model (information, with
   MLflow's ``register_model`` alone beside it); nbmlops also <= 50 ms.
3. Load with hash verification: ``nbmlops.registry.load_model("rf-i/1")`` (resolve the reference,
   read the artifact and check its BLAKE3 digest recorded at registration, check library
   versions, unpickle, record the consumer) against ``mlflow.sklearn.load_model("models:/rf-i/1")``,
   in GB/s of artifact: >= 1 GB/s.
4. The hash check alone (``ObjectStore.read_verified``: read the file, BLAKE3 it) in GB/s; the
   same with sha256 (what versions registered before BLAKE3 was recorded are checked with, until
   their first load); and the machine's in-memory sha256 and BLAKE3 speeds (64 MB), which bound
   them. Unpickling alone is shown too: case 3 is essentially case 4 plus it, since unpickling may
   only start once the whole artifact has been hashed.

Each tool runs in its own child process (fresh temporary directory as working directory and
store), so neither pays for the other's imports or heap. Every registration gets a model with
new bytes (an attribute holds a counter), so the content-addressed store really writes each one.
MLflow saves with ``serialization_format="cloudpickle"``, the like-for-like format (MLflow 3's
default, skops, refuses a forest unless its tree type is declared trusted).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import pickle
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from _common import child_env, cpu_model, fmt_time, run_side, spread, timed

SCRIPT = Path(__file__).resolve()
FOREST_BYTES = 1_300_000

Timings = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    register_nbmlops: int = 30  # case 1 and 2 repeats, each
    register_mlflow: int = 3  # MLflow log_model takes seconds
    loads_nbmlops: int = 50
    loads_mlflow: int = 10

    @classmethod
    def quick(cls) -> Sizes:
        return cls(register_nbmlops=8, register_mlflow=1, loads_nbmlops=10, loads_mlflow=3)


def sized_forest() -> tuple[Any, int]:
    """A RandomForestRegressor whose pickle is about FOREST_BYTES (fixed data and seed)."""
    from sklearn.datasets import make_regression
    from sklearn.ensemble import RandomForestRegressor

    X, y = make_regression(n_samples=3_000, n_features=10, noise=5.0, random_state=0)

    def forest(n: int) -> Any:
        params = {"n_estimators": n, "min_samples_leaf": 5, "random_state": 0, "n_jobs": 1}
        return RandomForestRegressor(**params).fit(X, y)

    probe = 10
    per_tree = len(pickle.dumps(forest(probe), protocol=5)) / probe
    model = forest(max(1, round(FOREST_BYTES / per_tree)))
    return model, len(pickle.dumps(model, protocol=5))


# -- nbmlops side (child process) -------------------------------------------------------------


def bench_nbmlops(sizes: Sizes, workdir: Path) -> Timings:
    import nbmlops as nbm
    from nbmlops import registry

    store = nbm.set_store(workdir / ".nbmlops")
    assert store is not None
    model, size = sized_forest()
    out: Timings = {"forest_bytes": size, "log_and_register": [], "register": [], "load": []}
    out["verify"], out["verify_sha256"] = [], []

    def log(i: int) -> str:
        model._bench_nonce = i  # new bytes: the content-addressed store writes every one
        with nbm.start_run(f"rf-{i}") as run:
            nbm.log_model(model, "model")
        return run.run_id

    for i in range(2):  # warm-up: imports, the installed-packages scan, the git state cache
        registry.register_model(log(-1 - i), f"warm-{i}")
    for i in range(sizes.register_nbmlops):
        start = time.perf_counter()
        run_id = log(i)
        registry.register_model(run_id, f"rf-{i}")
        out["log_and_register"].append(time.perf_counter() - start)
    logged = [log(1000 + i) for i in range(sizes.register_nbmlops)]
    for i, run_id in enumerate(logged):
        out["register"].append(timed(lambda r=run_id, i=i: registry.register_model(r, f"r-{i}")))
    mv = registry.get_model_version("rf-0/1")
    assert mv.format == "pickle" and mv.blake3 is not None
    out["artifact_bytes"] = mv.size
    registry.load_model("rf-0/1")  # warm: the page cache and the first unpickle
    for i in range(sizes.loads_nbmlops):
        ref = f"rf-{i % sizes.register_nbmlops}/1"
        out["load"].append(timed(lambda ref=ref: registry.load_model(ref, consumer="bench")))
    for _ in range(sizes.loads_nbmlops):
        out["verify"].append(
            timed(lambda: store.objects.read_verified(mv.sha256, blake3=mv.blake3))
        )
        out["verify_sha256"].append(timed(lambda: store.objects.read_verified(mv.sha256)))
    data = store.objects.read_verified(mv.sha256)
    out["unpickle"] = [timed(lambda: pickle.loads(data)) for _ in range(sizes.loads_nbmlops)]
    return out


# -- MLflow side (child process) --------------------------------------------------------------


def bench_mlflow(sizes: Sizes, workdir: Path) -> Timings:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient

    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    exp_id = MlflowClient().create_experiment(
        "bench", artifact_location=(workdir / "artifacts").as_uri()
    )
    mlflow.set_experiment(experiment_id=exp_id)
    model, size = sized_forest()
    out: Timings = {"forest_bytes": size, "log_model": [], "register": [], "load": []}

    def log(i: int) -> Any:
        model._bench_nonce = i
        with mlflow.start_run(run_name=f"rf-{i}"):
            return mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")

    mlflow.register_model(log(-1).model_uri, "warm")  # warm-up: imports, first-call costs
    for i in range(sizes.register_mlflow):
        start = time.perf_counter()
        info = log(i)
        logged = time.perf_counter()
        mlflow.register_model(info.model_uri, f"rf-{i}")
        out["log_model"].append(logged - start)
        out["register"].append(time.perf_counter() - logged)
    mlflow.sklearn.load_model("models:/rf-0/1")
    for i in range(sizes.loads_mlflow):
        uri = f"models:/rf-{i % sizes.register_mlflow}/1"
        out["load"].append(timed(lambda uri=uri: mlflow.sklearn.load_model(uri)))
    return out


def bench_sha256(_sizes: Sizes, _workdir: Path) -> Timings:
    import blake3

    data = os.urandom(64 << 20)
    hashlib.sha256(data[: 1 << 20]).hexdigest()
    best = min(timed(lambda: hashlib.sha256(data).hexdigest()) for _ in range(3))
    one = min(timed(lambda: blake3.blake3(data).hexdigest()) for _ in range(3))
    pool = blake3.blake3.AUTO
    threads = min(timed(lambda: blake3.blake3(data, max_threads=pool).digest()) for _ in range(3))
    return {
        "gb_per_s": len(data) / best / 1e9,
        "blake3_gb_per_s": len(data) / one / 1e9,
        "blake3_threads_gb_per_s": len(data) / threads / 1e9,
    }


SIDES: dict[str, Callable[[Sizes, Path], Timings]] = {
    "nbmlops": bench_nbmlops,
    "mlflow": bench_mlflow,
    "sha256": bench_sha256,
}


# -- parent: orchestration and report ---------------------------------------------------------


def header(quick: bool) -> list[str]:
    load = os.getloadavg()
    return [
        f"date:     {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine:  {cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; load average {load[0]:.2f} at start",
        f"python:   {platform.python_version()}",
        f"nbmlops:  {version('nbmlops')}   mlflow: {version('mlflow')} (SQLite backend)   "
        f"scikit-learn: {version('scikit-learn')}   skops: {version('skops')}",
        f"mode:     {'--quick (fewer repeats)' if quick else 'full'}",
    ]


@dataclass
class Row:
    case: str
    nbmlops: float
    mlflow: float | None
    target: str = "info"
    min_ratio: float | None = None
    max_seconds: float | None = None
    size: int | None = None  # artifact bytes: show GB/s
    min_gb_s: float | None = None

    @property
    def ratio(self) -> float | None:
        return None if self.mlflow is None else self.mlflow / self.nbmlops

    def gb_s(self, seconds: float | None) -> str:
        if self.size is None or seconds is None:
            return ""
        return f" ({self.size / seconds / 1e9:.2f} GB/s)"

    @property
    def status(self) -> str:
        checks = (self.min_ratio, self.max_seconds, self.min_gb_s)
        if all(c is None for c in checks):
            return "-"
        missed = []
        if self.max_seconds is not None and self.nbmlops > self.max_seconds:
            missed.append("time")
        ratio = self.ratio
        if self.min_ratio is not None and (ratio is None or ratio < self.min_ratio):
            missed.append("ratio")
        gb_s = None if self.size is None else self.size / self.nbmlops / 1e9
        if self.min_gb_s is not None and gb_s is not None and gb_s < self.min_gb_s:
            missed.append("GB/s")
        return f"MISSED ({', '.join(missed)})" if missed else "MET"


def rows(nbm: Timings, mlf: Timings) -> list[Row]:
    med = statistics.median
    size = nbm["artifact_bytes"]
    mlflow_total = [a + b for a, b in zip(mlf["log_model"], mlf["register"], strict=True)]
    return [
        Row(
            "1. log_model + register_model",
            med(nbm["log_and_register"]),
            med(mlflow_total),
            "<= 50 ms, >= 20x",
            min_ratio=20,
            max_seconds=0.050,
        ),
        Row("   MLflow log_model alone", med(nbm["log_and_register"]), med(mlf["log_model"])),
        Row(
            "2. register_model alone (run already logged)",
            med(nbm["register"]),
            med(mlf["register"]),
            "<= 50 ms",
            max_seconds=0.050,
        ),
        Row(
            "3. load_model with hash verification",
            med(nbm["load"]),
            med(mlf["load"]),
            ">= 1 GB/s",
            size=size,
            min_gb_s=1.0,
        ),
        Row(
            "4. hash check alone (read + BLAKE3)",
            med(nbm["verify"]),
            None,
            ">= 1 GB/s",
            size=size,
            min_gb_s=1.0,
        ),
        Row("   same, sha256 (pre-BLAKE3 versions)", med(nbm["verify_sha256"]), None, size=size),
        Row("   unpickle alone (pickle.loads)", med(nbm["unpickle"]), None, size=size),
    ]


def table(report: list[Row]) -> list[str]:
    cells = [("case", "nbmlops", "MLflow", "ratio", "target", "result")]
    for r in report:
        ratio = r.ratio
        shown = "" if ratio is None else f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"
        mlflow = "" if r.mlflow is None else fmt_time(r.mlflow) + r.gb_s(r.mlflow)
        cells.append(
            (r.case, fmt_time(r.nbmlops) + r.gb_s(r.nbmlops), mlflow, shown, r.target, r.status)
        )
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = []
    for j, row in enumerate(cells):
        left, *right = row
        text = left.ljust(widths[0])
        text += "".join(f"  {c.rjust(w)}" for c, w in zip(right[:3], widths[1:4], strict=True))
        text += "".join(f"  {c.ljust(w)}" for c, w in zip(right[3:], widths[4:], strict=True))
        lines.append(text.rstrip())
        if j == 0:
            lines.append("-" * len(lines[0]))
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke run")
    parser.add_argument("--side", choices=sorted(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.side:  # child process: one side's cases, timings written as JSON
        sizes = Sizes(**json.loads(args.sizes))
        args.out.write_text(json.dumps(SIDES[args.side](sizes, Path.cwd())))
        return

    sizes = Sizes.quick() if args.quick else Sizes()
    started = time.perf_counter()
    print("\n".join(header(args.quick)), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        env = child_env(Path(pycache))
        nbm = run_side(SCRIPT, "nbmlops", asdict(sizes), env)
        mlf = run_side(SCRIPT, "mlflow", asdict(sizes), env)
        sha = run_side(SCRIPT, "sha256", asdict(sizes), env)
    print(f"model:    RandomForestRegressor, pickle {nbm['forest_bytes'] / 1e6:.2f} MB")
    print(f"sha256:   {sha['gb_per_s']:.2f} GB/s in memory on this CPU (hashlib, 64 MB, best of 3)")
    print(
        f"blake3:   {sha['blake3_gb_per_s']:.2f} GB/s one thread, "
        f"{sha['blake3_threads_gb_per_s']:.2f} GB/s with threads (64 MB, best of 3; load_model "
        "uses one thread below 4 MB)"
    )
    print()
    print("\n".join(table(rows(nbm, mlf))))
    print("\nspread (min / median / max):")
    for key in ("log_and_register", "register", "load", "verify", "verify_sha256", "unpickle"):
        print(spread(f"nbmlops {key}", nbm[key]))
    for key in ("log_model", "register", "load"):
        print(spread(f"mlflow {key}", mlf[key]))
    print(
        f"\nmedians; ratio = MLflow / nbmlops. nbmlops: {sizes.register_nbmlops} registrations "
        f"per case after 2 warm-ups, {sizes.loads_nbmlops} loads; MLflow: "
        f"{sizes.register_mlflow} log_model + register_model after 1 warm-up, "
        f"{sizes.loads_mlflow} loads. GB/s = artifact bytes / median time."
    )
    print(
        f"total {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.2f} at end"
    )


if __name__ == "__main__":
    main()
