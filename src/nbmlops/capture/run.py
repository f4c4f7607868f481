"""Runs: the record of one tracked block of work, and the API that writes it.

Logging calls are buffered in memory and written in one transaction when the run ends (with the
cell execution that made it, for a ``%%track`` cell), so a thousand ``log_metric`` calls cost
microseconds each and a run is never half-written. The run row itself is written before, at
start, as ``running``, in a transaction of its own: other readers see the run while it runs,
and a crashed process can be detected (see :mod:`nbmlops.capture.liveness`). Long runs also
flush their buffer every ``FLUSH_INTERVAL_S`` seconds so that progress is visible to other
readers and survives a crash. The transactions are described in :mod:`nbmlops.store.runs`.
"""

from __future__ import annotations

import atexit
import enum
import functools
import hashlib
import json
import math
import operator
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

from nbmlops._params import decode_param, encode_param
from nbmlops.capture import environment, model_formats
from nbmlops.capture.liveness import hostname, reap_dead_runs
from nbmlops.errors import InvalidValueError, NbmlopsError, NoActiveRunError
from nbmlops.fingerprint import fingerprint, fingerprint_file
from nbmlops.store import Store
from nbmlops.store import cells as cell_store
from nbmlops.store import runs as run_store
from nbmlops.store.cells import CellExecution, ExecutionStatus

if TYPE_CHECKING:
    import pandas as pd

FLUSH_INTERVAL_S = 10.0
DEFAULT_EXPERIMENT = "Default"
_API_SOURCE = "api"


def new_run_id() -> str:
    return os.urandom(6).hex()


class Status(enum.StrEnum):
    """How a run stands (``runs.status``); the one place an outcome becomes a status word."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    @classmethod
    def of(cls, error: BaseException | None) -> Status:
        """The status of a run whose code ended by raising ``error`` (None: it returned)."""
        if error is None:
            return cls.FINISHED
        return cls.INTERRUPTED if isinstance(error, KeyboardInterrupt) else cls.FAILED

    @property
    def execution_status(self) -> ExecutionStatus:
        """The ``cell_executions.status`` of a cell that ended so."""
        if self is Status.FINISHED:
            return "ok"
        return "interrupted" if self is Status.INTERRUPTED else "error"


_ENDED = (Status.FINISHED, Status.FAILED, Status.INTERRUPTED)

finished_hooks: list[Callable[[Run], None]] = []
"""Called with each run once its end is written (the background push to an MLflow server,
:mod:`nbmlops.sync.background`, enqueues it). A hook must return at once; one that raises costs
one warning, never the run's record nor the cell."""


_STEP_RANGE = range(-(2**63), 2**63)  # SQLite's INTEGER


def storable_text(what: str, value: object) -> str:
    """``value`` as text the store can hold (UTF-8), or a ValueError naming ``what``.

    A lone surrogate (``"\\ud800"``, or a file name with undecodable bytes) is a valid Python
    string but not valid UTF-8, so SQLite cannot store it."""
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        shown = repr(text[:60]) + ("..." if len(text) > 60 else "")
        raise InvalidValueError(
            f"{what} {shown}",
            f"it holds a lone surrogate ({text[exc.start]!r} at position {exc.start}), which is "
            "not valid UTF-8; remove it or decode the text with errors='replace'",
        ) from None
    return text


def metric_value(key: str, value: object) -> float | None:
    """The stored value of a metric (None for NaN): a clear TypeError when it is not a real
    number, ValueError when it is one too large for a float."""
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"Metric {key!r} must be a real number, got {type(value).__name__} {value!r:.60}"
        )
    try:
        number = float(value)
    except OverflowError:
        raise InvalidValueError(f"Metric {key!r}", _too_large(value)) from None
    return None if math.isnan(number) else number


def _too_large(value: object) -> str:
    if not isinstance(value, int):
        return "it holds an integer too large to write out"
    return f"a {abs(value).bit_length()}-bit integer is too large for a float (at most ~1.8e308)"


def metric_step(key: str, step: Any) -> int:
    """A metric's step as stored: an integer SQLite can hold, or a clear error."""
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    try:
        number = operator.index(step)  # int, numpy integers; not 1.5, not "3"
    except TypeError:
        raise TypeError(
            f"Metric {key!r}: step must be an integer, got {type(step).__name__} {step!r:.60}"
        ) from None
    if number not in _STEP_RANGE:
        raise InvalidValueError(
            f"Metric {key!r} at step {number}", "a step must lie within -2**63 .. 2**63-1"
        )
    return number


def param_record(
    key: object, value: object, source: str
) -> tuple[str, tuple[str, float | None, str]]:
    """The buffered form of a param, ``(key, (text, number, source))``, checked storable."""
    name = storable_text("Param key", key)
    try:
        text, number = encode_param(value)
    except (OverflowError, ValueError):  # float(10**400); str() of a 5000-digit integer
        raise InvalidValueError(f"Param {name!r}", _too_large(value)) from None
    storable_text(f"Param {name!r} value", text)
    return name, (text, number, source)


class _Buffer:
    """What a run has logged and not yet written."""

    __slots__ = ("artifacts", "datasets", "metrics", "params", "tags")

    def __init__(
        self,
        params: dict[str, tuple[str, float | None, str]] | None = None,
        metrics: list[tuple[str, float | None, int, float, str]] | None = None,
        tags: dict[str, str] | None = None,
        datasets: list[dict[str, Any]] | None = None,
        artifacts: list[dict[str, Any]] | None = None,
    ) -> None:
        self.params = params if params is not None else {}
        self.metrics = metrics if metrics is not None else []
        self.tags = tags if tags is not None else {}
        self.datasets = datasets if datasets is not None else []
        self.artifacts = artifacts if artifacts is not None else []

    def take(self) -> _Buffer:
        taken = _Buffer(self.params, self.metrics, self.tags, self.datasets, self.artifacts)
        self.params, self.metrics, self.tags, self.datasets, self.artifacts = {}, [], {}, [], []
        return taken


class Run:
    """One run: the handle ``start_run`` returns and ``get_run`` reads back.

    While the run is active its ``log_*`` methods buffer records; properties such as
    :attr:`params` and :attr:`metrics` always read what is recorded, buffered values included.
    """

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self._active = False
        self._buffer = _Buffer()
        self._next_step: dict[str, int] = {}
        self._latest: dict[str, tuple[int, float | None]] = {}  # key -> last (step, value)
        self._last_flush = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._active:
            return
        if exc is None:
            self.end()
            return
        try:
            self._end_with_exception(exc)
        except NbmlopsError as store_exc:
            # Never let a failed write hide the user's own exception.
            warnings.warn(
                f"nbmlops could not record the outcome of run {self.run_id}: {store_exc}",
                stacklevel=2,
            )

    def end(self, status: str = "finished") -> None:
        """Write everything buffered and the run's outcome, in one transaction."""
        if status not in _ENDED:
            raise ValueError(f"status must be finished, failed or interrupted, not {status!r}")
        self._finish(Status(status), None)

    def end_with_exception(self, exc: BaseException) -> None:
        """End as ``failed`` (or ``interrupted`` for KeyboardInterrupt), recording ``exc``."""
        self._end_with_exception(exc)

    def _end_with_exception(self, exc: BaseException) -> None:
        self._finish(Status.of(exc), exc)

    def _finish(
        self, status: Status, error: BaseException | None, execution: CellExecution | None = None
    ) -> None:
        if not self._active:
            raise NbmlopsError(f"Run {self.run_id} has already ended.")
        self._active = False
        _active_runs.remove(self)
        finish = {
            "status": status.value,
            "end_time": time.time(),
            "error_type": None if error is None else type(error).__name__,
            "error_message": None if error is None else str(error),
            "traceback": None
            if error is None
            else "".join(traceback.format_exception(type(error), error, error.__traceback__)),
        }
        self._write(finish, execution)
        _call_finished_hooks(self)

    def _write(self, finish: dict[str, Any] | None, execution: CellExecution | None = None) -> None:
        taken = self._buffer.take()
        try:
            run_store.write_run_data(
                self.store,
                self.run_id,
                params=[(k, *v) for k, v in taken.params.items()],
                metrics=taken.metrics,
                tags=list(taken.tags.items()),
                datasets=taken.datasets,
                artifacts=taken.artifacts,
                finish=finish,
                execution=execution,
            )
        except BaseException:
            # Put the records back, so a retry (or the atexit hook) can still write them.
            self._buffer.params = {**taken.params, **self._buffer.params}
            self._buffer.metrics = taken.metrics + self._buffer.metrics
            self._buffer.tags = {**taken.tags, **self._buffer.tags}
            self._buffer.datasets = taken.datasets + self._buffer.datasets
            self._buffer.artifacts = taken.artifacts + self._buffer.artifacts
            raise
        self._last_flush = time.monotonic()

    def flush(self) -> None:
        """Write buffered records now, without ending the run."""
        self._require_active("flush")
        self._write(None)

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush > FLUSH_INTERVAL_S:
            self._write(None)

    def _require_active(self, action: str) -> None:
        if not self._active:
            raise NbmlopsError(
                f"{action} on run {self.run_id}, which has ended; start a new run to log more."
            )

    # -- logging -----------------------------------------------------------------------------

    def log_param(self, key: str, value: object, *, source: str = _API_SOURCE) -> None:
        """Record ``value`` for ``key``; ValueError at once for a value the store cannot hold."""
        self._require_active("log_param")
        name, record = param_record(key, value, source)
        self._buffer.params[name] = record

    def log_params(self, params: Mapping[str, object]) -> None:
        """Record several params: all of them, or (when one cannot be stored) none."""
        self._require_active("log_params")
        records = dict(param_record(key, value, _API_SOURCE) for key, value in params.items())
        self._buffer.params.update(records)

    def log_metric(
        self, key: str, value: object, step: int | None = None, *, source: str = _API_SOURCE
    ) -> None:
        """Record ``value`` for ``key``; without ``step``, each call takes the next step."""
        self._require_active("log_metric")
        record = self._metric_record(key, value, step, source)
        self._buffer.metrics.append(record)
        self._latest[record[0]] = (record[2], record[1])
        self._maybe_flush()

    def _metric_record(
        self, key: str, value: object, step: int | None, source: str
    ) -> tuple[str, float | None, int, float, str]:
        """The buffered form of one metric, checked storable; takes the next step."""
        key = storable_text("Metric key", key)
        number = metric_value(key, value)
        at = metric_step(key, self._next_step.get(key, 0) if step is None else step)
        self._next_step[key] = max(self._next_step.get(key, 0), at + 1)
        return (key, number, at, time.time(), source)

    def log_metrics(self, metrics: Mapping[str, object], step: int | None = None) -> None:
        """Record several metrics: all of them, or (when one cannot be stored) none."""
        self._require_active("log_metrics")
        next_step = dict(self._next_step)
        try:
            records = [self._metric_record(k, v, step, _API_SOURCE) for k, v in metrics.items()]
        except (TypeError, ValueError):
            self._next_step = next_step
            raise
        self._buffer.metrics.extend(records)
        for key, number, at, _, _ in records:
            self._latest[key] = (at, number)
        self._maybe_flush()

    def set_tag(self, key: str, value: object) -> None:
        """Set tag ``key``; ValueError at once for text the store cannot hold."""
        self._require_active("set_tag")
        name = storable_text("Tag key", key)
        self._buffer.tags[name] = storable_text(f"Tag {name!r} value", value)

    def log_dataset(
        self,
        obj_or_path: object,
        name: str | None = None,
        role: str = "input",
        *,
        source: str = _API_SOURCE,
    ) -> str:
        """Record a dataset's content fingerprint (not its data); returns the fingerprint."""
        self._require_active("log_dataset")
        if role not in ("input", "output"):
            raise ValueError(f"Dataset role must be 'input' or 'output', not {role!r}")
        if name is not None:
            name = storable_text("Dataset name", name)
        if isinstance(obj_or_path, str | os.PathLike):
            path = Path(obj_or_path)
            name = name or storable_text("Dataset path", path)
            fp = fingerprint_file(path)
        else:
            fp = fingerprint(obj_or_path)
            name = name or f"{fp.kind}-{fp.digest[:8]}"
        self._buffer.datasets.append(
            {
                "dataset_id": fp.digest,
                "kind": fp.kind,
                "n_rows": fp.n_rows,
                "n_columns": fp.n_columns,
                "schema": None if fp.schema is None else json.dumps(fp.schema),
                "created_at": time.time(),
                "role": role,
                "name": name,
                "source": source,
            }
        )
        return fp.digest

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> str:
        """Copy a file into the store (content-addressed); returns its sha256."""
        import mimetypes

        self._require_active("log_artifact")
        source = Path(path)
        name = storable_text("Artifact name", name or source.name)
        if not source.is_file():
            raise FileNotFoundError(f"log_artifact: {source} is not a file")
        digest, size = self.store.objects.put_file(source)
        self._add_artifact(
            name,
            "file",
            digest,
            size,
            mimetypes.guess_type(source.name)[0],
            {"source_path": str(source.resolve())},
        )
        return digest

    def log_figure(self, fig: Any, name: str, *, source: str = _API_SOURCE) -> str:
        """Save a matplotlib figure as PNG; returns its sha256."""
        import io

        self._require_active("log_figure")
        name = storable_text("Figure name", name)
        if not hasattr(fig, "savefig"):
            raise TypeError(f"log_figure needs a matplotlib Figure, got {type(fig).__name__}")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        digest, size = self.store.objects.put_bytes(buf.getbuffer())
        name = name if name.endswith(".png") else f"{name}.png"
        self._add_artifact(name, "figure", digest, size, "image/png", {"source": source})
        return digest

    def log_notebook(self, content: bytes, meta: dict[str, Any]) -> str:
        """Save the notebook the run belongs to (JSON without outputs) as ``notebook.ipynb``;
        ``meta`` says where the snapshot came from. Returns its sha256."""
        self._require_active("log_notebook")
        digest, size = self.store.objects.put_bytes(content)
        self._add_artifact(
            "notebook.ipynb", "notebook", digest, size, "application/x-ipynb+json", meta
        )
        return digest

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        source: str = _API_SOURCE,
        fitted_on: tuple[str, str | None] | None = None,
    ) -> str:
        """Save a fitted model with the versions needed to load it back: in its library's
        portable format where it has one (XGBoost, LightGBM boosters; see
        :mod:`nbmlops.capture.model_formats`), else as a pickle (protocol 5). ``fitted_on``:
        the names of the data it was fitted on (X, y), which an evaluation takes as its
        training data."""
        import pickle

        self._require_active("log_model")
        name = storable_text("Model name", name)
        format = model_formats.portable_format(model)
        if format is None:
            data, media_type = pickle.dumps(model, protocol=5), "application/x-pickle"
        else:
            data, media_type = model_formats.dump_portable(model, format), None
        digest, size = self.store.objects.put_bytes(data)
        meta = {
            "format": format or "pickle",
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "libraries": _library_versions(type(model).__module__),
            "source": source,
        }
        if fitted_on is not None:
            meta["fitted_on"] = {"X": fitted_on[0], "y": fitted_on[1]}
        media_type = media_type or model_formats.MEDIA_TYPES[str(format)]
        self._add_artifact(name, "model", digest, size, media_type, meta)
        return digest

    def _log_generated(self, name: str, data: bytes, media_type: str, source: str) -> str:
        """Store bytes a capture step made (a model's feature importances, a summary's text)
        as a file artifact; returns its sha256."""
        self._require_active("log_artifact")
        name = storable_text("Artifact name", name)
        digest, size = self.store.objects.put_bytes(data)
        self._add_artifact(name, "file", digest, size, media_type, {"source": source})
        return digest

    def _add_artifact(
        self,
        name: str,
        kind: str,
        digest: str,
        size: int,
        media_type: str | None,
        meta: dict[str, Any],
    ) -> None:
        self._buffer.artifacts.append(
            {
                "name": name,
                "kind": kind,
                "sha256": digest,
                "size": size,
                "media_type": media_type,
                "meta": json.dumps(meta, sort_keys=True),
                "created_at": time.time(),
            }
        )

    def latest_points(self) -> dict[str, tuple[int, float | None]]:
        """Each metric's last logged ``(step, value)`` (None: NaN), written or not, in the order
        the keys were first logged; kept per call (O(1)) so that the live progress line
        (:mod:`nbmlops.capture.progress`) never scans the buffer. Safe to call from another
        thread: the copy is one C call, done under the GIL."""
        return dict(self._latest)

    def unwritten(self) -> Logged:
        """What has been logged and not written yet: a tracked cell's summary line reads this
        rather than the store."""
        datasets, artifacts = self._buffer.datasets, self._buffer.artifacts
        return Logged(
            params=len(self._buffer.params),
            metrics={k: math.nan if v is None else v for k, v, *_ in self._buffer.metrics},
            inputs=sum(d["role"] == "input" for d in datasets),
            outputs=sum(d["role"] == "output" for d in datasets),
            models=sum(a["kind"] == "model" for a in artifacts),
        )

    # -- reading -----------------------------------------------------------------------------

    def _row(self) -> dict[str, Any]:
        return run_store.run_row(self.store, self.run_id)

    @property
    def status(self) -> str:
        return str(self._row()["status"])

    @property
    def info(self) -> dict[str, Any]:
        """The run's attributes: experiment, name, status, times, user, host, notebook, cell."""
        row = self._row()
        end = row["end_time"]
        row["duration_s"] = None if end is None else end - row["start_time"]
        return row

    @property
    def name(self) -> str | None:
        value = self._row()["name"]
        return None if value is None else str(value)

    @property
    def params(self) -> dict[str, object]:
        stored = {
            p.key: decode_param(p.value, p.value_num)
            for p in run_store.params_of(self.store, self.run_id)
        }
        stored.update({k: decode_param(v, n) for k, (v, n, _) in self._buffer.params.items()})
        return stored

    @property
    def metrics(self) -> dict[str, float]:
        """The latest value (highest step) of each metric; NaN where NaN was logged."""
        latest: dict[str, tuple[int, float]] = {
            m.key: (m.step, math.nan if m.value is None else m.value)
            for m in run_store.latest_metrics_of(self.store, self.run_id)
        }
        for key, value, step, _, _ in self._buffer.metrics:
            if key not in latest or step >= latest[key][0]:
                latest[key] = (step, math.nan if value is None else value)
        return {k: v for k, (_, v) in sorted(latest.items())}

    def metric_history(self, key: str) -> pd.DataFrame:
        """Every value logged for ``key``: columns step, value, timestamp."""
        import pandas as pd

        rows = [tuple(p) for p in run_store.metric_history(self.store, self.run_id, key)]
        rows += [(s, v, t) for k, v, s, t, _ in self._buffer.metrics if k == key]
        frame = pd.DataFrame(rows, columns=["step", "value", "timestamp"], dtype="float64")
        frame["step"] = frame["step"].astype("int64")
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
        return frame.sort_values(["step", "timestamp"], kind="stable").reset_index(drop=True)

    @property
    def tags(self) -> dict[str, str]:
        return {**run_store.tags_of(self.store, self.run_id), **self._buffer.tags}

    @property
    def datasets(self) -> list[dict[str, Any]]:
        """Datasets the run read (role ``input``) or wrote (``output``), by fingerprint."""
        rows = run_store.datasets_of(self.store, self.run_id) + [
            dict(d) for d in self._buffer.datasets
        ]
        for row in rows:
            row.pop("created_at", None)
            if isinstance(row.get("schema"), str):
                row["schema"] = json.loads(row["schema"])
        return rows

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        rows = run_store.artifacts_of(self.store, self.run_id) + [
            dict(a) for a in self._buffer.artifacts
        ]
        for row in rows:
            if isinstance(row.get("meta"), str):
                row["meta"] = json.loads(row["meta"])
        return rows

    def notebook(self) -> dict[str, Any] | None:
        """The notebook the run belonged to, as it was when the run started (nbformat JSON,
        sources without outputs; see :mod:`nbmlops.capture.notebook`), checked against its
        recorded sha256; None when the run stored none (a script, an unsaved notebook run
        without the JupyterLab extension)."""
        stored = [a for a in self.artifacts if a["kind"] == "notebook"]
        if not stored:
            return None
        notebook: dict[str, Any] = json.loads(self.store.objects.read_verified(stored[0]["sha256"]))
        return notebook

    @property
    def environment(self) -> dict[str, Any] | None:
        env_id = self._row()["environment_id"]
        env = None if env_id is None else run_store.environment(self.store, env_id)
        if env is not None:
            env["packages"] = json.loads(env["packages"])
        return env

    @property
    def cell_source(self) -> str | None:
        version = self._row()["cell_version"]
        return None if version is None else cell_store.cell_source(self.store, version)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.info,
            "params": self.params,
            "metrics": self.metrics,
            "tags": self.tags,
            "datasets": self.datasets,
            "artifacts": self.artifacts,
        }

    def __repr__(self) -> str:
        try:
            row = self._row()
        except NbmlopsError:
            return f"<Run {self.run_id} (not in store {self.store.home})>"
        name = f" {row['name']!r}" if row["name"] else ""
        return f"<Run {self.run_id}{name} {row['status']} experiment={row['experiment']!r}>"

    def _repr_html_(self) -> str:
        import html

        info = self.info
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
            f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
            for k, v in [
                ("run", info["run_id"]),
                ("experiment", info["experiment"]),
                ("name", info["name"]),
                ("status", info["status"]),
                ("duration (s)", _round(info["duration_s"])),
                *((f"params.{k}", v) for k, v in self.params.items()),
                *((f"metrics.{k}", _round(v)) for k, v in self.metrics.items()),
            ]
        )
        return f"<table>{rows}</table>"


class Logged(NamedTuple):
    """Counts of what a run logged: params, metrics (latest values), datasets read and
    written, models."""

    params: int
    metrics: dict[str, float]
    inputs: int
    outputs: int
    models: int


def _round(value: object) -> object:
    return round(value, 6) if isinstance(value, float) else value


def _library_versions(module: str) -> dict[str, str]:
    packages = environment.installed_packages()
    versions = {"python": sys.version.split()[0]}
    top = module.split(".")[0]
    library = {"sklearn": "scikit-learn"}.get(top, top)
    wanted = {top, library, "numpy", "scipy"}
    if library not in packages:  # installed under another name: xgboost-cpu
        wanted.update(_distributions().get(top, ()))
    for name in sorted(wanted):
        if name in packages:
            versions[name] = packages[name]
    return versions


@functools.cache
def _distributions() -> dict[str, list[str]]:
    """Top-level module -> the (normalised) distributions that install it; read once (~20 ms)."""
    from importlib.metadata import packages_distributions

    return {
        top: [d.lower().replace("_", "-") for d in dists]
        for top, dists in packages_distributions().items()
    }


_active_runs: list[Run] = []


def active_run() -> Run | None:
    """The innermost active run of this process, or None."""
    return _active_runs[-1] if _active_runs else None


def require_active_run(action: str) -> Run:
    run = active_run()
    if run is None:
        raise NoActiveRunError(action)
    return run


def active_run_ids() -> set[str]:
    return {r.run_id for r in _active_runs}


def begin_run(
    store: Store,
    *,
    name: str | None = None,
    experiment: str | None = None,
    tags: Mapping[str, object] | None = None,
    notebook: str | None = None,
    cell_id: str | None = None,
    cell_source: str | None = None,
    execution_count: int | None = None,
    workdir: Path | None = None,
) -> Run:
    """Create a run in ``store`` and make it the active run of this process; ValueError before
    anything is written when its name, experiment, tags or cell source cannot be stored."""
    name = None if name is None else storable_text("Run name", name)
    experiment = None if experiment is None else storable_text("Experiment", experiment)
    checked_tags = {
        storable_text("Tag key", key): storable_text(f"Tag {key!r} value", value)
        for key, value in (tags or {}).items()
    }
    folder = workdir or Path.cwd()
    if notebook is None:
        notebook = _script_path()
    cell_version = None
    if cell_source is not None:
        cell_source = storable_text("Cell source", cell_source)
        cell_version = hashlib.sha256(cell_source.encode()).hexdigest()
    git = environment.git_state(folder)
    env = environment.environment_record(folder, _stored_diff(store, git))
    run = Run(store, new_run_id())
    run_store.start_run(
        store,
        {
            "run_id": run.run_id,
            "name": name,
            "start_time": time.time(),
            "user": environment.current_user(),
            "host": hostname(),
            "pid": os.getpid(),
            "notebook": notebook,
            "cell_id": cell_id,
            "cell_version": cell_version,
            "execution_count": execution_count,
            "environment_id": env["environment_id"],
        },
        experiment=experiment or DEFAULT_EXPERIMENT,
        environment=env,
        cell_source=cell_source,
    )
    run._active = True
    _active_runs.append(run)
    run._buffer.tags.update(checked_tags)
    return run


_diff_digests: dict[tuple[Path, environment.GitState], str] = {}


def _stored_diff(store: Store, git: environment.GitState) -> str | None:
    """The object holding the work tree's diff, stored once per git state read."""
    if not git.diff:
        return None
    key = (store.home, git)
    if key not in _diff_digests:
        if len(_diff_digests) > 64:
            _diff_digests.clear()
        _diff_digests[key] = store.objects.put_bytes(git.diff)[0]
    return _diff_digests[key]


def reap(store: Store) -> None:
    reap_dead_runs(store, active_run_ids())


def end_tracked_run(run: Run, error: BaseException | None, execution: CellExecution) -> None:
    """End a run made by a tracked cell with the cell's outcome; ``execution`` (the cell run,
    its ``run_id`` this run's) is written in the same transaction."""
    run._finish(Status.of(error), error, execution)


def _call_finished_hooks(run: Run) -> None:
    failed: list[str] = []
    for hook in list(finished_hooks):
        try:
            hook(run)
        except Exception as exc:  # a hook's fault never reaches the cell
            failed.append(f"{getattr(hook, '__qualname__', hook)}: {type(exc).__name__}: {exc}")
    if failed:
        warnings.warn(
            f"nbmlops recorded run {run.run_id}, but what runs after its end failed "
            f"({'; '.join(failed)}).",
            stacklevel=3,
        )


def find_run(store: Store, run_id: str) -> Run:
    """The run with this id (or a unique prefix of it): the live handle while it is active in
    this process (what it logged may not be written yet), else a reader of the stored run."""
    reap(store)
    full_id = store.resolve_run_id(run_id)
    for active in _active_runs:
        if active.run_id == full_id and active.store is store:
            return active
    return Run(store, full_id)


def _script_path() -> str | None:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return str(Path(path).resolve()) if path else None


@atexit.register
def _end_runs_at_exit() -> None:
    # A script that exits without ending its runs: an uncaught exception leaves
    # sys.last_value set before atexit hooks run.
    failed = getattr(sys, "last_value", None)
    for run in reversed(list(_active_runs)):
        try:
            if failed is not None:
                run._end_with_exception(failed)
            else:
                run.end()
        except Exception as exc:  # interpreter shutdown: report, do not raise
            warnings.warn(f"nbmlops could not end run {run.run_id}: {exc}", stacklevel=1)
