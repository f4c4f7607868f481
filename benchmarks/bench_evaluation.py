"""The unseen check of an evaluation against Deepchecks' TrainTestSamplesMix (issue #21).

Run it directly, with Deepchecks in its own venv (never in nbmlops' venv)::

    python3 -m venv /tmp/deepchecks-venv
    /tmp/deepchecks-venv/bin/pip install deepchecks 'scikit-learn<1.6' 'pandas<2.3' 'numpy<2' \\
        'category-encoders<2.7' 'pyarrow<21'
    .venv/bin/python benchmarks/bench_evaluation.py [--quick]

(``BENCH_DEEPCHECKS_PYTHON`` names another python.) Deepchecks 0.19.1, the newest, does not
import with the newest of its unpinned dependencies: scikit-learn 1.9 has no ``'max_error'``
scorer (ValueError at import), category-encoders 2.7+ needs scikit-learn >= 1.6 (``Tags``), and
NumPy 2 has no ``np.Inf``; hence the pins.

The data: 1,000,000 training rows x 20 feature columns (14 float64 of normal noise, 3 int64 in
[0, 1000), 3 categories of 4, 12 and 40 string values) and a binary int64 ``label``; a
200,000-row test set drawn the same way from another seed, with a known number of training rows
(features and label) copied over random test rows: 1,000, and 10,000 (5%). The parent writes
both to Parquet; each side reads them in its own child process and fresh temporary folder.

nbmlops' side records the training as a tracked run does (``log_dataset`` of X and y, the model
logged and registered as ``bench/1``, the drift profiles, and the row hashes a ``%%track``
training cell keeps, through ``capture.training_rows.TrainingRows``), then times, per case:

- ``evaluation.checks.unseen_check`` (the unseen check alone: the stored training hashes read
  from the store, sorted, the test rows hashed and searched): *cold*, the sorted training hashes
  not kept from an earlier evaluation (as in a fresh kernel), against the issue's 0.5 s; and
  *warm*, a second evaluation against the same training data;
- ``nbm.evaluate("bench/1", X_test, y_test)`` end to end, cold (metrics, the comparability
  check's drift tests, the model loaded, the evaluation recorded), for information;
- a plain ``pandas`` inner merge of the test rows with the distinct training rows on every
  column, for information (what one writes without either tool).

Deepchecks' side: ``Dataset`` of train and test (label and categorical features given) and
``TrainTestSamplesMix().run(train, test, with_display=False)``, one run per case (it takes
seconds to minutes). Both must find exactly the leaked rows: the check stops otherwise. Also
timed: what ``%%track`` pays once per new training set to hash 1M x 20 rows and its label
(``fingerprint.row_hashes``) and to write those hashes into the store.
"""

from __future__ import annotations

import functools
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from _common import (
    child_env,
    fmt_time,
    machine_lines,
    machine_load,
    run_side,
    sizes_or_child,
    table_lines,
    timed,
)

SCRIPT = Path(__file__).resolve()
PEER_PYTHON = "BENCH_DEEPCHECKS_PYTHON"  # environment: a python with deepchecks
DEFAULT_PEER_PYTHON = "/tmp/deepchecks-venv/bin/python"
TARGET = 0.5  # seconds, the bound on the unseen check
FLOATS, INTS = 14, 3
CATEGORIES = {"cat0": 4, "cat1": 12, "cat2": 40}  # column -> number of string values

Timings = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    train_rows: int = 1_000_000
    test_rows: int = 200_000
    leaked: tuple[int, ...] = (1_000, 10_000)
    repeats: int = 5
    folder: str = field(default="")  # where the parent wrote the Parquet files

    @classmethod
    def quick(cls) -> Sizes:
        return cls(train_rows=50_000, test_rows=10_000, leaked=(100, 500), repeats=2)

    def test_file(self, leaked: int) -> Path:
        return Path(self.folder) / f"test_{leaked}.parquet"

    @property
    def train_file(self) -> Path:
        return Path(self.folder) / "train.parquet"


# -- the data (parent) ----------------------------------------------------------------------------


def columns(rows: int, seed: int) -> dict[str, Any]:
    """The raw columns (categories as codes) of ``rows`` rows drawn from ``seed``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {f"f{i:02}": rng.standard_normal(rows) for i in range(FLOATS)}
    data.update({f"int{i}": rng.integers(0, 1000, rows) for i in range(INTS)})
    data.update({name: rng.integers(0, n, rows) for name, n in CATEGORIES.items()})
    score = data["f00"] - data["f01"] + 0.5 * rng.standard_normal(rows)
    data["label"] = (score > 0).astype(np.int64)
    return data


def frame(data: dict[str, Any]) -> Any:
    import pandas as pd

    frame = pd.DataFrame(data)
    for name, n in CATEGORIES.items():
        labels = [f"{name}_v{v}" for v in range(n)]
        frame[name] = pd.Categorical.from_codes(data[name], categories=labels)
    return frame


def write_data(sizes: Sizes) -> None:
    """The training set, and one test set per leak count: fresh rows with ``leaked`` training
    rows (features and label) copied over random positions."""
    import numpy as np

    train = columns(sizes.train_rows, seed=0)
    frame(train).to_parquet(sizes.train_file)
    for leaked in sizes.leaked:
        test = columns(sizes.test_rows, seed=1)
        rng = np.random.default_rng(leaked)
        at = rng.choice(sizes.test_rows, leaked, replace=False)
        source = rng.choice(sizes.train_rows, leaked, replace=False)
        for name, values in test.items():
            values[at] = train[name][source]
        frame(test).to_parquet(sizes.test_file(leaked))


def split(data: Any) -> tuple[Any, Any]:
    return data.drop(columns="label"), data["label"]


# -- nbmlops side (child process) -----------------------------------------------------------------


def bench_nbmlops(sizes: Sizes, workdir: Path) -> Timings:
    import pandas as pd
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder
    from sklearn.tree import DecisionTreeClassifier

    import nbmlops as nbm
    from nbmlops.capture.training_rows import TrainingRows
    from nbmlops.drift import profile_dataset
    from nbmlops.evaluation import checks
    from nbmlops.fingerprint import fingerprint, row_hashes

    store = nbm.set_store(workdir / ".nbmlops")
    assert store is not None
    train = pd.read_parquet(sizes.train_file)
    X, y = split(train)
    out: Timings = {
        "hash_features": [timed(lambda: row_hashes(X)) for _ in range(sizes.repeats)],
        "hash_label": [timed(lambda: row_hashes(y)) for _ in range(sizes.repeats)],
        "fingerprint_features": timed(lambda: fingerprint(X)),
        "cases": {},
    }
    model = make_pipeline(
        make_column_transformer((OrdinalEncoder(), list(CATEGORIES)), remainder="passthrough"),
        DecisionTreeClassifier(max_depth=6, random_state=0),
    )
    out["fit"] = timed(lambda: model.fit(X, y))
    inputs = {"X_train": (fingerprint(X).digest, X), "y_train": (fingerprint(y).digest, y)}
    with nbm.start_run():  # the store exists before a training cell, as in a session
        pass
    rows = TrainingRows(store)
    problems: list[str] = []
    out["track_take"] = timed(lambda: problems.extend(rows.take(inputs)))  # before the cell
    with nbm.start_run() as run:
        nbm.log_dataset(X, "X_train")
        nbm.log_dataset(y, "y_train")
        nbm.log_model(model, "model")
    out["track_save"] = timed(lambda: problems.extend(rows.save()))
    assert not problems, f"the training rows were not kept: {problems}"
    for data in (X, y):
        profile_dataset(store, data)
    version = nbm.register_model(run.run_id, "bench")
    training = checks.training_of(store, model, version, version.run_id)
    assert training is not None, "the training data of bench/1 was not found"
    distinct = train.drop_duplicates()

    for leaked in sizes.leaked:
        test = pd.read_parquet(sizes.test_file(leaked))
        out["cases"][str(leaked)] = nbmlops_case(store, training, test, distinct, sizes.repeats)
    return out


def nbmlops_case(store: Any, training: Any, test: Any, distinct: Any, repeats: int) -> Timings:
    """One test set: the unseen check cold and warm, ``nbm.evaluate``, the pandas merge."""
    import nbmlops as nbm
    from nbmlops.evaluation import checks

    X_test, y_test = split(test)
    case: Timings = {"cold": [], "warm": [], "evaluate": []}
    found: list[dict[str, Any]] = []
    evaluations: list[Any] = []
    merged: list[int] = []

    def check() -> None:
        found.append(checks.unseen_check(store, training, X_test, y_test, 0))

    def evaluate() -> None:
        evaluations.append(nbm.evaluate("bench/1", X_test, y_test))

    for _ in range(repeats):
        checks._SORTED.clear()  # a fresh kernel: nothing kept from an earlier evaluation
        case["cold"].append(timed(check))
        case["warm"].append(timed(check))
    for _ in range(repeats):
        checks._SORTED.clear()
        case["evaluate"].append(timed(evaluate))
    case["merge"] = timed(lambda: merged.append(len(test.merge(distinct, on=list(test.columns)))))
    overlap = found[-1]["overlap"]
    assert overlap is not None, f"unseen_check did not run: {found[-1]['note']}"
    last = evaluations[-1]
    return case | {
        "rows": overlap["rows"],
        "rows_without_target": overlap["rows_without_target"],
        "merge_rows": merged[0],
        "evaluate_rows": last.overlap["rows"],
        "status": last.status,
        "summary": str(last),
    }


# -- Deepchecks side (child process, Deepchecks' venv) --------------------------------------------


def bench_deepchecks(sizes: Sizes, workdir: Path) -> Timings:
    import warnings

    warnings.filterwarnings("ignore")
    import deepchecks
    import pandas as pd
    from deepchecks.tabular import Dataset
    from deepchecks.tabular.checks import TrainTestSamplesMix

    train = pd.read_parquet(sizes.train_file)
    out: Timings = {"version": deepchecks.__version__, "pandas": pd.__version__, "cases": {}}
    for leaked in sizes.leaked:
        test = pd.read_parquet(sizes.test_file(leaked))
        datasets: list[Any] = []
        results: list[Any] = []
        build = functools.partial(build_datasets, Dataset, [train, test], datasets)
        run = functools.partial(run_check, TrainTestSamplesMix(), datasets, results)
        case = {"datasets": timed(build), "run": timed(run)}
        case["rows"] = round(results[0].value["ratio"] * len(test))
        out["cases"][str(leaked)] = case
    return out


def build_datasets(dataset: Any, frames: list[Any], into: list[Any]) -> None:
    into += [dataset(data, label="label", cat_features=list(CATEGORIES)) for data in frames]


def run_check(check: Any, datasets: list[Any], into: list[Any]) -> None:
    into.append(check.run(*datasets, with_display=False))


SIDES: dict[str, Callable[[Sizes, Path], Timings]] = {
    "nbmlops": bench_nbmlops,
    "deepchecks": bench_deepchecks,
}


# -- parent: orchestration and report -------------------------------------------------------------


def report(sizes: Sizes, nbm: Timings, peer: Timings) -> list[str]:
    med = statistics.median
    cells = [("case", "nbmlops", "Deepchecks", "ratio", "target", "result")]
    for leaked in sizes.leaked:
        ours, theirs = nbm["cases"][str(leaked)], peer["cases"][str(leaked)]
        deepchecks = theirs["datasets"] + theirs["run"]
        cold = med(ours["cold"])
        share = f"{leaked:,} leaked ({leaked / sizes.test_rows:.1%})"
        cells += [
            (
                f"unseen check, {share}: cold / Dataset + TrainTestSamplesMix",
                fmt_time(cold),
                fmt_time(deepchecks),
                f"{deepchecks / cold:,.0f}x",
                f"<= {TARGET} s",
                "MET" if cold <= TARGET else "MISSED",
            ),
            (
                "  warm (sorted training hashes kept) / the check's run alone",
                fmt_time(med(ours["warm"])),
                fmt_time(theirs["run"]),
                f"{theirs['run'] / med(ours['warm']):,.0f}x",
                "info",
                "",
            ),
            (
                "  nbm.evaluate end to end, cold / -",
                fmt_time(med(ours["evaluate"])),
                "",
                "",
                "info",
                "",
            ),
            (
                "  pandas merge on every column (training drop_duplicates untimed)",
                fmt_time(ours["merge"]),
                "",
                "",
                "info",
                "",
            ),
        ]
    return table_lines(cells)


def agreement(sizes: Sizes, nbm: Timings, peer: Timings) -> list[str]:
    """Leaked rows each found; stops the run when one differs from what was leaked."""
    lines, wrong = ["leaked rows found (with the label / features only):"], []
    for leaked in sizes.leaked:
        ours, theirs = nbm["cases"][str(leaked)], peer["cases"][str(leaked)]
        counts = {
            "unseen_check": ours["rows"],
            "unseen_check features only": ours["rows_without_target"],
            "nbm.evaluate": ours["evaluate_rows"],
            "pandas merge": ours["merge_rows"],
            "Deepchecks": theirs["rows"],
        }
        wrong += [f"{name} {n} of {leaked}" for name, n in counts.items() if n != leaked]
        shown = ", ".join(f"{name} {n:,}" for name, n in counts.items())
        lines.append(f"  {leaked:>7,} leaked: {shown}; evaluate's status {ours['status']!r}")
        lines.append(f"           {ours['summary'][:160]}")
    if wrong:
        print("\n".join(lines))
        raise SystemExit("a tool found another number of leaked rows: " + "; ".join(wrong))
    return lines


def track_cost(sizes: Sizes, nbm: Timings) -> list[str]:
    med = statistics.median
    rows = f"{sizes.train_rows:,} x {FLOATS + INTS + len(CATEGORIES)}"
    return [
        f"what %%track pays once per new training set ({rows}, and its label):",
        f"  row_hashes(X_train)  median {fmt_time(med(nbm['hash_features']))} "
        f"(min {fmt_time(min(nbm['hash_features']))}, n={len(nbm['hash_features'])})",
        f"  row_hashes(y_train)  median {fmt_time(med(nbm['hash_label']))}",
        f"  TrainingRows.take (both, in the cell) {fmt_time(nbm['track_take'])}, "
        f".save (into the store, after it) {fmt_time(nbm['track_save'])}",
        f"  for scale: the content fingerprint of X_train {fmt_time(nbm['fingerprint_features'])}"
        f", the model's fit {fmt_time(nbm['fit'])}",
    ]


def spreads(sizes: Sizes, nbm: Timings) -> list[str]:
    lines = ["spread (every repeat):"]
    for leaked in sizes.leaked:
        case = nbm["cases"][str(leaked)]
        for key in ("cold", "warm", "evaluate"):
            shown = ", ".join(map(fmt_time, case[key]))
            lines.append(f"  {leaked:>7,} leaked, {key:<8} {shown}")
    return lines


def main(argv: list[str] | None = None) -> None:
    chosen = sizes_or_child(argv, __doc__, Sizes, SIDES)
    if chosen is None:  # a child process: one side's cases ran
        return
    sizes, quick = chosen
    python = os.environ.get(PEER_PYTHON, DEFAULT_PEER_PYTHON)
    if not Path(python).exists():
        raise SystemExit(
            f"Deepchecks' python not found at {python}. Create its venv as this script's "
            f"docstring says (or set {PEER_PYTHON} to a python with deepchecks)."
        )
    started = time.perf_counter()
    print("\n".join(machine_lines()), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-evaluation-") as tmp:
        sizes = replace(sizes, folder=tmp)
        write_data(sizes)
        env = child_env(Path(tmp) / "pycache")
        nbm = run_side(SCRIPT, "nbmlops", asdict(sizes), env)
        print(f"          after the nbmlops side: {machine_load()}", flush=True)
        peer = run_side(SCRIPT, "deepchecks", asdict(sizes), env, python=python)
    print(
        f"versions: python {platform.python_version()}, nbmlops {version('nbmlops')}, pandas "
        f"{version('pandas')}, numpy {version('numpy')}; Deepchecks {peer['version']} "
        f"(pandas {peer['pandas']})"
    )
    print(
        f"data:     {sizes.train_rows:,} training rows x ({FLOATS} float64 + {INTS} int64 + "
        f"{len(CATEGORIES)} category) + int64 label; test sets of {sizes.test_rows:,} rows"
        + (" (--quick)" if quick else "")
    )
    print()
    print("\n".join(report(sizes, nbm, peer)))
    print()
    print("\n".join(agreement(sizes, nbm, peer)))
    print()
    print("\n".join(track_cost(sizes, nbm)))
    print("\n".join(spreads(sizes, nbm)))
    print(
        f"\nnbmlops: medians of {sizes.repeats}; Deepchecks: one run per case. Sides "
        f"{nbm['elapsed']:.0f} s / {peer['elapsed']:.0f} s; total "
        f"{time.perf_counter() - started:.0f} s; at end: {machine_load()}"
    )


if __name__ == "__main__":
    main()
