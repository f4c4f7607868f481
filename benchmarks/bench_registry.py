"""Model-registry benchmark: nbmlops against MLflow 3 (SQLite tracking and registry), side by side.

Run it directly (MLflow and scikit-learn must be installed)::

    .venv/bin/python benchmarks/bench_registry.py [--quick]

Two RandomForestRegressors: a small one whose pickle is about 1.3 MB (the issue's) and a large
one of 300 trees, about 26 MB (the actual sizes are printed). Cases (targets from the registry
issue; ratio = MLflow time / nbmlops time):

1. Register a model trained in a run (small forest): nbmlops ``log_model`` + the run's end +
   ``register_model(run_id, name)``, against MLflow ``mlflow.sklearn.log_model`` +
   ``mlflow.register_model``: nbmlops <= 50 ms and >= 20x faster.
2. ``register_model`` alone, from a run that already logged the model (information, with
   MLflow's ``register_model`` alone beside it); nbmlops also <= 50 ms.
3. Load the small forest with hash verification: ``nbmlops.api.load_model("rf-i/1")``
   (resolve the reference, verify, check library versions, unpickle, record the consumer)
   against ``mlflow.sklearn.load_model("models:/rf-i/1")``, in GB/s of artifact: >= 1 GB/s.
   A pickle this small has two chunks and loads whole: read, BLAKE3 of the whole file, unpickle.
4. The same for the large forest, which loads chunk by chunk: a reader thread reads and BLAKE3s
   chunk k+1 while this thread unpickles chunk k, which was verified before (see
   ``nbmlops/registry/_chunked_load.py``): >= 1 GB/s.

Under cases 3 and 4, for information: for the small forest its load without the bookkeeping
(read + BLAKE3 of the whole file, then ``pickle.loads``) and the sha256 check (what versions
registered before BLAKE3 digests were recorded are checked with, until their first load); for
the large one ``load_model`` through the whole-file path, as it loaded before chunk digests,
and the reader thread's work alone (read + BLAKE3 chunk by chunk, one thread); for both the hash
check alone (``read_verified``: read, BLAKE3 the whole file, with threads from 4 MB) and
unpickling alone; and for both, with MLflow beside it, loads in a separate process that only
loads (as a scoring job or a server would). The machine's in-memory sha256 and BLAKE3 speeds
(64 MB) bound the hash rows.
Minor page faults per call are printed with the spreads: on this VM a fault costs several
microseconds, and how many fresh pages a call gets depends on what the allocator kept from the
calls before (each case is timed in its own block, after one untimed call).

Each tool runs in its own child process (fresh temporary directory as working directory and
store), so neither pays for the other's imports or heap; the parent builds both forests once and
hands them over as pickles. Every registration gets a model with new bytes (an attribute holds a
counter), so the content-addressed store really writes each one. MLflow saves with
``serialization_format="cloudpickle"``, the like-for-like format (MLflow 3's default, skops,
refuses a forest unless its tree type is declared trusted).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import platform
import resource
import statistics
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
FOREST_BYTES = 1_300_000
LARGE_TREES = 300  # on 6,000 rows: a pickle of about 26 MB
MODELS = "BENCH_REGISTRY_MODELS"  # environment: the folder of the forests' pickles
STORE = "BENCH_REGISTRY_STORE"  # environment of a loader: the store its side filled

Timings = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    register_nbmlops: int = 30  # case 1 and 2 repeats, each
    register_mlflow: int = 3  # MLflow log_model takes seconds
    loads_nbmlops: int = 50
    loads_mlflow: int = 10
    large_versions: int = 4  # registered copies of the large forest; its loads rotate over them
    loads_large_nbmlops: int = 20
    loads_large_mlflow: int = 5

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            register_nbmlops=8,
            register_mlflow=1,
            loads_nbmlops=10,
            loads_mlflow=3,
            large_versions=2,
            loads_large_nbmlops=4,
            loads_large_mlflow=2,
        )


def build_forests(folder: Path) -> None:
    """Pickle both forests into ``folder`` (fixed data and seeds): ``small.pkl``, about
    FOREST_BYTES, and ``large.pkl``, LARGE_TREES trees on 6,000 rows."""
    from sklearn.datasets import make_regression
    from sklearn.ensemble import RandomForestRegressor

    def forest(n: int, rows: int) -> Any:
        X, y = make_regression(n_samples=rows, n_features=10, noise=5.0, random_state=0)
        params = {"n_estimators": n, "min_samples_leaf": 5, "random_state": 0, "n_jobs": -1}
        model = RandomForestRegressor(**params).fit(X, y)
        model.n_jobs = 1
        return model

    probe = 10
    per_tree = len(pickle.dumps(forest(probe, 3_000), protocol=5)) / probe
    small = forest(max(1, round(FOREST_BYTES / per_tree)), 3_000)
    (folder / "small.pkl").write_bytes(pickle.dumps(small, protocol=5))
    (folder / "large.pkl").write_bytes(pickle.dumps(forest(LARGE_TREES, 6_000), protocol=5))


def forest(which: str) -> tuple[Any, int]:
    """The ``small`` or ``large`` forest the parent built, and its pickle's size."""
    data = (Path(os.environ[MODELS]) / f"{which}.pkl").read_bytes()
    return pickle.loads(data), len(data)


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def timed_blocks(cases: dict[str, Callable[[int], object]], n: int, out: Timings) -> None:
    """Each case in its own block: one untimed call, then ``n`` timed calls (``case(i)``), and
    the minor page faults per call. Blocks, not interleaved calls: how many fresh pages a call
    touches depends on what the allocator kept from the calls before (several microseconds a
    page on this VM), and a block measures each case in its own steady state, as MLflow's loads
    are measured."""
    for key, case in cases.items():
        case(0)
        before = faults()
        out[key] = [timed(lambda case=case, i=i: case(i)) for i in range(n)]
        out[f"{key}_faults"] = (faults() - before) / n


# -- nbmlops side (child process) -------------------------------------------------------------


def bench_nbmlops(sizes: Sizes, workdir: Path) -> Timings:
    from unittest import mock

    import nbmlops as nbm
    from nbmlops import api
    from nbmlops.registry import _chunked_load
    from nbmlops.store.objects import ChunkDigests

    store = nbm.set_store(workdir / ".nbmlops")
    assert store is not None
    model, size = forest("small")
    out: Timings = {"forest_bytes": size, "log_and_register": [], "register": []}

    def log(i: int) -> str:
        model._bench_nonce = i  # new bytes: the content-addressed store writes every one
        with nbm.start_run(f"rf-{i}") as run:
            nbm.log_model(model, "model")
        return run.run_id

    for i in range(2):  # warm-up: imports, the installed-packages scan, the git state cache
        api.register_model(log(-1 - i), f"warm-{i}")
    for i in range(sizes.register_nbmlops):
        start = time.perf_counter()
        run_id = log(i)
        api.register_model(run_id, f"rf-{i}")
        out["log_and_register"].append(time.perf_counter() - start)
    logged = [log(1000 + i) for i in range(sizes.register_nbmlops)]
    for i, run_id in enumerate(logged):
        out["register"].append(timed(lambda r=run_id, i=i: api.register_model(r, f"r-{i}")))
    mv = api.get_model_version("rf-0/1")
    assert mv.format == "pickle" and mv.blake3 is not None and mv.chunks is not None
    out["artifact_bytes"], out["chunks"] = mv.size, [mv.chunks.count, mv.chunks.chunk_size]
    n = sizes.register_nbmlops
    verify = lambda _: store.objects.read_verified(mv.sha256, blake3=mv.blake3)  # noqa: E731
    data = verify(0)
    cases = {
        "load": lambda i: api.load_model(f"rf-{i % n}/1", consumer="bench"),
        "serial": lambda _: pickle.loads(verify(0)),
        "verify": verify,
        "verify_sha256": lambda _: store.objects.read_verified(mv.sha256),
        "unpickle": lambda _: pickle.loads(data),
    }
    timed_blocks(cases, sizes.loads_nbmlops, out)
    del data, cases

    large, large_size = forest("large")
    out["large_bytes"], out["large_register"] = large_size, []
    for i in range(sizes.large_versions):
        large._bench_nonce = i
        start = time.perf_counter()
        api.register_model(large, f"big-{i}", format="pickle")
        out["large_register"].append(time.perf_counter() - start)
    del large
    big = api.get_model_version("big-0/1")
    assert big.chunks is not None and big.blake3 is not None
    out["large_artifact_bytes"] = big.size
    out["large_chunks"] = [big.chunks.count, big.chunks.chunk_size]
    versions = sizes.large_versions
    verify_large = lambda _: store.objects.read_verified(big.sha256, blake3=big.blake3)  # noqa: E731
    path, step = store.objects.path_of(big.sha256), big.chunks.chunk_size

    def reader_work(_: int) -> None:  # what the reader thread does, in this thread
        with open(path, "rb") as f:
            assert ChunkDigests.of(f.read(), step) == big.chunks

    def whole_file_load(i: int) -> object:  # load_model as before chunk digests
        with mock.patch.object(_chunked_load, "applies", lambda mv: False):
            return api.load_model(f"big-{i % versions}/1", consumer="bench")

    data = verify_large(0)
    cases = {
        "large_load": lambda i: api.load_model(f"big-{i % versions}/1", consumer="bench"),
        "large_serial": whole_file_load,
        "large_verify": verify_large,
        "large_reader": reader_work,
        "large_unpickle": lambda _: pickle.loads(data),
    }
    timed_blocks(cases, sizes.loads_large_nbmlops, out)

    # A process that only loads, as a consumer would (a scoring job, a server).
    env = {**os.environ, STORE: str(store.db_path.parent)}
    loads = run_side(SCRIPT, "loader", asdict(sizes), env)
    out.update({f"only_{case}": value for case, value in loads.items()})
    return out


def bench_loader(sizes: Sizes, _workdir: Path) -> Timings:
    """Load the nbmlops side's small forests, then its large ones, in blocks, in this process
    that did nothing else."""
    import nbmlops as nbm
    from nbmlops import api

    nbm.set_store(Path(os.environ[STORE]))
    small, large = sizes.register_nbmlops, sizes.large_versions
    out: Timings = {}
    cases = {"load": lambda i: api.load_model(f"rf-{i % small}/1", consumer="bench")}
    timed_blocks(cases, sizes.loads_nbmlops, out)
    cases = {"large_load": lambda i: api.load_model(f"big-{i % large}/1", consumer="bench")}
    timed_blocks(cases, sizes.loads_large_nbmlops, out)
    return out


# -- MLflow side (child process) --------------------------------------------------------------


def bench_mlflow(sizes: Sizes, workdir: Path) -> Timings:
    quiet_mlflow()
    import mlflow
    import mlflow.sklearn

    mlflow.set_experiment(experiment_id=mlflow_store(mlflow, workdir))
    model, size = forest("small")
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

    large, out["large_bytes"] = forest("large")
    start = time.perf_counter()
    with mlflow.start_run(run_name="big"):
        info = mlflow.sklearn.log_model(large, name="model", serialization_format="cloudpickle")
    mlflow.register_model(info.model_uri, "big")
    out["large_register"] = [time.perf_counter() - start]
    del large
    mlflow.sklearn.load_model("models:/big/1")
    out["large_load"] = [
        timed(lambda: mlflow.sklearn.load_model("models:/big/1"))
        for _ in range(sizes.loads_large_mlflow)
    ]
    loads = run_side(SCRIPT, "mlflow-loader", asdict(sizes), {**os.environ, STORE: str(workdir)})
    out.update({f"only_{case}": value for case, value in loads.items()})
    return out


def bench_mlflow_loader(sizes: Sizes, _workdir: Path) -> Timings:
    """Load the MLflow side's registered forests in a process that did nothing else."""
    quiet_mlflow()
    import mlflow
    import mlflow.sklearn

    mlflow.set_tracking_uri(f"sqlite:///{Path(os.environ[STORE]) / 'mlflow.db'}")
    small = sizes.register_mlflow
    out: Timings = {}
    cases = {"load": lambda i: mlflow.sklearn.load_model(f"models:/rf-{i % small}/1")}
    timed_blocks(cases, sizes.loads_mlflow, out)
    cases = {"large_load": lambda _: mlflow.sklearn.load_model("models:/big/1")}
    timed_blocks(cases, sizes.loads_large_mlflow, out)
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
    "loader": bench_loader,
    "mlflow-loader": bench_mlflow_loader,
}


# -- parent: orchestration and report ---------------------------------------------------------


def header(quick: bool) -> list[str]:
    return [
        *machine_lines(),
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
    size, large = nbm["artifact_bytes"], nbm["large_artifact_bytes"]
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
            f"3. load_model, {size / 1e6:.2f} MB forest (whole file)",
            med(nbm["load"]),
            med(mlf["load"]),
            ">= 1 GB/s",
            size=size,
            min_gb_s=1.0,
        ),
        Row(
            "   read + BLAKE3, then unpickle (no bookkeeping)", med(nbm["serial"]), None, size=size
        ),
        Row("   hash check alone (read + BLAKE3)", med(nbm["verify"]), None, size=size),
        Row("   same, sha256 (pre-BLAKE3 versions)", med(nbm["verify_sha256"]), None, size=size),
        Row("   unpickle alone (pickle.loads)", med(nbm["unpickle"]), None, size=size),
        Row(
            "   load_model in a process that only loads",
            med(nbm["only_load"]),
            med(mlf["only_load"]),
            size=size,
        ),
        Row(
            f"4. load_model, {large / 1e6:.1f} MB forest (chunk by chunk)",
            med(nbm["large_load"]),
            med(mlf["large_load"]),
            ">= 1 GB/s",
            size=large,
            min_gb_s=1.0,
        ),
        Row(
            "   load_model, whole file (before chunk digests)",
            med(nbm["large_serial"]),
            None,
            size=large,
        ),
        Row(
            "   hash check alone (read + BLAKE3, threads)",
            med(nbm["large_verify"]),
            None,
            size=large,
        ),
        Row(
            "   reader's work alone (read + BLAKE3 per chunk)",
            med(nbm["large_reader"]),
            None,
            size=large,
        ),
        Row("   unpickle alone (pickle.loads)", med(nbm["large_unpickle"]), None, size=large),
        Row(
            "   load_model in a process that only loads",
            med(nbm["only_large_load"]),
            med(mlf["only_large_load"]),
            size=large,
        ),
        Row(
            "   register_model / log_model + register_model",
            med(nbm["large_register"]),
            med(mlf["large_register"]),
        ),
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
    return table_lines(cells)


def main(argv: list[str] | None = None) -> None:
    chosen = sizes_or_child(argv, __doc__, Sizes, SIDES)
    if chosen is None:  # a child process: one side's cases ran
        return
    sizes, quick = chosen
    started = time.perf_counter()
    print("\n".join(header(quick)), flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache,
        tempfile.TemporaryDirectory(prefix="bench-models-") as models,
    ):
        build_forests(Path(models))
        env = {**child_env(Path(pycache)), MODELS: models}
        nbm = run_side(SCRIPT, "nbmlops", asdict(sizes), env)
        mlf = run_side(SCRIPT, "mlflow", asdict(sizes), env)
        sha = run_side(SCRIPT, "sha256", asdict(sizes), env)
    count, step = nbm["chunks"]
    large_count, large_step = nbm["large_chunks"]
    print(
        f"models:   RandomForestRegressor, pickles of {nbm['forest_bytes'] / 1e6:.2f} MB "
        f"({count} chunk(s) of {step >> 20} MiB: loads whole) and "
        f"{nbm['large_bytes'] / 1e6:.1f} MB, {LARGE_TREES} trees ({large_count} chunks of "
        f"{large_step >> 20} MiB: loads chunk by chunk)"
    )
    print(f"sha256:   {sha['gb_per_s']:.2f} GB/s in memory on this CPU (hashlib, 64 MB, best of 3)")
    print(
        f"blake3:   {sha['blake3_gb_per_s']:.2f} GB/s one thread, "
        f"{sha['blake3_threads_gb_per_s']:.2f} GB/s with threads (64 MB, best of 3; the whole-file "
        "check uses one thread below 4 MB, the chunk reader always one)"
    )
    print()
    print("\n".join(table(rows(nbm, mlf))))
    print("\nspread (min / median / max; minor page faults per call):")
    for key in ("log_and_register", "register"):
        print(spread(f"nbmlops {key}", nbm[key]))
    small = ("load", "serial", "verify", "verify_sha256", "unpickle", "only_load")
    large = ("large_serial", "large_verify", "large_reader", "large_unpickle", "only_large_load")
    for key in (*small, "large_load", *large):
        print(spread(f"nbmlops {key}", nbm[key]) + f"  faults {nbm[f'{key}_faults']:.0f}")
    print(spread("nbmlops large_register", nbm["large_register"]))
    for key in ("log_model", "register", "load", "large_register", "large_load"):
        print(spread(f"mlflow {key}", mlf[key]))
    for key in ("only_load", "only_large_load"):
        print(spread(f"mlflow {key}", mlf[key]) + f"  faults {mlf[f'{key}_faults']:.0f}")
    print(
        f"\nmedians; ratio = MLflow / nbmlops. nbmlops: {sizes.register_nbmlops} registrations "
        f"per case after 2 warm-ups, {sizes.loads_nbmlops} loads (small), "
        f"{sizes.loads_large_nbmlops} (large, over {sizes.large_versions} versions); MLflow: "
        f"{sizes.register_mlflow} log_model + register_model after 1 warm-up, "
        f"{sizes.loads_mlflow} loads (small), {sizes.loads_large_mlflow} (large). "
        "GB/s = artifact bytes / median time."
    )
    print(f"total {time.perf_counter() - started:.0f} s; at end: {machine_load()}")


if __name__ == "__main__":
    main()
