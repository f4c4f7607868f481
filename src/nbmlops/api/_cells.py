"""Cells and comparisons: a cell's versions and diffs, runs side by side, lineage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from nbmlops.api._runs import get_run
from nbmlops.capture import history
from nbmlops.compare import Comparison
from nbmlops.provenance import Lineage, build_lineage
from nbmlops.store import StoreLike, open_store

if TYPE_CHECKING:
    import pandas as pd

    from nbmlops.capture.history import CellDiff


def cell_history(run_or_cell: str, *, store: StoreLike = None) -> pd.DataFrame:
    """Every version of a notebook cell, named by one of its runs or by its cell id."""
    return history.cell_history(open_store(store, create=False), run_or_cell)


def cell_diff(a: str, b: str, *, store: StoreLike = None) -> CellDiff:
    """Diff two cell versions, each named by a run id or a source hash (prefixes work)."""
    return history.cell_diff(open_store(store, create=False), a, b)


def compare_runs(
    *run_ids: str,
    lower_is_better: Mapping[str, bool] | None = None,
    store: StoreLike = None,
) -> Comparison:
    """Two or more runs side by side: params, metrics (with the best run), datasets,
    environment and cell source. ``lower_is_better`` overrides the guess from metric names,
    e.g. ``{"auc": False}``."""
    return Comparison([get_run(r, store=store) for r in run_ids], dict(lower_is_better or {}))


def lineage(run_id: str, *, store: StoreLike = None) -> Lineage:
    """What a run read (and which runs made it) and what it produced (and who used it)."""
    return build_lineage(get_run(run_id, store=store))
