"""Data-versioning benchmark: nbmlops (Delta Lake tables) against DVC, side by side (issue #16).

Run it directly, with DVC in its own venv (never in nbmlops' venv)::

    python3 -m venv /tmp/dvc-venv && /tmp/dvc-venv/bin/pip install dvc
    .venv/bin/python benchmarks/bench_data.py [--quick]

(``BENCH_DATA_DVC`` names another ``dvc`` executable.) The data: an int64 key ``id`` and 16
float64 columns of normal noise, 8,388,608 rows at full size (1 GiB of float64; 1.07 GiB with
the key). Random floats hardly compress, so the Parquet file is about as large as the frame.
Cases (ratio = DVC / nbmlops for times, nbmlops / DVC for GB/s):

1. A new version of the frame: ``nbm.save_dataset(df, name, key="id")`` against what a user
   does without nbmlops, ``df.to_parquet(path)`` then ``dvc add path`` (a subprocess, in a
   ``git init && dvc init`` folder; both parts timed). Target: <= 1/2 of the peer. Beside it,
   saving the same content again (nbmlops writes nothing; ``dvc add`` of an unchanged file).
2. A 1% append, ten times: ``nbm.save_dataset(rows, name, mode="append")`` against ``dvc add``
   of the appended file (the Parquet file rewritten with the rows, as a user must; the rewrite
   timed apart). Target: >= 20x faster than the ``dvc add`` alone. For CSV, where a user can
   append in place, the append and ``dvc add`` (full size: one append, for information). Then
   the storage after the ten appends: the Delta table's bytes on disk over the first version's
   (target <= 1.15x), DVC's cache over one Parquet file.
3. ``nbm.load_dataset("name@1")`` of the first version, after the appends: GB/s of the loaded
   frame's memory (``df.memory_usage(deep=True).sum()``); target >= 1 GB/s. Peer: the old
   ``.dvc`` file from git, ``dvc checkout`` of it and ``pd.read_parquet``.
4. ``nbm.dataset_diff`` of two 10M-row versions (same columns) with 1% of the rows changed:
   <= 3 s. DVC diffs files only: ``dvc diff`` of case 2's first and last commits, for context.
   Printed "not available" where ``nbm.dataset_diff`` does not exist yet.

Then, for a missed target: the parts of a save timed alone on the same frame (fingerprint, key
check, the Arrow conversion, nbmlops' writer: Parquet files hashed as written and one Delta
commit) and, for comparison, deltalake's ``write_deltalake`` and plain
``pyarrow.parquet.write_table``. Issue item 8: the nbmlops side saves, appends and loads a
multi-file table and must exit with status 0 (the run stops otherwise); it also runs
deltalake's own ``DeltaTable.to_pyarrow_table()`` on that table in a child process and prints
its exit status (134 was the dependency's abort at exit).

Each tool runs in its own child process in a fresh temporary folder, so neither pays for the
other's imports or page cache state beyond what the machine shares; both build the same frame
from the same seed. Files are in the page cache (written just before): the times are CPU and
memory bound, as on a machine with enough RAM.
"""

from __future__ import annotations

import os
import platform
import shutil
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
    run_side,
    sizes_or_child,
    table_lines,
    timed,
)

SCRIPT = Path(__file__).resolve()
DVC = "BENCH_DATA_DVC"  # environment: the dvc executable
DEFAULT_DVC = "/tmp/dvc-venv/bin/dvc"
NAME = "bench"

Timings = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    rows: int = (1 << 30) // (16 * 8)  # 16 float64 columns: 1 GiB
    columns: int = 16
    appends: int = 10  # each of 1% of the rows
    saves: int = 2  # case 1 repeats, each a fresh dataset / a fresh DVC repo
    loads: int = 3
    diff_rows: int = 10_000_000
    csv_appends: int = 1

    @classmethod
    def quick(cls) -> Sizes:
        return cls(rows=200_000, appends=3, saves=1, loads=2, diff_rows=200_000, csv_appends=1)

    @property
    def append_rows(self) -> int:
        return self.rows // 100


def make_frame(rows: int, columns: int, seed: int, first_id: int = 0) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {"id": np.arange(first_id, first_id + rows, dtype=np.int64)}
    for i in range(columns):
        data[f"c{i:02}"] = rng.standard_normal(rows)
    return pd.DataFrame(data)


def appended(sizes: Sizes, k: int) -> Any:
    """The k-th 1% of new rows (new keys, after the table's and the earlier appends')."""
    first = sizes.rows + k * sizes.append_rows
    return make_frame(sizes.append_rows, sizes.columns, 1000 + k, first_id=first)


def disk_bytes(folder: Path) -> int:
    """Bytes on disk (allocated blocks) of every file under ``folder``."""
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def frame_bytes(frame: Any) -> int:
    return int(frame.memory_usage(deep=True).sum())


# -- nbmlops side (child process) -------------------------------------------------------------


def bench_nbmlops(sizes: Sizes, workdir: Path) -> Timings:
    import nbmlops as nbm

    store = nbm.set_store(workdir / ".nbmlops")
    assert store is not None
    df = make_frame(sizes.rows, sizes.columns, seed=0)
    out: Timings = {"frame_bytes": frame_bytes(df), "save": [], "append": [], "load": []}
    nbm.save_dataset(make_frame(1000, sizes.columns, 9), "warm", key="id")  # imports, first use

    for i in range(sizes.saves):  # the first is the dataset the other cases use
        out["save"].append(timed(lambda i=i: nbm.save_dataset(df, f"{NAME}{i or ''}", key="id")))
    first = nbm.get_dataset(f"{NAME}@1")
    location = Path(first.location)
    out["version_bytes"], out["version_disk"] = first.n_bytes, disk_bytes(location)
    out["version_files"] = len(list(location.glob("*.parquet")))
    out["same"] = timed(lambda: nbm.save_dataset(df, NAME, key="id"))
    assert nbm.get_dataset(NAME).version == 1, "identical content made a new version"

    for k in range(sizes.appends):
        rows = appended(sizes, k)
        out["append"].append(timed(lambda rows=rows: nbm.save_dataset(rows, NAME, mode="append")))
    out["table_disk"] = disk_bytes(location)
    out["table_files"] = len(list(location.glob("*.parquet")))
    out["store_disk"] = disk_bytes(Path(store.home))

    loaded: list[Any] = []
    for _ in range(sizes.loads):
        loaded.clear()  # the previous frame freed before the next load, as in a fresh process
        out["load"].append(timed(lambda: loaded.append(nbm.load_dataset(f"{NAME}@1"))))
    out["loaded_bytes"] = frame_bytes(loaded[0])
    assert loaded[0].equals(df), "version 1 read back differs from what was saved"
    loaded.clear()

    out["pyarrow_read_exit"] = subprocess.run(
        [sys.executable, "-c", DELTA_READ, str(location)], capture_output=True
    ).returncode
    out.update(save_parts(df, workdir / "parts"))
    df = None  # freed before case 4 builds its frames
    out["diff"] = bench_diff(sizes)
    return out


DELTA_READ = (
    "import sys; from deltalake import DeltaTable; DeltaTable(sys.argv[1]).to_pyarrow_table()"
)


def save_parts(df: Any, scratch: Path) -> Timings:
    """The parts of a save, each timed alone on the same frame (where a slow save goes)."""
    import blake3
    import pyarrow.parquet as pq
    from deltalake import write_deltalake

    from nbmlops.data.tables import _check_key, _write, to_arrow
    from nbmlops.fingerprint import fingerprint

    scratch.mkdir()
    parts: Timings = {
        "part_fingerprint": timed(lambda: fingerprint(df)),
        "part_key_check": timed(lambda: _check_key(df, NAME, "id", None)),
    }
    converted: list[Any] = []
    parts["part_to_arrow"] = timed(lambda: converted.append(to_arrow(df)[0]))
    table = converted.pop()
    parts["part_write"] = timed(
        lambda: _write(
            str(scratch / "ours"), table, append=False, keys=["id"], storage_options=None
        )
    )
    parts["part_write_deltalake"] = timed(lambda: write_deltalake(scratch / "delta", table))
    parts["part_pq_write"] = timed(lambda: pq.write_table(table, scratch / "one.parquet"))
    data = (scratch / "one.parquet").read_bytes()
    parts["part_blake3_one_thread"] = timed(lambda: blake3.blake3(data).digest())
    shutil.rmtree(scratch)
    return parts


def bench_diff(sizes: Sizes) -> Timings:
    """Case 4, or why it did not run."""
    import numpy as np

    import nbmlops as nbm

    diff = getattr(nbm, "dataset_diff", None)
    if diff is None:
        return {"available": False}
    old = make_frame(sizes.diff_rows, sizes.columns, seed=7)
    new = old.copy()
    changed = np.random.default_rng(8).choice(len(new), size=len(new) // 100, replace=False)
    new.loc[changed, "c00"] += 1.0
    nbm.save_dataset(old, "diff", key="id")
    nbm.save_dataset(new, "diff", key="id")
    del old, new
    result: list[Any] = []
    times = [timed(lambda: result.append(diff("diff@1", "diff@2"))) for _ in range(3)]
    summary = " | ".join(str(result[-1]).splitlines()[:4])
    return {"available": True, "times": times, "summary": summary[:400]}


# -- DVC side (child process) -----------------------------------------------------------------


def bench_dvc(sizes: Sizes, workdir: Path) -> Timings:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pcsv

    dvc = os.environ[DVC]
    df = make_frame(sizes.rows, sizes.columns, seed=0)
    out: Timings = {"to_parquet": [], "add": [], "rewrite": [], "append_add": [], "load": []}
    out["dvc_version"] = subprocess.run([dvc, "--version"], capture_output=True, text=True).stdout
    for i in range(sizes.saves):
        repo = new_repo(workdir / f"repo{i}", dvc)
        path = repo / "data.parquet"
        out["to_parquet"].append(timed(lambda path=path: df.to_parquet(path)))
        out["add"].append(timed(lambda repo=repo: run(repo, dvc, "add", "data.parquet")))
        commit(repo, "data.parquet.dvc", ".gitignore")
    repo = workdir / "repo0"
    path = repo / "data.parquet"
    out["file_bytes"] = path.stat().st_size
    out["same"] = timed(lambda: run(repo, dvc, "add", "data.parquet"))

    table = df
    for k in range(sizes.appends):
        rows = appended(sizes, k)

        def rewrite(rows: Any = rows) -> None:
            nonlocal table
            table = pd.concat([table, rows], ignore_index=True)
            table.to_parquet(path)

        out["rewrite"].append(timed(rewrite))
        out["append_add"].append(timed(lambda: run(repo, dvc, "add", "data.parquet")))
        commit(repo, "data.parquet.dvc")
    del table
    out["cache_disk"] = disk_bytes(repo / ".dvc" / "cache")

    version_1 = git_rev(repo, sizes.appends)
    for _ in range(sizes.loads):
        run(repo, "git", "checkout", "HEAD", "--", "data.parquet.dvc")
        run(repo, dvc, "checkout", "--force", "data.parquet.dvc")  # the newest, untimed
        run(repo, "git", "checkout", version_1, "--", "data.parquet.dvc")
        checkout = timed(lambda: run(repo, dvc, "checkout", "--force", "data.parquet.dvc"))
        read = timed(lambda: pd.read_parquet(path))
        out["load"].append([checkout, read])
    out["diff"] = timed(lambda: run(repo, dvc, "diff", version_1, "HEAD"))

    # CSV, where a user appends in place: written once (not a target), then appends.
    repo = new_repo(workdir / "csv", dvc)
    path = repo / "data.csv"
    out["csv_write"] = timed(lambda: pcsv.write_csv(pa.Table.from_pandas(df), path))
    df = None  # freed: the CSV cases need only the appended rows
    out["csv_bytes"] = path.stat().st_size
    out["csv_add"] = timed(lambda: run(repo, dvc, "add", "data.csv"))
    out["csv_append"], out["csv_append_add"] = [], []
    for k in range(sizes.csv_appends):
        rows = pa.Table.from_pandas(appended(sizes, k), preserve_index=False)
        options = pcsv.WriteOptions(include_header=False)

        def append_csv(rows: Any = rows, options: Any = options) -> None:
            with open(path, "ab") as f:
                pcsv.write_csv(rows, f, write_options=options)

        out["csv_append"].append(timed(append_csv))
        out["csv_append_add"].append(timed(lambda: run(repo, dvc, "add", "data.csv")))
    return out


def new_repo(repo: Path, dvc: str) -> Path:
    repo.mkdir()
    run(repo, "git", "init", "-q")
    run(repo, "git", "config", "user.email", "bench@example.com")
    run(repo, "git", "config", "user.name", "bench")
    run(repo, dvc, "init", "-q")
    run(repo, dvc, "config", "core.analytics", "false")
    commit(repo, ".dvc", ".dvcignore")
    return repo


def commit(repo: Path, *paths: str) -> None:
    run(repo, "git", "add", *paths)
    run(repo, "git", "commit", "-q", "-m", "version")


def git_rev(repo: Path, back: int) -> str:
    """The commit ``back`` commits before HEAD."""
    return run(repo, "git", "rev-parse", f"HEAD~{back}").strip()


def run(repo: Path, *cmd: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_TERMINAL_PROMPT": "0"}
    done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


SIDES: dict[str, Callable[[Sizes, Path], Timings]] = {"nbmlops": bench_nbmlops, "dvc": bench_dvc}


# -- parent: orchestration and report ---------------------------------------------------------


@dataclass
class Row:
    case: str
    nbmlops: float | None
    peer: float | None
    unit: str = "s"  # "s", "GB/s" (higher is better) or "x" (storage, lower is better)
    target: str = "info"
    check: Callable[[Row], bool] | None = None

    @property
    def ratio(self) -> float | None:
        if self.nbmlops is None or self.peer is None:
            return None
        return self.nbmlops / self.peer if self.unit == "GB/s" else self.peer / self.nbmlops

    @property
    def status(self) -> str:
        if self.check is None:
            return "-"
        if self.nbmlops is None:
            return "not available"
        return "MET" if self.check(self) else "MISSED"

    def shown(self, value: float | None) -> str:
        if value is None:
            return ""
        if self.unit == "s":
            return fmt_time(value)
        return f"{value:.2f} {self.unit}" if self.unit == "GB/s" else f"{value:.2f}x"


def ratio_at_least(minimum: float) -> Callable[[Row], bool]:
    return lambda row: row.ratio is not None and row.ratio >= minimum


def rows(sizes: Sizes, nbm: Timings, peer: Timings) -> list[Row]:
    med = statistics.median
    dvc_save = [a + b for a, b in zip(peer["to_parquet"], peer["add"], strict=True)]
    checkout = [c for c, _ in peer["load"]]
    dvc_load = [c + r for c, r in peer["load"]]
    gb = nbm["loaded_bytes"] / 1e9
    diff = nbm["diff"]
    one_version = nbm["version_disk"]
    report = [
        Row(
            "1. new version of the frame: save_dataset / to_parquet + dvc add",
            med(nbm["save"]),
            med(dvc_save),
            target="<= 1/2 of DVC",
            check=ratio_at_least(2),
        ),
        Row("   DVC: to_parquet alone / dvc add alone", med(peer["to_parquet"]), med(peer["add"])),
        Row("   same content again (nbmlops writes nothing / dvc add)", nbm["same"], peer["same"]),
        Row(
            "2. 1% append: save_dataset(mode='append') / dvc add of the rewritten file",
            med(nbm["append"]),
            med(peer["append_add"]),
            target=">= 20x faster",
            check=ratio_at_least(20),
        ),
        Row(
            "   same, DVC with the Parquet rewrite (concat + to_parquet + dvc add)",
            med(nbm["append"]),
            med([a + b for a, b in zip(peer["rewrite"], peer["append_add"], strict=True)]),
        ),
        Row(
            "   CSV appended in place (append + dvc add)",
            med(nbm["append"]),
            med([a + b for a, b in zip(peer["csv_append"], peer["csv_append_add"], strict=True)]),
        ),
        Row(
            f"   storage after {sizes.appends} appends / one version",
            nbm["table_disk"] / one_version,
            peer["cache_disk"] / peer["file_bytes"],
            unit="x",
            target="<= 1.15x",
            check=lambda row: row.nbmlops is not None and row.nbmlops <= 1.15,
        ),
        Row(
            "3. load version 1 after the appends (GB/s of the frame in memory)",
            gb / med(nbm["load"]),
            gb / med(dvc_load),
            unit="GB/s",
            target=">= 1 GB/s",
            check=lambda row: row.nbmlops is not None and row.nbmlops >= 1.0,
        ),
        Row(
            "   times: load_dataset / dvc checkout + read_parquet", med(nbm["load"]), med(dvc_load)
        ),
        Row("   DVC: dvc checkout alone", None, med(checkout)),
        Row(
            f"4. dataset_diff of two {sizes.diff_rows:,}-row versions, 1% changed / dvc diff",
            min(diff["times"]) if diff["available"] else None,
            peer["diff"],
            target="<= 3 s",
            check=lambda row: row.nbmlops is not None and row.nbmlops <= 3.0,
        ),
    ]
    return report


def table(report: list[Row]) -> list[str]:
    cells = [("case", "nbmlops", "DVC", "ratio", "target", "result")]
    for r in report:
        ratio = r.ratio
        shown = "" if ratio is None else f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2f}x"
        nbmlops = r.shown(r.nbmlops) if r.nbmlops is not None or r.check is None else "n/a"
        cells.append((r.case, nbmlops, r.shown(r.peer), shown, r.target, r.status))
    return table_lines(cells)


def parts(nbm: Timings) -> list[str]:
    save = min(nbm["save"])
    names = {
        "part_fingerprint": "fingerprint of the frame",
        "part_key_check": "key uniqueness check",
        "part_to_arrow": "pandas -> Arrow (to_arrow)",
        "part_write": "Parquet files + BLAKE3 + Delta commit",
    }
    lines = [f"where a save goes (each part alone, same frame; the save itself {fmt_time(save)}):"]
    for key, label in names.items():
        lines.append(f"  {label:<44} {fmt_time(nbm[key]):>9}  {nbm[key] / save:6.1%}")
    total = sum(nbm[key] for key in names)
    lines.append(f"  {'sum of the parts':<44} {fmt_time(total):>9}")
    lines.append(
        f"  {'(deltalake write_deltalake, for comparison)':<44} "
        f"{fmt_time(nbm['part_write_deltalake']):>9}"
    )
    lines.append(
        f"  {'(pyarrow.parquet.write_table, one file)':<44} {fmt_time(nbm['part_pq_write']):>9}"
    )
    lines.append(
        f"  {'(BLAKE3 of that file in memory, one call)':<44} "
        f"{fmt_time(nbm['part_blake3_one_thread']):>9}"
    )
    return lines


def main(argv: list[str] | None = None) -> None:
    chosen = sizes_or_child(argv, __doc__, Sizes, SIDES)
    if chosen is None:  # a child process: one side's cases ran
        return
    sizes, quick = chosen
    dvc = os.environ.get(DVC, DEFAULT_DVC)
    if not Path(dvc).exists():
        raise SystemExit(
            f"DVC not found at {dvc}. Create its venv with: python3 -m venv /tmp/dvc-venv && "
            f"/tmp/dvc-venv/bin/pip install dvc (or set {DVC} to a dvc executable)."
        )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        env = {**child_env(Path(pycache)), DVC: dvc}
        # Arrow sizes its thread pool by OMP_NUM_THREADS; child_env's one BLAS thread would make
        # both sides' Parquet single-threaded, which no user's setup does.
        env.pop("OMP_NUM_THREADS")
        print("\n".join(machine_lines()), flush=True)
        nbm = run_side(SCRIPT, "nbmlops", asdict(sizes), env)
        print(f"          after the nbmlops side: {machine_load()}", flush=True)
        peer = run_side(SCRIPT, "dvc", asdict(sizes), env)
    print(
        f"versions: python {platform.python_version()}, nbmlops {version('nbmlops')}, deltalake "
        f"{version('deltalake')}, pyarrow {version('pyarrow')}, pandas {version('pandas')}, "
        f"DVC {peer['dvc_version'].strip()}"
    )
    print(
        f"data:     {sizes.rows:,} rows x ({sizes.columns} float64 + int64 key), "
        f"{nbm['frame_bytes'] / 2**30:.3f} GiB in memory; a version: {nbm['version_files']} "
        f"Parquet file(s), {nbm['version_bytes'] / 1e9:.3f} GB; the DVC Parquet file "
        f"{peer['file_bytes'] / 1e9:.3f} GB, the CSV {peer['csv_bytes'] / 1e9:.3f} GB; "
        f"appends of {sizes.append_rows:,} rows" + (" (--quick)" if quick else "")
    )
    print()
    print("\n".join(table(rows(sizes, nbm, peer))))
    print()
    print("\n".join(parts(nbm)))
    print(
        f"\nstorage: Delta table {nbm['table_disk'] / 1e9:.3f} GB on disk in "
        f"{nbm['table_files']} files, the whole store {nbm['store_disk'] / 1e9:.3f} GB (two "
        f"copies when saves > 1); DVC cache {peer['cache_disk'] / 1e9:.3f} GB"
    )
    med = statistics.median
    print(
        f"DVC CSV: pyarrow write_csv {fmt_time(peer['csv_write'])}, first dvc add "
        f"{fmt_time(peer['csv_add'])}, append {fmt_time(med(peer['csv_append']))}, dvc add after "
        f"it {fmt_time(med(peer['csv_append_add']))}"
    )
    print(
        "spread: save "
        + ", ".join(map(fmt_time, nbm["save"]))
        + "; to_parquet + dvc add "
        + ", ".join(fmt_time(a + b) for a, b in zip(peer["to_parquet"], peer["add"], strict=True))
    )
    print("        append " + ", ".join(map(fmt_time, nbm["append"])))
    print("        dvc add after a rewrite " + ", ".join(map(fmt_time, peer["append_add"])))
    print("        load " + ", ".join(map(fmt_time, nbm["load"])))
    if nbm["diff"]["available"]:
        times = ", ".join(map(fmt_time, nbm["diff"]["times"]))
        print(f"        diff {times}: {nbm['diff']['summary']}")
    else:
        print("case 4: not available (nbm.dataset_diff is not in this tree yet)")
    status = nbm["pyarrow_read_exit"]
    print(
        "exit status (issue item 8): the nbmlops side (save, append, load of a "
        f"{nbm['table_files']}-file table) exited 0; deltalake's own "
        f"DeltaTable(...).to_pyarrow_table() on that table exited {status}"
        + ("" if status == 0 else " (the dependency's abort: nbmlops does not read that way)")
    )
    print(
        f"\nmedians (diff: best of 3). total {time.perf_counter() - started:.0f} s; at end: "
        f"{machine_load()}"
    )


if __name__ == "__main__":
    main()
