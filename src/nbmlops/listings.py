"""Runs as the interfaces list them: one page of runs with the total, a notebook's cells each
with its newest run, that run's headline metric and the cell's version counts, and each run's
newest evaluation (the badge the panels show next to metrics).

The JupyterLab sidebar and badges (through the REST API), the panels and the CLI ask these
questions; the answers are decided here and read by a fixed number of queries
(:mod:`nbmlops.store.listings`), however many runs or cells there are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from nbmlops.capture.run import reap
from nbmlops.compare import headline_metrics
from nbmlops.evaluation.result import Evaluation
from nbmlops.filter import parse_filter
from nbmlops.store import Store
from nbmlops.store import evaluations as evaluation_sql
from nbmlops.store import listings as sql
from nbmlops.store.listings import LatestCellRun, RunsPage


def runs_page(
    store: Store,
    filter: str | None = None,
    experiment: str | None = None,
    notebooks: Sequence[str] | None = None,
    *,
    limit: int,
    offset: int = 0,
) -> RunsPage:
    """``limit`` runs from ``offset``, newest first, as ``nbmlops.runs()`` lists them (same
    filter language), limited to the runs recorded under any of ``notebooks`` (paths, bound as
    values), and how many match in all. Runs whose process died are marked interrupted first."""
    tree = parse_filter(filter) if filter and filter.strip() else None
    reap(store)
    return sql.runs_page(store, tree, experiment, notebooks, limit=limit, offset=offset)


@dataclass(frozen=True)
class LatestCell:
    """A tracked cell's newest run (``run``) and that run's metrics, headline first; metrics
    whose latest value is NaN are left out."""

    run: LatestCellRun
    metrics: dict[str, float]

    @property
    def headline(self) -> tuple[str, float] | None:
        """The headline metric (key, value): the first the run logged; None without metrics."""
        return next(iter(self.metrics.items()), None)


def latest_cells(store: Store, notebooks: Sequence[str]) -> list[LatestCell]:
    """Each tracked cell recorded under any of ``notebooks`` (the paths one notebook may be
    recorded under), newest run first. Cells executed but never tracked have no run and are not
    listed. Two queries, whatever the number of cells."""
    reap(store)
    runs = sql.latest_run_per_cell(store, notebooks)
    metrics = headline_metrics(store, [run.run_id for run in runs])
    return [
        LatestCell(run, {k: v for k, v in metrics[run.run_id].items() if not math.isnan(v)})
        for run in runs
    ]


def latest_evaluations(store: Store, run_ids: Sequence[str]) -> dict[str, Evaluation]:
    """The newest evaluation of each of ``run_ids`` that has one: recorded on the run, or of a
    model the run trained (evaluated later, elsewhere). One query per 400 runs."""
    found = evaluation_sql.evaluations_of_runs(store, run_ids)
    return {run_id: Evaluation.from_row(rows[-1]) for run_id, rows in found.items()}
