"""The plain Python API behind ``import nbmlops as nbm``; magics, widgets and the CLI call it."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbmlops import config
from nbmlops.capture import run as _run
from nbmlops.capture.run import Run
from nbmlops.store import Store

if TYPE_CHECKING:
    import pandas as pd

    from nbmlops.capture.history import CellDiff
    from nbmlops.compare import Comparison
    from nbmlops.drift import DriftReport
    from nbmlops.provenance import Lineage
    from nbmlops.widgets import (
        CellHistoryPanel,
        CompareView,
        DriftPanel,
        ModelsPanel,
        RunsPanel,
    )

_stores: dict[Path, Store] = {}
_stores_lock = threading.Lock()
_pinned_home: Path | None = None


def get_store(path: str | os.PathLike[str] | None = None) -> Store:
    """The store at ``path``; without one, the store set with :func:`set_store`, else the one
    found by the location rule (``NBMLOPS_HOME``, else the nearest ``.nbmlops/`` upwards, else
    ``./.nbmlops/``)."""
    home = config.resolve_home(path) if path is not None else (_pinned_home or _found_home())
    with _stores_lock:
        store = _stores.get(home)
        if store is None:
            store = _stores[home] = Store(home)
    store.connection()
    return store


_found: dict[tuple[str, str | None], Path] = {}


def _found_home() -> Path:
    """The location rule's answer, remembered per working directory: walking up the folders
    costs more than the rest of a tracked cell's bookkeeping."""
    key = (os.getcwd(), os.environ.get(config.HOME_ENV))
    home = _found.get(key)
    if home is None or not home.is_dir():
        home = _found[key] = config.find_home()
    return home


def set_store(path: str | os.PathLike[str] | None) -> Store | None:
    """Use the store at ``path`` from now on in this process (``None``: back to the rule)."""
    global _pinned_home
    _pinned_home = None if path is None else config.resolve_home(path)
    return None if path is None else get_store(path)


def start_run(
    name: str | None = None,
    experiment: str | None = None,
    tags: Mapping[str, object] | None = None,
    *,
    store: str | os.PathLike[str] | None = None,
) -> Run:
    """Start a run; use it as a context manager so it ends (finished or failed) by itself.

    >>> with nbm.start_run("baseline", experiment="churn") as run:
    ...     nbm.log_param("lr", 0.01)
    ...     nbm.log_metric("auc", 0.91)
    """
    return _run.begin_run(get_store(store), name=name, experiment=experiment, tags=tags)


def end_run(status: str = "finished") -> None:
    """End the innermost active run (for runs started without ``with``)."""
    _run.require_active_run("end_run").end(status)


def active_run() -> Run | None:
    return _run.active_run()


def log_param(key: str, value: object) -> None:
    _run.require_active_run("log_param").log_param(key, value)


def log_params(params: Mapping[str, object]) -> None:
    _run.require_active_run("log_params").log_params(params)


def log_metric(key: str, value: object, step: int | None = None) -> None:
    _run.require_active_run("log_metric").log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, object], step: int | None = None) -> None:
    _run.require_active_run("log_metrics").log_metrics(metrics, step)


def set_tag(key: str, value: object) -> None:
    _run.require_active_run("set_tag").set_tag(key, value)


def log_dataset(obj_or_path: object, name: str | None = None, role: str = "input") -> str:
    return _run.require_active_run("log_dataset").log_dataset(obj_or_path, name, role)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> str:
    return _run.require_active_run("log_artifact").log_artifact(path, name)


def log_figure(fig: Any, name: str) -> str:
    return _run.require_active_run("log_figure").log_figure(fig, name)


def log_model(model: Any, name: str) -> str:
    return _run.require_active_run("log_model").log_model(model, name)


def runs(
    filter: str | None = None,
    experiment: str | None = None,
    *,
    store: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Runs as a DataFrame, newest first: run attributes, then ``params.<k>``,
    ``metrics.<k>`` (latest value) and ``tags.<k>`` columns.

    ``filter`` is a condition such as ``"params.lr < 0.1 AND (metrics.auc > 0.9 OR
    tags.team = 'a')"``; see :mod:`nbmlops.filter` for the grammar.
    """
    tree = None
    if filter:
        from nbmlops.filter import parse_filter

        tree = parse_filter(filter)
    st = get_store(store)
    _run.reap(st)
    return st.runs_frame(tree, experiment)


def get_run(run_id: str, *, store: str | os.PathLike[str] | None = None) -> Run:
    """The run with this id (or a unique prefix of it)."""
    st = get_store(store)
    _run.reap(st)
    full_id = st.resolve_run_id(run_id)
    for active in (r for r in _run._active_runs if r.run_id == full_id and r.store is st):
        return active
    return Run(st, full_id)


def sql(query: str, *, store: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Run one read-only SQL statement over the store (schema: docs/schema.md)."""
    import pandas as pd

    columns, rows = get_store(store).read_sql(query)
    return pd.DataFrame.from_records(rows, columns=columns)


def cell_history(run_or_cell: str, *, store: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Every version of a notebook cell, named by one of its runs or by its cell id."""
    from nbmlops.capture import history

    return history.cell_history(get_store(store), run_or_cell)


def cell_diff(a: str, b: str, *, store: str | os.PathLike[str] | None = None) -> CellDiff:
    """Diff two cell versions, each named by a run id or a source hash (prefixes work)."""
    from nbmlops.capture import history

    return history.cell_diff(get_store(store), a, b)


def compare_runs(
    *run_ids: str,
    lower_is_better: Mapping[str, bool] | None = None,
    store: str | os.PathLike[str] | None = None,
) -> Comparison:
    """Two or more runs side by side: params, metrics (with the best run), datasets,
    environment and cell source. ``lower_is_better`` overrides the guess from metric names,
    e.g. ``{"auc": False}``."""
    from nbmlops.compare import Comparison

    return Comparison([get_run(r, store=store) for r in run_ids], dict(lower_is_better or {}))


def lineage(run_id: str, *, store: str | os.PathLike[str] | None = None) -> Lineage:
    """What a run read (and which runs made it) and what it produced (and who used it)."""
    from nbmlops.provenance import build_lineage

    return build_lineage(get_run(run_id, store=store))


def runs_panel(
    filter: str | None = None,
    experiment: str | None = None,
    *,
    store: str | os.PathLike[str] | None = None,
    page_size: int = 20,
) -> RunsPanel:
    """A sortable, filterable table of runs; tick two or more and press "compare selected"."""
    from nbmlops.widgets import RunsPanel

    return RunsPanel(filter, experiment, store=store, page_size=page_size)


def compare_panel(*run_ids: str, store: str | os.PathLike[str] | None = None) -> CompareView:
    """The compare view for these runs: params, metrics, charts, code, data, environment."""
    from nbmlops.widgets import CompareView

    return CompareView(compare_runs(*run_ids, store=store))


def cell_history_panel(
    run_or_cell: str, *, store: str | os.PathLike[str] | None = None, shell: object = None
) -> CellHistoryPanel:
    """Every version of a cell with its runs; diff versions; restore one into a new cell."""
    from nbmlops.widgets import CellHistoryPanel

    if shell is None:
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:
            shell = None
    return CellHistoryPanel(run_or_cell, store=store, shell=shell)


def models_panel(
    name: str | None = None, *, store: str | os.PathLike[str] | None = None
) -> ModelsPanel:
    """Registered models: versions, aliases, metrics; register, promote (rules shown before
    confirming), deprecate; the event timeline."""
    from nbmlops.widgets import ModelsPanel

    return ModelsPanel(name, store=store)


def save_reference(
    data: Any,
    columns: list[str] | None = None,
    *,
    max_rows: int | None = None,
    store: str | os.PathLike[str] | None = None,
) -> str:
    """Profile ``data`` (bins, counts, quantile sketch, category frequencies) and keep the
    profile in the store, keyed by the data's fingerprint; returns the profile id. Later drift
    checks against it (or against a model trained on it) never need the data again.
    ``max_rows`` profiles a deterministic sample of that many rows of longer data."""
    from nbmlops.drift import build_profile, save_profile

    return save_profile(get_store(store), build_profile(data, columns, max_rows=max_rows))


def check_drift(
    reference: Any,
    current: Any,
    columns: list[str] | None = None,
    method: Any = None,
    *,
    save: bool = True,
    store: str | os.PathLike[str] | None = None,
    **options: Any,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column.

    ``reference`` is a DataFrame/Series; the id (or a unique prefix) of a saved reference
    profile; the fingerprint of a dataset that has one (a run's input, see
    ``nbm.get_run(id).datasets``); or a registered model (``"name@alias"``, ``"name/3"``,
    ``"name"``), checked against its training data's profile: the one pinned when it was
    registered, else the newest one of that data (kept by ``%%track`` or
    ``nbm.save_reference(X_train)``). The report is saved in the store (linked to the active
    run, and to the model) unless ``save=False``. ``options``: ``threshold``, ``drift_share``,
    ``multiple_testing`` (see nbmlops.drift).
    """
    from nbmlops import drift

    st = get_store(store)
    active = _run.active_run()
    run_id = active.run_id if active is not None and active.store is st else None
    target = st if save else None
    if not isinstance(reference, str):
        return drift.check_drift(
            reference, current, columns, method, store=target, run_id=run_id, **options
        )
    profile, model_name, model_version = _reference_profile(st, reference)
    return drift.check_against_profile(
        profile,
        current,
        method,
        columns=columns,
        store=target,
        run_id=run_id,
        model_name=model_name,
        model_version=model_version,
        **options,
    )


def _reference_profile(st: Store, reference: str) -> tuple[Any, str | None, int | None]:
    """The profile a string reference names, and the model version when it names one."""
    from nbmlops import drift, registry
    from nbmlops.errors import DriftInputError, NotFoundError, RegistryError

    if "@" in reference or "/" in reference:
        version = registry.get_model_version(reference, store=st)
    else:  # a model's name first, then a profile id (or prefix), then a dataset fingerprint
        try:
            version = registry.get_model_version(reference, store=st)
        except RegistryError:
            try:
                return drift.load_profile(st, reference), None, None
            except NotFoundError:
                pass
            by_dataset = drift.profiles_for_dataset(st, reference)
            if by_dataset:
                return by_dataset[0], None, None
            raise DriftInputError(
                f"Reference {reference!r} is not a registered model, a saved profile id or the "
                "fingerprint of a dataset with a saved profile; pass a DataFrame, or save one "
                "with nbm.save_reference(df)."
            ) from None
    profile_id = version.reference_profile_id
    if profile_id is not None:
        return drift.load_profile(st, profile_id), version.name, version.version
    raise DriftInputError(_no_reference_message(version))


def _no_reference_message(version: Any) -> str:
    ref = f"{version.name}/{version.version}"
    if version.run_id is None:
        return (
            f"{ref} was registered from a model object, not a run, so its training data is "
            "unknown; pass the reference data instead: nbm.check_drift(X_train, current)."
        )
    training = version.training_datasets
    if not training:
        return (
            f"{ref}'s training run {version.run_id} recorded no input DataFrame matching the "
            "model's features, so its training data is unknown; pass the reference data "
            "instead: nbm.check_drift(X_train, current)."
        )
    names = ", ".join(f"{d['name']} ({str(d['fingerprint'])[:12]})" for d in training)
    return (
        f"No saved reference for the training data of {ref} ({names}). Save one where that "
        f"data is in memory: nbm.save_reference({training[0]['name']}); or pass the "
        "reference data instead: nbm.check_drift(X_train, current)."
    )


def drift_panel(
    reference: Any = None,
    current: Any = None,
    columns: list[str] | None = None,
    method: Any = None,
    *,
    store: str | os.PathLike[str] | None = None,
    namespace: Mapping[str, Any] | None = None,
    **options: Any,
) -> DriftPanel:
    """The drift panel: choose the reference (a DataFrame variable, a run's input dataset with a
    saved profile, or a registered model's training data) and the current data, check, and see
    the verdict, a sortable per-column table and a column's plot.

    With ``reference`` and ``current`` (as :func:`check_drift` takes them) the check is made
    at once and the choosers are preset. ``namespace`` lists the DataFrame variables to choose
    from (default: the notebook's, when there is one).
    """
    from nbmlops.widgets import DriftPanel

    if namespace is None:
        namespace = _user_namespace()
    if method is not None:
        options = {**options, "method": method}
    report = None
    if reference is not None and current is not None:
        report = check_drift(reference, current, columns, store=store, **options)
    title = f"vs {reference}" if isinstance(reference, str) else ""
    return DriftPanel(
        report,
        title=title,
        namespace=namespace,
        store=store,
        reference=reference,
        current=current,
        options=options,
    )


def _user_namespace() -> dict[str, Any]:
    try:
        from IPython import get_ipython
    except ImportError:
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def cells_before(
    run_id: str, limit: int = 50, *, store: str | os.PathLike[str] | None = None
) -> pd.DataFrame:
    """Which code ran before this run: the cells its kernel executed earlier, tracked or not,
    newest first (cell_id, execution_count, start_time, status, run_id, source_hash, source)."""
    import pandas as pd

    st = get_store(store)
    rows = st.executions_before_run(st.resolve_run_id(run_id), limit)
    columns = ["cell_id", "execution_count", "start_time", "status", "run_id", "source_hash"]
    frame = pd.DataFrame(rows, columns=[*columns, "source"])
    frame["start_time"] = pd.to_datetime(frame["start_time"], unit="s", utc=True)
    return frame
