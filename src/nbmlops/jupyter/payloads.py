"""The JSON bodies the REST handlers send, built from the plain Python API.

Nothing here knows about tornado or Jupyter: each function takes a :class:`Location` (where the
store is) and request values already checked by the handler, calls ``nbmlops`` as a user would,
and returns plain JSON values. Times become ISO 8601 strings in UTC to the millisecond
(``2026-11-01T12:00:00.000Z``), NaN and missing values become ``null``. The functions block
(SQLite), so the handlers run them off the event loop.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbmlops
from nbmlops import config
from nbmlops.errors import NotFoundError
from nbmlops.store import find_home, resolve_home

if TYPE_CHECKING:
    import pandas as pd

API_VERSION = 1
"""The REST API's version. A front end sends the one it was built for as ``?api=``; the server
refuses a different one with 409 rather than answering in a shape the front end cannot read."""

JSON = Any  # a value json.dumps accepts: dict, list, str, int, float, bool or None

_TIME_KEYS = ("start_time", "end_time", "created_at", "first_run", "last_run", "at", "timestamp")


@dataclass(frozen=True)
class Location:
    """Where the store a request reads lives, and the server's root folder (as the server
    names it: kernels record notebook paths under that name, symbolic links unresolved)."""

    home: Path
    root_dir: Path

    @property
    def db_path(self) -> Path:
        return self.home / config.DB_FILENAME

    @property
    def exists(self) -> bool:
        return self.db_path.is_file()

    def require(self) -> Path:
        """The store's folder; NotFoundError when there is no store there yet. The server never
        creates a store: opening JupyterLab in a folder must not leave ``.nbmlops/`` behind."""
        if not self.exists:
            raise NotFoundError(
                f"No nbmlops store at {self.home} yet. Run a %%track cell (after %load_ext "
                "nbmlops) or nbmlops.start_run() in a notebook under this folder, or point the "
                "server at a store with NBMLOPS_HOME or c.NbmlopsExtension.store."
            )
        return self.home


def locate_store(
    root_dir: Path, configured: str, near: str | None = None, parameter: str = "path"
) -> Location:
    """The store a request reads: the configured one (``c.NbmlopsExtension.store``, relative to
    the root), else ``NBMLOPS_HOME``, else the nearest ``.nbmlops/`` walking up from ``near`` (a
    notebook or folder path inside the root, as the front end names it; this is the store a
    kernel started for that notebook finds) or from the server's root, else ``<root>/.nbmlops``.
    """
    if configured:
        return Location(resolve_home(root_dir / Path(configured).expanduser()), root_dir)
    start = root_dir
    if near:
        start = within_root(root_dir, near, parameter)
        if not start.is_dir():
            start = start.parent
    return Location(find_home(start), root_dir)


class BadParameter(ValueError):
    """A request parameter that cannot be used; ``parameter`` names it (the handlers answer
    400)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


def within_root(root: Path, path: str, parameter: str = "path") -> Path:
    """``path`` (relative to the server root, as the front end names files) resolved; it must
    stay inside the root."""
    given = Path(path).expanduser()
    resolved = (given if given.is_absolute() else root / given).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise BadParameter(parameter, f"{path!r} is outside the server's root folder {root}.")
    return resolved


# -- JSON conversion --------------------------------------------------------------------------


def jsonable(value: Any) -> JSON:
    """``value`` with every pandas, numpy and datetime value made JSON-safe."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    import pandas as pd

    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, dt.datetime):
        return iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        return jsonable(value.tolist())  # numpy scalars and arrays
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def iso(moment: dt.datetime | float | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, to the millisecond; epoch seconds are accepted, naive
    datetimes are read as UTC."""
    if moment is None or (isinstance(moment, float) and not math.isfinite(moment)):
        return None
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.fromtimestamp(float(moment), dt.UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    # Milliseconds: what every JavaScript Date parser reads (pandas would give nanoseconds).
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _with_times(row: Mapping[str, Any]) -> dict[str, JSON]:
    """A store row with its epoch-second time columns as ISO strings."""
    out = {}
    for key, value in row.items():
        is_time = key in _TIME_KEYS and isinstance(value, int | float)
        out[str(key)] = iso(float(value)) if is_time else jsonable(value)
    return out


def records(frame: pd.DataFrame) -> list[dict[str, JSON]]:
    """A DataFrame as a list of JSON-safe records."""
    return [
        {str(k): jsonable(v) for k, v in row.items()} for row in frame.to_dict(orient="records")
    ]


# -- version ------------------------------------------------------------------------------------


def version(location: Location) -> dict[str, JSON]:
    return {
        "version": nbmlops.__version__,
        "api": API_VERSION,
        "store": str(location.home),
        "store_exists": location.exists,
        # The front end joins it with a notebook's path to tell the kernel where it runs.
        "root_dir": str(location.root_dir),
    }


def api_mismatch_message(expected: int) -> str:
    return (
        f"The nbmlops JupyterLab extension expects REST API version {expected}, but the nbmlops "
        f"server extension (nbmlops {nbmlops.__version__}) serves version {API_VERSION}. Install "
        "the same nbmlops version for both (pip install -U nbmlops in the environment that runs "
        "Jupyter), restart Jupyter and reload the page."
    )


# -- runs ---------------------------------------------------------------------------------------


def filter_string(text: str) -> str:
    """``text`` as a string literal of the filter language (backslashes and quotes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def notebook_paths(location: Location, notebook: str) -> list[str]:
    """The absolute paths a notebook may be recorded under: runs store the path the kernel saw
    (its folder joined with the name the front end gave), which may or may not be resolved."""
    given = Path(notebook)
    joined = given if given.is_absolute() else location.root_dir / given
    paths = [str(joined), os.path.abspath(joined), str(joined.resolve())]
    return list(dict.fromkeys(paths))


def _notebook_filter(location: Location, notebook: str) -> str:
    paths = ", ".join(filter_string(p) for p in notebook_paths(location, notebook))
    return f"notebook IN ({paths})"


def runs(
    location: Location,
    filter: str | None,
    experiment: str | None,
    notebook: str | None,
    limit: int,
    offset: int,
) -> dict[str, JSON]:
    """Runs newest first, as ``nbmlops.runs()`` returns them, one page of them."""
    if not location.exists:
        return {"total": 0, "offset": offset, "limit": limit, "columns": [], "runs": []}
    text = (filter or "").strip()
    if text:
        from nbmlops.filter import parse_filter

        parse_filter(text)  # a FilterSyntaxError points into the user's text, not ours
    if notebook:
        only_notebook = _notebook_filter(location, notebook)
        text = f"({text}) AND {only_notebook}" if text else only_notebook
    frame = nbmlops.runs(text or None, experiment, store=location.require())
    page = frame.iloc[offset : offset + limit]
    return {
        "total": len(frame),
        "offset": offset,
        "limit": limit,
        "columns": [str(c) for c in frame.columns],
        "runs": records(page),
    }


def run(location: Location, run_id: str) -> dict[str, JSON]:
    """One run: its attributes, params, metrics, tags, datasets, artifacts, cell source and
    environment."""
    found = nbmlops.get_run(run_id, store=location.require())
    info = found.info
    return {
        "run_id": found.run_id,
        "info": _with_times(info),
        "params": jsonable(found.params),
        "metrics": jsonable(found.metrics),
        "tags": jsonable(found.tags),
        "datasets": jsonable(found.datasets),
        "artifacts": [_with_times(a) for a in found.artifacts],
        "cell_source": found.cell_source,
        "environment": None if found.environment is None else _with_times(found.environment),
    }


def metric_history(location: Location, run_id: str, key: str) -> dict[str, JSON]:
    found = nbmlops.get_run(run_id, store=location.require())
    history = found.metric_history(key)
    if history.empty:
        known = ", ".join(found.metrics) or "none"
        raise NotFoundError(f"Run {found.run_id} has no metric {key!r}; its metrics: {known}.")
    return {"run_id": found.run_id, "key": key, "history": records(history)}


def lineage(location: Location, run_id: str) -> dict[str, JSON]:
    result: dict[str, JSON] = jsonable(asdict(nbmlops.lineage(run_id, store=location.require())))
    return result


def compare(location: Location, run_ids: list[str]) -> dict[str, JSON]:
    """Params that differ, metrics with the best run, datasets same or different, the
    environment differences and the cell-source diff of the first run against each other."""
    from nbmlops.compare import lower_is_better

    comparison = nbmlops.compare_runs(*run_ids, store=location.require())
    labels = comparison.labels
    metrics = comparison.metrics()
    datasets = comparison.datasets()
    return {
        "runs": [{"run_id": r.run_id, "name": r.name, "status": r.status} for r in comparison.runs],
        "params": jsonable(comparison.params().to_dict(orient="index")),
        "metrics": {
            str(key): {
                "values": jsonable(row[labels].to_dict()),
                "best": jsonable(row["best"]),
                "lower_is_better": lower_is_better(str(key)),
            }
            for key, row in metrics.iterrows()
        },
        "datasets": {
            str(key): {"values": jsonable(row[labels].to_dict()), "same": bool(row["same"])}
            for key, row in datasets.iterrows()
        },
        "environment": jsonable(comparison.environment().to_dict(orient="index")),
        "source_diffs": [
            {"a": labels[0], "b": labels[i], "lines": comparison.source_diff(0, i)}
            for i in range(1, len(labels))
        ],
    }


# -- cells --------------------------------------------------------------------------------------


def cell_history(location: Location, run_or_cell: str) -> dict[str, JSON]:
    frame = nbmlops.cell_history(run_or_cell, store=location.require())
    return {
        "notebook": frame.attrs.get("notebook"),
        "cell_id": frame.attrs.get("cell_id"),
        "versions": records(frame),
    }


def cell_diff(location: Location, a: str, b: str) -> dict[str, JSON]:
    diff = nbmlops.cell_diff(a, b, store=location.require())
    return {"a": diff.a_label, "b": diff.b_label, "same": diff.same, "lines": diff.lines}


def latest_cells(location: Location, notebook: str) -> dict[str, JSON]:
    """For each tracked cell of ``notebook``, its newest run and how many versions it has had:
    what the per-cell badges of a notebook need, in one request.

    The headline metric is the one the run logged first, the one the ``%%track`` summary line
    shows first. Cells that were executed but never tracked have no run and are not listed.
    """
    body: dict[str, JSON] = {"notebook": notebook, "cells": {}}
    if not location.exists:
        return body
    home = location.require()
    frame = nbmlops.runs(_notebook_filter(location, notebook), store=home)
    frame = frame[frame["cell_id"].notna()].drop_duplicates("cell_id")  # newest first
    metric_columns = [c for c in frame.columns if str(c).startswith("metrics.")]
    cells: dict[str, JSON] = {}
    for row in frame.to_dict(orient="records"):
        run_id = str(row["run_id"])
        metrics = {str(c)[len("metrics.") :]: row[c] for c in metric_columns if _present(row[c])}
        cells[str(row["cell_id"])] = {
            "run_id": run_id,
            "name": jsonable(row["name"]),
            "status": row["status"],
            "start_time": jsonable(row["start_time"]),
            "end_time": jsonable(row["end_time"]),
            "duration_s": jsonable(row["duration_s"]),
            "headline": _headline(home, run_id, metrics),
            "metrics": jsonable(metrics),
            **_versions(home, run_id),
        }
    body["cells"] = cells
    return body


def _versions(home: Path, run_id: str) -> dict[str, JSON]:
    """The cell version the run ran (1, 2, ...), how many versions and executions the cell has
    had, and when it last ran, tracked or not."""
    try:
        history = nbmlops.cell_history(run_id, store=home)
    except NotFoundError:  # a run whose cell executions were not recorded
        return {"version": None, "versions": 0, "executions": 0, "last_executed": None}
    ran = [
        int(v) for v, ids in zip(history["version"], history["runs"], strict=True) if run_id in ids
    ]
    return {
        "version": ran[0] if ran else None,
        "versions": len(history),
        "executions": int(history["executions"].sum()),
        "last_executed": jsonable(history["last_run"].max()),
    }


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _headline(home: Path, run_id: str, metrics: Mapping[str, Any]) -> JSON:
    if not metrics:
        return None
    found = nbmlops.get_run(run_id, store=home)
    first_logged = {key: found.metric_history(key)["timestamp"].min() for key in metrics}
    key = min(first_logged, key=lambda k: (first_logged[k], k))
    return {"key": key, "value": jsonable(metrics[key])}


# -- models and drift ---------------------------------------------------------------------------


def models(location: Location) -> dict[str, JSON]:
    if not location.exists:
        return {"models": []}
    return {"models": records(nbmlops.models(store=location.require()))}


def model(location: Location, name: str) -> dict[str, JSON]:
    home = location.require()
    return {
        "name": name,
        "versions": records(nbmlops.model_versions(name, store=home)),
        "history": records(nbmlops.model_history(name, store=home)),
    }


def drift_reports(
    location: Location,
    run_id: str | None,
    model_name: str | None,
    model_version: int | None,
    limit: int,
) -> dict[str, JSON]:
    """Stored drift reports, newest first (``nbmlops.drift.drift_reports``)."""
    if not location.exists:
        return {"reports": []}
    from nbmlops.drift import drift_reports as stored_reports

    store = nbmlops.get_store(location.require())
    if run_id is not None:
        run_id = store.resolve_run_id(run_id)
    frame = stored_reports(
        store, run_id=run_id, model_name=model_name, model_version=model_version, limit=limit
    )
    return {"reports": records(frame)}


def drift_report(location: Location, report_id: str) -> dict[str, JSON]:
    """One stored report with its per-column results."""
    from nbmlops.drift import load_report

    report = load_report(nbmlops.get_store(location.require()), report_id)
    body: dict[str, JSON] = jsonable(report.to_dict())
    body["created_at"] = iso(report.created_at)
    return body
