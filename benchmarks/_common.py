"""What the side-by-side benchmark scripts share: child processes per side, timing, and how the
machine and the figures are printed. Scripts import it as ``_common`` (run as
``python benchmarks/bench_x.py``, their folder is on sys.path)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def child_env(pycache: Path) -> dict[str, str]:
    """Environment of the child processes: no MLflow telemetry, no warnings, one BLAS thread,
    no nbmlops/MLflow location inherited from the caller, and bytecode cached in ``pycache``
    (shared by the whole run), so imports are timed as in an ordinary install even where
    PYTHONDONTWRITEBYTECODE is set or source files just changed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for key in ("NBMLOPS_HOME", "NBMLOPS_NOTEBOOK", "JPY_SESSION_NAME", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    # One BLAS/OpenMP thread: on a small shared machine a second thread waiting for a busy core
    # makes a 35 ms fit take 140 ms at random, which would drown the overheads measured.
    env.update(
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        PYTHONWARNINGS="ignore",
        PYTHONPYCACHEPREFIX=str(pycache),
    )
    return env


def sizes_or_child(
    argv: list[str] | None,
    doc: str,
    sizes_type: Any,
    sides: Mapping[str, Callable[[Any, Path], Any]],
) -> tuple[Any, bool] | None:
    """The command line every side-by-side script shares. In a child process started by
    :func:`run_side` (``--side``), run that side's cases, write its timings as JSON and return
    None; otherwise return the sizes to use (``sizes_type.quick()`` with ``--quick``) and
    whether ``--quick`` was given."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--side", choices=sorted(sides), help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        sizes = sizes_type(**json.loads(args.sizes))
        args.out.write_text(json.dumps(sides[args.side](sizes, Path.cwd())))
        return None
    return (sizes_type.quick() if args.quick else sizes_type()), args.quick


def quiet_mlflow() -> None:
    """Import MLflow with warnings off and its (and its database layers') logging at errors
    only, before the caller's own ``import mlflow``: a child's output is its timings."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    import mlflow  # noqa: F401 - its import-time warnings are what is silenced

    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.ERROR)


def mlflow_store(mlflow: Any, folder: Path, experiment: str = "bench") -> str:
    """Point MLflow at a SQLite DB in ``folder`` (made if missing), migrate it, and create
    ``experiment``; its id. The first call creates the DB and runs MLflow's alembic migrations,
    so this comes before any timing."""
    folder.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    artifacts = (folder / "artifacts").as_uri()
    return str(mlflow.MlflowClient().create_experiment(experiment, artifact_location=artifacts))


def run_side(
    script: Path,
    side: str,
    sizes: dict[str, Any],
    env: dict[str, str],
    python: str = sys.executable,
) -> Any:
    """Run ``script --side SIDE`` in a child process (a fresh temp dir as cwd and IPYTHONDIR;
    ``python``: another interpreter, a peer's venv); return the timings it wrote as JSON, with
    ``elapsed`` added."""
    with tempfile.TemporaryDirectory(prefix=f"{script.stem}-{side}-") as tmp:
        out = Path(tmp) / "timings.json"
        workdir = Path(tmp) / "work"
        workdir.mkdir()
        cmd = [python, str(script), "--side", side, "--sizes", json.dumps(sizes)]
        cmd += ["--out", str(out)]
        side_env = {**env, "IPYTHONDIR": str(Path(tmp) / "ipython")}
        started = time.perf_counter()
        done = subprocess.run(cmd, cwd=workdir, env=side_env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stdout + done.stderr)
            raise SystemExit(f"the {side} benchmark failed (exit {done.returncode})")
        timings = json.loads(out.read_text())
        timings["elapsed"] = time.perf_counter() - started
        return timings


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fmt_time(seconds: float) -> str:
    if abs(seconds) < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if abs(seconds) < 1:
        return f"{seconds * 1e3:.{2 if abs(seconds) < 0.01 else 1}f} ms"
    return f"{seconds:.2f} s"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def machine_load() -> str:
    """Load average, and the share of time tasks waited for a CPU (Linux PSI), over 1 min."""
    text = f"load average {os.getloadavg()[0]:.2f}"
    try:
        with open("/proc/pressure/cpu") as f:
            fields = dict(item.split("=") for item in f.readline().split()[1:])
        text += f", CPU pressure {float(fields['avg60']):.0f}%"
    except (OSError, KeyError, ValueError):
        pass
    return text


def machine_lines() -> list[str]:
    """The date and the machine (CPU, cores, system, load at start): the first lines of every
    benchmark's printout, as benchmarks/README.md records them."""
    return [
        f"date:     {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine:  {cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; at start: {machine_load()}",
    ]


def spread(name: str, values: list[float], width: int = 26) -> str:
    return (
        f"  {name:<{width}} n={len(values):<4} min {fmt_time(min(values)):>9}  "
        f"median {fmt_time(statistics.median(values)):>9}  max {fmt_time(max(values)):>9}"
    )


def table_lines(cells: list[tuple[str, ...]]) -> list[str]:
    """A results table: the first row the header, underlined; the first column left-aligned,
    the next three (times, ratios) right-aligned, the rest (target, result) left-aligned."""
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
