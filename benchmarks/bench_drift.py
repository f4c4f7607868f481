"""Drift detection speed and agreement: nbmlops.drift against Evidently 0.7's DataDriftPreset.

    .venv/bin/python benchmarks/bench_drift.py --evidently-python /tmp/evidently-venv/bin/python

Evidently 0.7 does not import under pandas 3, so it runs in its own virtual environment:

    python3 -m venv /tmp/evidently-venv
    /tmp/evidently-venv/bin/pip install 'evidently==0.7.*' 'pandas<3' pyarrow

The data (20 numeric + 5 categorical columns; 6 numeric and 2 categorical columns shifted, the
rest from the same distribution) is written to Parquet and both tools read the same rows. Timed:
Evidently's ``Dataset.from_pandas`` + ``Report([DataDriftPreset()]).run``; nbmlops'
``drift.check_drift(reference, current)`` from the DataFrames (profile + check, nothing saved, as
Evidently saves nothing), and a repeat check against the stored profile
(``drift.check_drift(profile, current)``). Both use the same per-column methods (Evidently's
default choice), so the per-column scores are compared too. Best of ``--repeats`` for nbmlops,
one run of Evidently.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import cpu_model, machine_load

import nbmlops
import nbmlops.drift as drift
from nbmlops.store import Store

N_NUMERIC, N_CATEGORICAL = 20, 5
SHIFTED_NUMERIC = {0, 3, 6, 9, 12, 15}  # mean +0.3 sd, or sd x 1.3 for odd ones
SHIFTED_CATEGORICAL = {0, 1}
CATEGORIES = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"])
PROBS = np.array([0.3, 0.25, 0.2, 0.1, 0.1, 0.05])

EVIDENTLY_SCRIPT = r"""
import json, sys, time
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently import __version__ as version
from evidently.presets import DataDriftPreset

ref = pd.read_parquet(sys.argv[1])
cur = pd.read_parquet(sys.argv[2])
numeric = [c for c in ref.columns if c.startswith("num_")]
categorical = [c for c in ref.columns if c.startswith("cat_")]
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
start = time.perf_counter()
reference = Dataset.from_pandas(ref, data_definition=definition)
current = Dataset.from_pandas(cur, data_definition=definition)
snapshot = Report([DataDriftPreset()]).run(current, reference)
seconds = time.perf_counter() - start
columns = {}
for metric in snapshot.dict()["metrics"]:
    config = metric["config"]
    if config.get("column") is not None:
        columns[config["column"]] = {
            "method": config["method"], "threshold": config["threshold"], "value": metric["value"]
        }
print(json.dumps({"seconds": seconds, "version": version, "columns": columns}))
"""

# Evidently's display names of the methods its default choice uses.
EVIDENTLY_METHODS = {
    "K-S p_value": "ks",
    "chi-square p_value": "chi2_gof",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
}


def make_data(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref: dict[str, Any] = {}
    cur: dict[str, Any] = {}
    for i in range(N_NUMERIC):
        ref[f"num_{i}"] = rng.normal(10.0 * i, 1.0 + i / 10, rows)
        mean, sd = 10.0 * i, 1.0 + i / 10
        if i in SHIFTED_NUMERIC:
            if (i // 3) % 2 == 0:
                mean += 0.3 * sd
            else:
                sd *= 1.3
        cur[f"num_{i}"] = rng.normal(mean, sd, rows)
    for i in range(N_CATEGORICAL):
        ref[f"cat_{i}"] = CATEGORIES[rng.choice(6, rows, p=PROBS)]
        probs = PROBS[::-1] if i in SHIFTED_CATEGORICAL else PROBS
        cur[f"cat_{i}"] = CATEGORIES[rng.choice(6, rows, p=probs)]
    return pd.DataFrame(ref).astype({f"cat_{i}": "str" for i in range(N_CATEGORICAL)}), (
        pd.DataFrame(cur).astype({f"cat_{i}": "str" for i in range(N_CATEGORICAL)})
    )


def truth() -> set[str]:
    return {f"num_{i}" for i in SHIFTED_NUMERIC} | {f"cat_{i}" for i in SHIFTED_CATEGORICAL}


def best_of(repeats: int, func: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def run_evidently(python: str, ref: pd.DataFrame, cur: pd.DataFrame, tmp: Path) -> dict[str, Any]:
    ref_path, cur_path, script = tmp / "ref.parquet", tmp / "cur.parquet", tmp / "ev.py"
    ref.to_parquet(ref_path)
    cur.to_parquet(cur_path)
    script.write_text(EVIDENTLY_SCRIPT)
    done = subprocess.run(
        [python, str(script), str(ref_path), str(cur_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"Evidently failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def compare(report: drift.DriftReport, evidently: dict[str, Any]) -> tuple[float, int, int]:
    """Largest score difference, columns where the method differs, verdicts that differ."""
    worst, methods, verdicts = 0.0, 0, 0
    for column in report.columns:
        ev = evidently["columns"][column.column]
        method = EVIDENTLY_METHODS.get(ev["method"], ev["method"])
        methods += method != column.method
        ours = column.p_value if column.p_value is not None else column.statistic
        worst = max(worst, abs(ours - ev["value"]))
        if column.p_value is not None:
            ev_drift = ev["value"] <= ev["threshold"] if method == "ks" else ev["value"] < 0.05
        else:
            ev_drift = ev["value"] >= ev["threshold"]
        verdicts += ev_drift != column.drifted
    return worst, methods, verdicts


def machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} cores, {machine_load()}"


def add_evidently_options(parser: argparse.ArgumentParser) -> None:
    """--evidently-python and --no-evidently (bench_monitoring's too)."""
    parser.add_argument(
        "--evidently-python",
        default=os.environ.get("EVIDENTLY_PYTHON", "/tmp/evidently-venv/bin/python"),
        help="python of a virtual environment with evidently==0.7.*, pandas<3 and pyarrow",
    )
    parser.add_argument("--no-evidently", action="store_true", help="time nbmlops only")


def evidently_python_of(args: argparse.Namespace) -> str | None:
    """The python to run Evidently with, or None (said loudly when it is missing)."""
    python: str | None = None if args.no_evidently else args.evidently_python
    if python is not None and not Path(python).exists():
        print(
            f"!! Evidently's python {python} is MISSING: the comparison is skipped.\n"
            "   Create it with: python3 -m venv /tmp/evidently-venv && "
            "/tmp/evidently-venv/bin/pip install 'evidently==0.7.*' 'pandas<3' pyarrow\n"
        )
        python = None
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="100000,1000000", help="comma-separated row counts")
    parser.add_argument("--repeats", type=int, default=3)
    add_evidently_options(parser)
    args = parser.parse_args()
    sizes = [int(x) for x in args.rows.split(",")]
    import scipy

    evidently_python = evidently_python_of(args)
    print(f"date      {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}")
    print(f"machine   {machine()}")
    print(
        f"versions  python {platform.python_version()}, nbmlops {nbmlops.__version__}, numpy "
        f"{np.__version__}, pandas {pd.__version__}, scipy {scipy.__version__}"
    )
    print(
        f"data      {N_NUMERIC} numeric + {N_CATEGORICAL} categorical columns; shifted: "
        f"{', '.join(sorted(truth()))}\n"
    )
    rows_out: list[tuple[str, str, str, str, str]] = []
    timings: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        store = Store.open(tmp / ".nbmlops")
        for rows in sizes:
            ref, cur = make_data(rows, seed=rows)
            cold, report = best_of(
                args.repeats, lambda ref=ref, cur=cur: drift.check_drift(ref, cur)
            )
            profile_id = drift.save_profile(store, drift.DriftDetector().fit(ref).profile_)
            load, profile = best_of(
                args.repeats, lambda pid=profile_id: drift.load_profile(store, pid)
            )
            warm, _ = best_of(args.repeats, lambda p=profile, c=cur: drift.check_drift(p, c))
            found = set(report.drifted_columns)
            timings[rows] = {"cold": cold, "warm": warm, "load": load}
            line = (
                f"{rows:>9,} rows  nbmlops check_drift {cold:6.2f} s | repeat check against the "
                f"stored profile {warm:5.2f} s (+ {load * 1000:.0f} ms to load it) | drifted "
                f"{len(found)}/25, {'= truth' if found == truth() else 'differs from truth'}"
            )
            print(line, flush=True)
            if evidently_python is not None:
                ev = run_evidently(evidently_python, ref, cur, tmp)
                worst, methods, verdicts = compare(report, ev)
                timings[rows]["evidently"] = ev["seconds"]
                print(
                    f"{'':>16}Evidently {ev['version']} DataDriftPreset {ev['seconds']:6.2f} s"
                    f" | same method on {25 - methods}/25 columns, same verdict on "
                    f"{25 - verdicts}/25, largest score difference {worst:.2g}",
                    flush=True,
                )
        # A repeat check costs O(current rows): the same current against a 10x larger profile,
        # timed interleaved with the same-size profile so that load on the machine hits both.
        if len(sizes) >= 2:
            small, large = sizes[0], sizes[-1]
            big_ref, _ = make_data(large, seed=large)
            small_ref, cur_small = make_data(small, seed=small)
            big_profile = drift.build_profile(big_ref, fingerprint=False)
            small_profile = drift.build_profile(small_ref, fingerprint=False)
            runs: dict[str, list[float]] = {"vs_large": [], "vs_same": []}
            for _ in range(max(7, args.repeats)):
                for key, prof in (("vs_large", big_profile), ("vs_same", small_profile)):
                    start = time.perf_counter()
                    drift.check_drift(prof, cur_small)
                    runs[key].append(time.perf_counter() - start)
            timings[small].update({key: min(values) for key, values in runs.items()})
        store.close()

    print("\n| target | nbmlops | Evidently 0.7 | ratio | status |")
    print("|---|---|---|---|---|")
    for rows in sizes:
        t = timings[rows]
        ev_time = t.get("evidently")
        if rows <= 100_000:
            if ev_time is None:
                rows_out.append(
                    (f"{rows:,} rows: >= 20x faster than Evidently", f"{t['cold']:.2f} s",
                     "not run", "-", "NOT MEASURED")
                )  # fmt: skip
            else:
                ratio = ev_time / t["cold"]
                rows_out.append(
                    (f"{rows:,} rows: >= 20x faster than Evidently", f"{t['cold']:.2f} s",
                     f"{ev_time:.2f} s", f"{ratio:.0f}x", "MET" if ratio >= 20 else "MISSED")
                )  # fmt: skip
        else:
            ev_text = "not run" if ev_time is None else f"{ev_time:.1f} s"
            ratio_text = "-" if ev_time is None else f"{ev_time / t['cold']:.0f}x"
            rows_out.append(
                (f"{rows:,} rows: check_drift <= 2 s", f"{t['cold']:.2f} s", ev_text,
                 ratio_text, "MET" if t["cold"] <= 2.0 else "MISSED")
            )  # fmt: skip
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        t_small, t_large = timings[small], timings[large]
        same_cur = t_small["vs_large"] / t_small["vs_same"]
        rows_out.append(
            (f"repeat check: {small:,} current rows vs a {large // small}x larger profile",
             f"{t_small['vs_large']:.3f} s vs {t_small['vs_same']:.3f} s", "-",
             f"{same_cur:.1f}x", "MET" if same_cur <= 1.5 else "MISSED")
        )  # fmt: skip
        per_row = (t_large["warm"] / large) / (t_small["warm"] / small)
        rows_out.append(
            (f"repeat check: cost per current row, {large:,} vs {small:,} rows",
             f"{t_large['warm']:.2f} s vs {t_small['warm']:.2f} s", "-",
             f"{per_row:.1f}x", "MET" if per_row <= 1.5 else "MISSED")
        )  # fmt: skip
    for row in rows_out:
        print("| " + " | ".join(row) + " |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
