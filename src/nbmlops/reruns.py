"""Verified re-run of a tracked run (issue #18 item 5): rebuild it from what was recorded, run it
in a fresh kernel, and say whether it reproduced.

What made a run's result is the state its kernel had when the ``%%track`` cell ran, so the
rebuilt notebook replays what that kernel actually executed, in order and at the recorded source
versions (``cell_executions``, the same query as ``nbm.cells_before``), not the notebook as it
is saved now: a cell run twice is replayed twice, a cell edited since is replayed as it was. Cells
that raised in the original kernel are skipped and the skip is reported (they may have changed
state before raising). The cells executed before ``%load_ext nbmlops`` are not recorded (the
extension was not listening); their number is known from the first recorded ``In [n]``, and the
cells above the first recorded one in the run's notebook snapshot (the ``notebook`` artifact)
stand in for them, which is reported too: the order of those is a guess.

The notebook is executed by :func:`nbmlops.headless.execute_notebook` against the same store, so
the re-run is itself a tracked run. It is written under the original's file name to a temporary
folder (the default experiment, the notebook's name, is then the original's), and a first
injected cell moves the kernel to the original notebook's folder, when it still exists, so
relative data paths resolve as they did; then it loads the extension. A last injected cell
reports, changing nothing, which scikit-learn estimators the run's cell assigned have
``random_state=None``. After the run this module tags the new run ``nbmlops.rerun_of = <run id>``
(and the runs the replayed earlier tracked cells made ``nbmlops.replayed_for``), so listings can
tell re-runs from new work; the cell's own source, and so its cell version, is exactly the
recorded one (a tag on its ``%%track`` line would have changed it).

The outcome, like DVC's ``repro`` but comparing what came out: ``reproduced`` when each input
dataset the run read has its recorded fingerprint again and each metric (latest value per key)
is within the tolerance, ``|a - b| <= tolerance * max(1, |a|)`` (absolute near zero, relative
above one); ``differs`` with each difference named; ``unverified`` when it ran cleanly but the
run recorded no metrics, so nothing was compared; ``could_not_run`` with the reason (the cell
that raised, its error). Nondeterminism is listed, never hidden: unseeded estimators, global
random generators used without a seed call in the replayed source, several threads, library
versions that differ from the recorded environment's.
"""

from __future__ import annotations

import ast
import html
import json
import math
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nbmlops.capture.environment import current_user
from nbmlops.capture.liveness import hostname
from nbmlops.store import Store
from nbmlops.store import cells as cell_store
from nbmlops.store import reviews as review_store
from nbmlops.store import runs as run_store

Outcome = Literal["reproduced", "differs", "unverified", "could_not_run"]
RERUN_OF_TAG = "nbmlops.rerun_of"
REPLAYED_FOR_TAG = "nbmlops.replayed_for"
_PROBE_MARK = "nbmlops-rerun-probe:"
_CELL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what nbformat 4.5 accepts as a cell id
_THREAD_PARAMS = {"n_jobs", "nthread", "num_threads", "thread_count"}


@dataclass(frozen=True)
class RerunResult:
    """The outcome of one verified re-run (a ``reruns`` row) and the new run it made."""

    rerun_id: int
    run_id: str
    new_run_id: str | None
    outcome: Outcome
    tolerance: float
    differences: tuple[str, ...] = ()
    metrics: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    inputs: tuple[Mapping[str, Any], ...] = ()
    nondeterminism: tuple[str, ...] = ()
    reason: str | None = None
    notebook: str | None = None  # sha256 of the executed re-run notebook in objects/

    def __str__(self) -> str:
        again = f" (re-run {self.new_run_id[:6]})" if self.new_run_id else ""
        head = f"run {self.run_id[:6]}"
        if self.outcome == "reproduced":
            n = len(self.metrics)
            return (
                f"{head} reproduced: {n} metric{'' if n == 1 else 's'} within "
                f"{self.tolerance:g}{again}"
            )
        if self.outcome == "unverified":
            return (
                f"{head} ran again, but nothing was verified: it recorded no metrics to compare"
                f"{again}"
            )
        if self.outcome == "differs":
            more = len(self.differences) - 1
            extra = f" (and {more} more)" if more else ""
            return f"{head} differs: {self.differences[0]}{extra}{again}"
        return f"{head} could not run: {self.reason}{again}"

    def _repr_html_(self) -> str:
        items = [
            ("Differences", self.differences),
            ("Nondeterminism", self.nondeterminism),
        ]
        lists = "".join(
            f"<p>{title}:</p><ul>{''.join(f'<li>{html.escape(x)}</li>' for x in values)}</ul>"
            for title, values in items
            if values
        )
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{a}</td><td>{b}</td></tr>"
            for k, (a, b) in sorted(self.metrics.items())
        )
        table = (
            f"<table><tr><th>metric</th><th>recorded</th><th>re-run</th></tr>{rows}</table>"
            if rows
            else ""
        )
        return f"<div><p><b>{html.escape(str(self))}</b></p>{table}{lists}</div>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rerun_id": self.rerun_id,
            "run_id": self.run_id,
            "new_run_id": self.new_run_id,
            "outcome": self.outcome,
            "tolerance": self.tolerance,
            "differences": list(self.differences),
            "metrics": {k: list(v) for k, v in self.metrics.items()},
            "inputs": [dict(i) for i in self.inputs],
            "nondeterminism": list(self.nondeterminism),
            "reason": self.reason,
            "notebook": self.notebook,
        }


@dataclass(frozen=True)
class _Cell:
    """One cell of the rebuilt notebook, and how to name it in a reason."""

    source: str
    cell_id: str | None
    label: str


@dataclass
class _Plan:
    cells: list[_Cell]
    notes: list[str]  # what the rebuild could not replay exactly


def rerun(store: Store, run_id: str, *, tolerance: float = 1e-6, timeout: int = 600) -> RerunResult:
    """Re-run ``run_id`` (or a unique prefix) in a fresh kernel from what was recorded, compare
    its inputs and metrics with the recorded ones, record the outcome in ``reruns`` and return
    it. ``timeout`` is per cell, in seconds."""
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance must be a finite number >= 0, not {tolerance!r}.")
    full_id = store.resolve_run_id(run_id)
    row = run_store.run_row(store, full_id)
    started = time.time()
    own = review_store.execution_of_run(store, full_id)
    source = cell_store.cell_source(store, row["cell_version"]) if row["cell_version"] else None
    if own is None or source is None:
        reason = (
            f"run {full_id} was not made by a notebook cell (a start_run block or a script), "
            "so there are no recorded cells to replay; only %%track runs can be re-run"
        )
        return _record(store, full_id, tolerance, started, reason=reason)
    plan = _plan(store, row, own, source)
    executed = _execute(store, plan, row["notebook"], timeout)
    new_runs = review_store.runs_in_notebook(store, executed.path)
    mine = [r for r in new_runs if r["cell_version"] == row["cell_version"]]
    new_run_id = str(mine[-1]["run_id"]) if mine else None
    for made in new_runs:
        tag = RERUN_OF_TAG if made["run_id"] == new_run_id else REPLAYED_FOR_TAG
        run_store.write_run_data(store, made["run_id"], tags=[(tag, full_id)])
    inputs = _inputs(store, full_id, new_run_id)
    nondeterminism = [
        *plan.notes,
        *_scan_sources([c.source for c in plan.cells]),
        *executed.unseeded,
        *_thread_params(store, full_id),
        *_environment_changes(store, row["environment_id"], new_run_id),
    ]
    return _record(
        store,
        full_id,
        tolerance,
        started,
        new_run_id=new_run_id,
        reason=executed.error,
        inputs=inputs,
        recorded=_metrics(store, full_id),
        again=_metrics(store, new_run_id),
        nondeterminism=nondeterminism,
        notebook=executed.sha256,
    )


def _plan(store: Store, run: Mapping[str, Any], own: Mapping[str, Any], source: str) -> _Plan:
    """The cells to replay: what the run's kernel executed before it, then the run's cell."""
    earlier = list(reversed(cell_store.executions_before_run(store, run["run_id"], 1_000_000)))
    notes: list[str] = []
    cells: list[_Cell] = []
    counts = [e["execution_count"] for e in [*earlier, own] if e["execution_count"] is not None]
    first = min(counts, default=1)
    if first > 1:
        first_cell = earlier[0]["cell_id"] if earlier else own["cell_id"]
        cells, note = _unrecorded_prefix(store, run["run_id"], first - 1, str(first_cell))
        notes.extend([note] if note else [])
    for execution in earlier:
        label = f"In [{execution['execution_count']}] (cell {execution['cell_id']})"
        if execution["status"] != "ok":
            notes.append(
                f"{label} was skipped: it ended '{execution['status']}' in the original kernel "
                "and may have changed state before it stopped"
            )
            continue
        cells.append(_Cell(execution["source"], execution["cell_id"], label))
    own_label = f"In [{own['execution_count']}] (the run's cell {own['cell_id']})"
    cells.append(_Cell(source, own["cell_id"], own_label))
    return _Plan(cells, notes)


def _unrecorded_prefix(
    store: Store, run_id: str, missing: int, first_cell: str
) -> tuple[list[_Cell], str | None]:
    """Stand-ins for the ``missing`` cells executed before nbmlops recorded any: the code cells
    above ``first_cell`` in the run's notebook snapshot, the last ``missing`` of them, and a
    note saying so. No note for the usual case, one cell that loads the extension: the cell
    executed last before recording began is the one that loaded it."""
    what = f"In [1]-[{missing}]" if missing > 1 else "In [1]"
    snapshot = next(
        (a for a in run_store.artifacts_of(store, run_id) if a["kind"] == "notebook"), None
    )
    code: list[Any] = []
    if snapshot is not None:
        notebook = json.loads(store.objects.read_verified(snapshot["sha256"]))
        code = [c for c in notebook.get("cells", []) if c.get("cell_type") == "code"]
    ids = [c.get("id") for c in code]
    if first_cell not in ids:
        return [], (
            f"{what} ran before nbmlops recorded cells (before %load_ext nbmlops) and could not "
            "be rebuilt: the run's notebook snapshot does not hold the first recorded cell"
        )
    above = code[: ids.index(first_cell)][-missing:]
    cells = [
        _Cell(_text(c.get("source", "")), c.get("id"), f"cell {c.get('id')} (from the snapshot)")
        for c in above
    ]
    if missing == len(cells) == 1 and "%load_ext nbmlops" in cells[0].source:
        return cells, None
    return cells, (
        f"{what} ran before nbmlops recorded cells (before %load_ext nbmlops): replayed the "
        f"{len(cells)} code cell(s) above the first recorded one in the run's notebook snapshot, "
        "in notebook order, which may not be the order they ran in"
    )


def _text(source: str | list[str]) -> str:
    return source if isinstance(source, str) else "".join(source)


@dataclass(frozen=True)
class _Executed:
    path: str  # where the rebuilt notebook was (the new runs' notebook)
    sha256: str | None
    error: str | None
    unseeded: list[str]


def _execute(store: Store, plan: _Plan, original: str | None, timeout: int) -> _Executed:
    import nbformat
    from nbclient.exceptions import CellExecutionError

    from nbmlops.headless import execute_notebook

    notebook = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    # The rebuilt notebook has the original's file name (so the re-run's default experiment is
    # the original's) in a folder of its own; the kernel then moves to the original's folder, so
    # relative paths resolve as they did, and the user's folder gets no file of ours.
    workdir = Path(original).parent if original else None
    setup = "%load_ext nbmlops"
    if workdir is not None and workdir.is_dir():
        setup = f"__import__('os').chdir({str(workdir)!r})\n{setup}"
    cells = [_Cell(setup, None, "the injected setup cell"), *plan.cells]
    cells.append(_Cell(_probe_source(plan.cells[-1].source), None, "the injected probe cell"))
    own_id = plan.cells[-1].cell_id
    used: set[str] = set()
    for cell in cells:
        node = nbformat.v4.new_code_cell(cell.source)  # type: ignore[no-untyped-call]
        # The recorded id, so the re-run is a run of the same cell; a fresh one where the id is
        # taken (a cell replayed twice, or the run's own cell replayed earlier) or is not valid.
        wanted = cell.cell_id
        free = wanted not in used and (cell is plan.cells[-1] or wanted != own_id)
        if wanted and _CELL_ID.match(wanted) and free:
            node.id = wanted
        used.add(node.id)
        notebook.cells.append(node)
    folder = Path(tempfile.mkdtemp(prefix="nbmlops-rerun-"))
    path = folder / (Path(original).name if original else "rerun.ipynb")
    output = folder / "executed" / path.name
    error: str | None = None
    try:
        output.parent.mkdir()
        nbformat.write(notebook, path)  # type: ignore[no-untyped-call]
        try:
            execute_notebook(path, output, timeout=timeout, store=store.home)
        except CellExecutionError as exc:
            error = _failure(output, cells, exc)
        except Exception as exc:  # a dead kernel, a timeout: the run could not be replayed
            error = f"the re-run stopped: {type(exc).__name__}: {str(exc).strip()[:500]}"
        data = output.read_bytes() if output.exists() else None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    sha256 = store.objects.put_bytes(data)[0] if data is not None else None
    unseeded = [] if data is None else _probe_findings(json.loads(data))
    return _Executed(str(path.resolve()), sha256, error, unseeded)


def _failure(output: Path, cells: Sequence[_Cell], exc: Any) -> str:
    """Which replayed cell raised, and its error, from the executed copy nbclient left."""
    import nbformat

    where = "a replayed cell"
    if output.exists():
        executed = nbformat.read(output, as_version=4)  # type: ignore[no-untyped-call]
        for index, node in enumerate(executed.cells):
            if any(o.get("output_type") == "error" for o in node.get("outputs", [])):
                first_line = cells[index].source.strip().splitlines()[0][:80]
                where = f"{cells[index].label}, `{first_line}`"
                break
    message = str(getattr(exc, "evalue", "") or "").strip()
    return f"{where} raised {getattr(exc, 'ename', type(exc).__name__)}: {message}"


def _probe_source(cell_source: str) -> str:
    """A last cell that reports the scikit-learn estimators the run's cell assigned whose
    ``random_state`` (at any depth) is None; it reads them, changes nothing, and cleans up."""
    names = sorted(_assigned_names(cell_source))
    return (
        "# nbmlops re-run: which estimators of the run's cell are unseeded (reported only)\n"
        "def _nbmlops_probe(names):\n"
        "    import json, sys\n"
        "    base = sys.modules.get('sklearn.base')\n"
        "    found = []\n"
        "    for name in names:\n"
        "        value = globals().get(name)\n"
        "        if base is None or not isinstance(value, base.BaseEstimator):\n"
        "            continue\n"
        "        params = value.get_params(deep=True)\n"
        "        keys = sorted(k for k, v in params.items()\n"
        "                      if k.split('__')[-1] == 'random_state' and v is None)\n"
        "        if keys:\n"
        "            found.append([name, type(value).__name__, keys])\n"
        f"    print({_PROBE_MARK!r}, json.dumps(found))\n"
        f"_nbmlops_probe({names!r})\n"
        "del _nbmlops_probe\n"
    )


def _probe_findings(notebook: Mapping[str, Any]) -> list[str]:
    found: list[list[Any]] = []
    for output in notebook["cells"][-1].get("outputs", []):
        for line in _text(output.get("text", "")).splitlines():
            if line.startswith(_PROBE_MARK):
                found = json.loads(line[len(_PROBE_MARK) :])
    return [
        f"{cls} in `{name}` has random_state=None"
        + (f" ({', '.join(keys)})" if keys != ["random_state"] else "")
        + ": each fit draws other random numbers; pass random_state=<int>"
        for name, cls, keys in found
    ]


def _python_only(source: str) -> str:
    """The source with IPython's magic and shell lines blanked (line numbers kept)."""
    lines = source.splitlines()
    if lines and lines[0].startswith("%%"):
        lines[0] = ""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(_python_only(source))
    except SyntaxError:
        return None


def _assigned_names(source: str) -> set[str]:
    tree = _parse(source)
    if tree is None:
        return set()
    return {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    }


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        parent = _dotted(node.value)
        return None if parent is None else f"{parent}.{node.attr}"
    return None


# Global generators: a call on the module draws from a state only its seed call fixes.
_GLOBAL_STATES = {
    "random": ("random.seed", "Python's random module"),
    "np.random": ("np.random.seed", "numpy's global random state"),
    "numpy.random": ("numpy.random.seed", "numpy's global random state"),
    "torch": ("torch.manual_seed", "torch's global generator"),
}
_NOT_DRAWS = {"seed", "default_rng", "RandomState", "Generator", "SeedSequence", "get_state"}
_TORCH_DRAWS = {"rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial"}


def _scan_sources(sources: Sequence[str]) -> list[str]:
    """Global random generators drawn from in the replayed source with no seed call anywhere in
    it, and generators made without a seed (``default_rng()``): a static scan, so a draw inside a
    library the cells call is not seen."""
    calls: list[tuple[str, bool]] = []  # (dotted name, called with arguments)
    for source in sources:
        tree = _parse(source)
        if tree is not None:
            calls.extend(
                (name, bool(node.args or node.keywords))
                for node in ast.walk(tree)
                if isinstance(node, ast.Call) and (name := _dotted(node.func))
            )
    seeded = {_short(name) for name, _ in calls if name.endswith((".seed", "manual_seed"))}
    found: dict[str, str] = {}
    for name, with_arguments in calls:
        module, _, draw = name.rpartition(".")
        if draw == "default_rng":
            if not with_arguments:
                found.setdefault(name, f"{name}() without a seed: a new random stream each run")
            continue
        if module not in _GLOBAL_STATES or draw in _NOT_DRAWS:
            continue
        if module == "torch" and draw not in _TORCH_DRAWS:
            continue
        seed_call, what = _GLOBAL_STATES[module]
        if _short(seed_call) not in seeded:
            found.setdefault(
                _short(seed_call), f"{what} used ({name}) but {seed_call}() is never called"
            )
    return list(found.values())


def _short(name: str) -> str:
    return name.replace("numpy.", "np.", 1) if name.startswith("numpy.") else name


def _thread_params(store: Store, run_id: str) -> list[str]:
    return [
        f"{p.key} = {p.value}: several threads; sums in another order can change the last bits"
        for p in run_store.params_of(store, run_id)
        if p.key.rpartition(".")[2] in _THREAD_PARAMS and p.value_num not in (None, 1)
    ]


def _environment_changes(
    store: Store, environment_id: str | None, new_run_id: str | None
) -> list[str]:
    if environment_id is None or new_run_id is None:
        return []
    new_env = run_store.run_row(store, new_run_id)["environment_id"]
    before, after = (
        run_store.environment(store, e) if e else None for e in (environment_id, new_env)
    )
    if before is None or after is None:
        return []
    changes = []
    if before["python"] != after["python"]:
        changes.append(f"Python {before['python']} recorded, {after['python']} in the re-run")
    old, new = (json.loads(e["packages"] or "{}") for e in (before, after))
    for name in sorted(old.keys() | new.keys()):
        if old.get(name) != new.get(name):
            was, now = old.get(name, "absent"), new.get(name, "absent")
            changes.append(f"{name} {was} recorded, {now} in the re-run")
    return changes


def _inputs(store: Store, run_id: str, new_run_id: str | None) -> list[dict[str, Any]]:
    """Each input the run read, by name: its recorded fingerprint and the re-run's."""
    found = {}
    if new_run_id is not None:
        found = {
            d["name"]: d["dataset_id"]
            for d in run_store.datasets_of(store, new_run_id)
            if d["role"] == "input"
        }
    return [
        {"name": d["name"], "recorded": d["dataset_id"], "found": found.get(d["name"])}
        for d in run_store.datasets_of(store, run_id)
        if d["role"] == "input"
    ]


Metrics = dict[str, float | None]  # latest value per key; None is NaN, as in the store


def _metrics(store: Store, run_id: str | None) -> Metrics:
    if run_id is None:
        return {}
    return {m.key: m.value for m in run_store.latest_metrics_of(store, run_id)}


def find_differences(
    recorded: Metrics, again: Metrics, inputs: Sequence[Mapping[str, Any]], tolerance: float
) -> list[str]:
    """What differs between a run and its re-run: each input (``name``, ``recorded``,
    ``found`` fingerprints) read with other data or not read, each metric missing, new, or
    further apart than ``tolerance * max(1, |recorded|)``. NaN (None) equals NaN."""
    out = []
    for item in inputs:
        name, was, found = item["name"], item["recorded"], item["found"]
        if found is None:
            out.append(f"input {name} (recorded {was[:12]}) was not read by the re-run")
        elif found != was:
            out.append(f"input {name}: the data moved (recorded {was[:12]}, found {found[:12]})")
    for key in sorted(recorded.keys() | again.keys()):
        if key not in again:
            out.append(f"metric {key} = {recorded[key]!r} was not logged by the re-run")
        elif key not in recorded:
            out.append(f"metric {key} = {again[key]!r} is new in the re-run")
        else:
            a, b = recorded[key], again[key]
            same = a is None and b is None
            if not same and (a is None or b is None or abs(a - b) > tolerance * max(1.0, abs(a))):
                out.append(f"metric {key}: recorded {a!r}, re-run {b!r}")
    return out


def _record(
    store: Store,
    run_id: str,
    tolerance: float,
    started: float,
    *,
    new_run_id: str | None = None,
    reason: str | None = None,
    inputs: Sequence[Mapping[str, Any]] = (),
    recorded: Metrics | None = None,
    again: Metrics | None = None,
    nondeterminism: Sequence[str] = (),
    notebook: str | None = None,
) -> RerunResult:
    recorded, again = recorded or {}, again or {}
    metrics = {k: (recorded.get(k), again.get(k)) for k in sorted(recorded.keys() | again.keys())}
    differences = [] if reason else find_differences(recorded, again, inputs, tolerance)
    outcome: Outcome = (
        "could_not_run"
        if reason
        else "differs"
        if differences
        else "unverified"
        if not recorded  # a run with no metrics: a clean re-run proves nothing about it
        else "reproduced"
    )
    row = {
        "run_id": run_id,
        "new_run_id": new_run_id,
        "outcome": outcome,
        "tolerance": tolerance,
        "metrics": {k: list(v) for k, v in metrics.items()},
        "differences": differences,
        "inputs": [dict(i) for i in inputs],
        "nondeterminism": list(nondeterminism),
        "reason": reason,
        "notebook": notebook,
        "actor": current_user(),
        "host": hostname(),
        "started_at": started,
        "finished_at": time.time(),
    }
    rerun_id = review_store.add_rerun(store, row)
    return RerunResult(
        rerun_id=rerun_id,
        run_id=run_id,
        new_run_id=new_run_id,
        outcome=outcome,
        tolerance=tolerance,
        differences=tuple(differences),
        metrics=metrics,
        inputs=tuple(dict(i) for i in inputs),
        nondeterminism=tuple(nondeterminism),
        reason=reason,
        notebook=notebook,
    )
