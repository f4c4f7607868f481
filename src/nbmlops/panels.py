"""The notebook panels behind ``nbm.runs_panel()``, ``%runs``, ``%models`` and the rest.

Each function builds one widget from :mod:`nbmlops.widgets` over what :mod:`nbmlops.api`
returns. The widget modules are imported when a panel is asked for, not with ``nbmlops``:
ipywidgets and matplotlib cost more than the rest of ``import nbmlops`` together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nbmlops import api
from nbmlops.store import StoreLike

if TYPE_CHECKING:
    from nbmlops.widgets import (
        CellHistoryPanel,
        CompareView,
        DriftPanel,
        ModelsPanel,
        MonitorPanel,
        RunsPanel,
    )
    from nbmlops.widgets.datasets_panel import DatasetsPanel
    from nbmlops.widgets.features_panel import FeaturesPanel


def runs_panel(
    filter: str | None = None,
    experiment: str | None = None,
    *,
    store: StoreLike = None,
    page_size: int = 20,
) -> RunsPanel:
    """A sortable, filterable table of runs; tick two or more and press "compare selected"."""
    from nbmlops.widgets import RunsPanel  # ipywidgets loads here, not with nbmlops

    return RunsPanel(filter, experiment, store=store, page_size=page_size)


def compare_panel(*run_ids: str, store: StoreLike = None) -> CompareView:
    """The compare view for these runs: params, metrics, charts, code, data, environment."""
    from nbmlops.widgets import CompareView  # ipywidgets loads here, not with nbmlops

    return CompareView(api.compare_runs(*run_ids, store=store))


def cell_history_panel(
    run_or_cell: str, *, store: StoreLike = None, shell: object = None
) -> CellHistoryPanel:
    """Every version of a cell with its runs; diff versions; restore one into a new cell."""
    from nbmlops.widgets import CellHistoryPanel  # ipywidgets loads here, not with nbmlops

    if shell is None:
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:
            shell = None
    return CellHistoryPanel(run_or_cell, store=store, shell=shell)


def models_panel(name: str | None = None, *, store: StoreLike = None) -> ModelsPanel:
    """Registered models: versions, aliases, metrics; register, promote (rules shown before
    confirming), deprecate; the event timeline; where each is served, with its requests,
    errors and latency percentiles."""
    from nbmlops.widgets import ModelsPanel  # ipywidgets loads here, not with nbmlops

    return ModelsPanel(name, store=store)


def datasets_panel(name: str | None = None, *, store: StoreLike = None) -> DatasetsPanel:
    """Named datasets; with ``name``, its versions (rows, size, what each added on disk, who,
    when, which run saved it), the runs and models that used a version, and the diff of any
    two versions."""
    from nbmlops.widgets.datasets_panel import DatasetsPanel  # ipywidgets loads here

    return DatasetsPanel(name, store=store)


def features_panel(name: str | None = None, *, store: StoreLike = None) -> FeaturesPanel:
    """Feature views (latest version, entity and keys, features and dtypes, TTL, source,
    owner, the age of their online values, red past the TTL, and the models trained from
    them); with ``name``, its definition and code, its versions with what each changed, the
    definition diff of any two, and the freshness of the version online reads use."""
    from nbmlops.widgets.features_panel import FeaturesPanel  # ipywidgets loads here

    return FeaturesPanel(name, store=store)


def monitor_panel(
    name: str | None = None,
    *,
    window: str | None = None,
    since: Any = None,
    until: Any = None,
    store: StoreLike = None,
) -> MonitorPanel:
    """A model in production on one time axis: the served metric per version against its
    offline one, label coverage, drift share of served traffic, alerts and retrains as markers,
    and a badge while an alert is in its cooldown (``nbm.monitor_timeline`` gives the data)."""
    from nbmlops.widgets import MonitorPanel  # ipywidgets loads here, not with nbmlops

    return MonitorPanel(name, window=window, since=since, until=until, store=store)


def drift_panel(
    reference: Any = None,
    current: Any = None,
    columns: list[str] | None = None,
    method: Any = None,
    *,
    store: StoreLike = None,
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
    from nbmlops.widgets import DriftPanel  # ipywidgets loads here, not with nbmlops

    if namespace is None:
        namespace = _user_namespace()
    if method is not None:
        options = {**options, "method": method}
    report = None
    if reference is not None and current is not None:
        report = api.check_drift(reference, current, columns, store=store, **options)
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
