"""The JSON bodies the REST handlers send, built from the plain Python API and the domain.

Nothing here knows about tornado or Jupyter: each function takes a :class:`Location` (where the
store is) and request values already checked by the handler, makes one call to
:mod:`nbmlops.api` (or to :mod:`nbmlops.listings` for pages and per-cell badges, which are
decided there and read with a fixed number of queries), and returns plain JSON values. Times
become ISO 8601 strings in UTC to the millisecond (``2026-11-01T12:00:00.000Z``), NaN and
missing values become ``null``. The functions block (SQLite), so the handlers run them off the
event loop.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbmlops import api, config, listings
from nbmlops._version import __version__
from nbmlops.compare import lower_is_better
from nbmlops.errors import NotFoundError
from nbmlops.store import datasets as dataset_sql
from nbmlops.store import find_home, resolve_home
from nbmlops.store import registry as registry_sql
from nbmlops.store import reviews as review_sql

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

    The walk stays inside the root: a store found above it is not served, and neither is a
    ``.nbmlops`` inside it that resolves (a symbolic link) to a folder outside it (400, issue
    #13 item 16). The configured store and ``NBMLOPS_HOME`` are the operator's explicit choice
    and may be anywhere.
    """
    if configured:
        return Location(resolve_home(root_dir / Path(configured).expanduser()), root_dir)
    start = root_dir
    if near:
        start = within_root(root_dir, near, parameter)
        if not _is_dir(start, near, parameter):
            start = start.parent
    home = find_home(start)
    if os.environ.get(config.HOME_ENV):
        return Location(home, root_dir)
    top = root_dir.resolve()
    if not home.is_relative_to(top):  # found above the root: not this server's
        return Location(top / config.STORE_DIRNAME, root_dir)
    target = home.resolve()
    if not target.is_relative_to(top):
        raise BadParameter(
            parameter if near else "path",
            f"The store {home} links to {target}, outside the server's root folder {root_dir}; "
            "the server reads only stores inside its root. Serve that store by naming it: "
            "c.NbmlopsExtension.store or NBMLOPS_HOME.",
        )
    return Location(home, root_dir)


class BadParameter(ValueError):
    """A request parameter that cannot be used; ``parameter`` names it (the handlers answer
    400)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


def within_root(root: Path, path: str, parameter: str = "path") -> Path:
    """``path`` (relative to the server root, as the front end names files) resolved; it must
    stay inside the root and be a path the file system accepts."""
    given = Path(path).expanduser()
    try:
        resolved = (given if given.is_absolute() else root / given).resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # too long, NUL byte, a link loop
        raise _unusable(path, parameter, exc) from None
    if not resolved.is_relative_to(root.resolve()):
        raise BadParameter(parameter, f"{_short(path)} is outside the server's root folder {root}.")
    return resolved


def _is_dir(path: Path, given: str, parameter: str) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError) as exc:  # a name longer than the file system allows
        raise _unusable(given, parameter, exc) from None


def _unusable(path: str, parameter: str, exc: BaseException) -> BadParameter:
    reason = getattr(exc, "strerror", None) or str(exc)
    return BadParameter(parameter, f"{_short(path)} is not a usable path: {reason}.")


def _short(text: str, limit: int = 120) -> str:
    """A request value for a message: quoted, and cut when long."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


# -- JSON conversion --------------------------------------------------------------------------


def json_value(value: Any) -> JSON:
    """``value`` with every pandas, numpy and datetime value made JSON-safe."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    import pandas as pd

    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, dt.datetime):
        return iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        return json_value(value.tolist())  # numpy scalars and arrays
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
        out[str(key)] = iso(float(value)) if is_time else json_value(value)
    return out


def records(frame: pd.DataFrame) -> list[dict[str, JSON]]:
    """A DataFrame as a list of JSON-safe records."""
    return [
        {str(k): json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")
    ]


# -- version ------------------------------------------------------------------------------------


def version(location: Location) -> dict[str, JSON]:
    return {
        "version": __version__,
        "api": API_VERSION,
        "store": str(location.home),
        "store_exists": location.exists,
        # The front end joins it with a notebook's path to tell the kernel where it runs.
        "root_dir": str(location.root_dir),
    }


def api_mismatch_message(expected: int) -> str:
    return (
        f"The nbmlops JupyterLab extension expects REST API version {expected}, but the nbmlops "
        f"server extension (nbmlops {__version__}) serves version {API_VERSION}. Install "
        "the same nbmlops version for both (pip install -U nbmlops in the environment that runs "
        "Jupyter), restart Jupyter and reload the page."
    )


# -- runs ---------------------------------------------------------------------------------------


def notebook_paths(location: Location, notebook: str) -> list[str]:
    """The absolute paths a notebook may be recorded under: runs store the path the kernel saw
    (its folder joined with the name the front end gave), which may or may not be resolved."""
    given = Path(notebook)
    joined = given if given.is_absolute() else location.root_dir / given
    paths = [str(joined), os.path.abspath(joined), str(joined.resolve())]
    return list(dict.fromkeys(paths))


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
    notebooks = notebook_paths(location, notebook) if notebook else None
    store = api.get_store(location.require())
    page = listings.runs_page(store, filter, experiment, notebooks, limit=limit, offset=offset)
    return {
        "total": page.total,
        "offset": offset,
        "limit": limit,
        "columns": [str(c) for c in page.frame.columns],
        "runs": records(page.frame),
    }


def run(location: Location, run_id: str) -> dict[str, JSON]:
    """One run: its attributes, params, metrics, tags, datasets, the named dataset versions it
    used (``customers@3``: loaded, saved, or read as an input with that content), artifacts,
    cell source and environment."""
    home = location.require()
    found = api.get_run(run_id, store=home)
    info = found.info
    used = dataset_sql.versions_used_by(api.get_store(home), found.run_id)
    return {
        "run_id": found.run_id,
        "info": _with_times(info),
        "params": json_value(found.params),
        "metrics": json_value(found.metrics),
        "tags": json_value(found.tags),
        "datasets": json_value(found.datasets),
        "dataset_versions": [{"ref": f"{u['name']}@{u['version']}", **u} for u in used],
        "artifacts": [_with_times(a) for a in found.artifacts],
        "cell_source": found.cell_source,
        "environment": None if found.environment is None else _with_times(found.environment),
    }


def metric_history(location: Location, run_id: str, key: str) -> dict[str, JSON]:
    found = api.get_run(run_id, store=location.require())
    history = found.metric_history(key)
    if history.empty:
        known = ", ".join(found.metrics) or "none"
        raise NotFoundError(f"Run {found.run_id} has no metric {key!r}; its metrics: {known}.")
    return {"run_id": found.run_id, "key": key, "history": records(history)}


def lineage(location: Location, run_id: str) -> dict[str, JSON]:
    result: dict[str, JSON] = json_value(asdict(api.lineage(run_id, store=location.require())))
    return result


def compare(location: Location, run_ids: list[str]) -> dict[str, JSON]:
    """Params that differ, metrics with the best run, datasets same or different, the
    environment differences and the cell-source diff of the first run against each other."""
    comparison = api.compare_runs(*run_ids, store=location.require())
    labels = comparison.labels
    metrics = comparison.metrics()
    datasets = comparison.datasets()
    return {
        "runs": [{"run_id": r.run_id, "name": r.name, "status": r.status} for r in comparison.runs],
        "params": json_value(comparison.params().to_dict(orient="index")),
        "metrics": {
            str(key): {
                "values": json_value(row[labels].to_dict()),
                "best": json_value(row["best"]),
                "lower_is_better": lower_is_better(str(key)),
            }
            for key, row in metrics.iterrows()
        },
        "datasets": {
            str(key): {"values": json_value(row[labels].to_dict()), "same": bool(row["same"])}
            for key, row in datasets.iterrows()
        },
        "environment": json_value(comparison.environment().to_dict(orient="index")),
        "source_diffs": [
            {"a": labels[0], "b": labels[i], "lines": comparison.source_diff(0, i)}
            for i in range(1, len(labels))
        ],
    }


# -- cells --------------------------------------------------------------------------------------


def cell_history(location: Location, run_or_cell: str) -> dict[str, JSON]:
    frame = api.cell_history(run_or_cell, store=location.require())
    return {
        "notebook": frame.attrs.get("notebook"),
        "cell_id": frame.attrs.get("cell_id"),
        "versions": records(frame),
    }


def cell_diff(location: Location, a: str, b: str) -> dict[str, JSON]:
    diff = api.cell_diff(a, b, store=location.require())
    return {"a": diff.a_label, "b": diff.b_label, "same": diff.same, "lines": diff.lines}


def latest_cells(location: Location, notebook: str) -> dict[str, JSON]:
    """For each tracked cell of ``notebook``, its newest run, its headline metric (see
    :mod:`nbmlops.compare`) and how many versions and executions the cell has had: what the
    per-cell badges of a notebook need, in one request of a fixed number of queries."""
    body: dict[str, JSON] = {"notebook": notebook, "cells": {}}
    if not location.exists:
        return body
    store = api.get_store(location.require())
    cells: dict[str, JSON] = {}
    for cell in listings.latest_cells(store, notebook_paths(location, notebook)):
        run, headline = cell.run, cell.headline
        cells[run.cell_id] = {
            "run_id": run.run_id,
            "name": run.name,
            "status": run.status,
            "start_time": iso(run.start_time),
            "end_time": iso(run.end_time),
            "duration_s": None if run.end_time is None else run.end_time - run.start_time,
            "headline": None if headline is None else {"key": headline[0], "value": headline[1]},
            "metrics": json_value(cell.metrics),
            "version": run.version,
            "versions": run.versions,
            "executions": run.executions,
            "last_executed": iso(run.last_executed),
        }
    body["cells"] = cells
    return body


# -- models and drift ---------------------------------------------------------------------------


def models(location: Location) -> dict[str, JSON]:
    if not location.exists:
        return {"models": []}
    return {"models": records(api.models(store=location.require()))}


def model(location: Location, name: str) -> dict[str, JSON]:
    home = location.require()
    return {
        "name": name,
        "versions": records(api.model_versions(name, store=home)),
        "history": records(api.model_history(name, store=home)),
    }


def model_reviews(location: Location, name: str | None) -> dict[str, JSON]:
    """Each model version (of ``name``) with a review or an approval: its latest review (id,
    when, against what, the headline, where its notebook and HTML are: ``*_path`` relative to
    the server root when they are under it, so the front end can open them, else null with the
    absolute path in ``folder``) and its approvals, oldest first. A fixed number of queries per
    model."""
    if not location.exists:
        return {"versions": []}
    store = api.get_store(location.require())
    names = [name] if name is not None else registry_sql.model_names(store)
    latest = review_sql.latest_model_reviews(store, name)
    reviews = {(r["name"], int(r["version"])): r for r in latest}
    approvals: dict[tuple[str, int], list[dict[str, JSON]]] = {}
    for model in names:
        for approval in api.model_approvals(model, store=store):
            key = (approval.name, approval.version)
            approvals.setdefault(key, []).append(_with_times(approval.to_dict()))
    versions: list[JSON] = [
        {
            "name": key[0],
            "version": key[1],
            "review": _review(location, reviews[key]) if key in reviews else None,
            "approvals": approvals.get(key, []),
        }
        for key in sorted(reviews.keys() | approvals.keys())
    ]
    return {"versions": versions}


def _review(location: Location, row: Mapping[str, Any]) -> dict[str, JSON]:
    lines = row["summary"].get("lines") or []
    folder = Path(row["path"]) if row["path"] else None
    top = location.root_dir.resolve()

    def under_root(file: str) -> str | None:
        if folder is None:
            return None
        target = (folder / file).resolve()
        return target.relative_to(top).as_posix() if target.is_relative_to(top) else None

    return {
        "review_id": row["review_id"],
        "created_at": iso(row["created_at"]),
        "against": row["against"],
        "headline": str(lines[0]) if lines else None,
        "lines": json_value(lines),
        "actor": row["actor"],
        "folder": None if folder is None else str(folder),
        "notebook_path": under_root("review.ipynb"),
        "html_path": under_root("review.html"),
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
    from nbmlops.drift import drift_reports as stored  # pandas: not when the server starts

    store = api.get_store(location.require())
    if run_id is not None:
        run_id = store.resolve_run_id(run_id)
    frame = stored(
        store, run_id=run_id, model_name=model_name, model_version=model_version, limit=limit
    )
    return {"reports": records(frame)}


def drift_report(location: Location, report_id: str) -> dict[str, JSON]:
    """One stored report with its per-column results."""
    from nbmlops.drift import load_report  # pandas: not when the server starts

    report = load_report(api.get_store(location.require()), report_id)
    body: dict[str, JSON] = json_value(report.to_dict())
    body["created_at"] = iso(report.created_at)
    return body
