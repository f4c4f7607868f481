"""Cell history: every version of a cell, the runs of each, and diffs between versions."""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nbmlops.errors import AmbiguousIdError, NotFoundError
from nbmlops.store import Store
from nbmlops.store import cells as cell_store
from nbmlops.store import runs as run_store
from nbmlops.store.cells import CellRef

if TYPE_CHECKING:
    import pandas as pd


def _cell_of(store: Store, run_or_cell: str) -> CellRef:
    """The cell named by a run id (prefix), a cell id (prefix) or a run name (its newest run)."""
    no_cell: NotFoundError | None = None  # a run that no notebook cell made
    try:
        row = run_store.run_row(store, store.resolve_run_id(run_or_cell))
    except (NotFoundError, AmbiguousIdError):
        pass
    else:
        if row["cell_id"] is not None:
            return CellRef(row["notebook"], str(row["cell_id"]))
        no_cell = _not_from_a_cell(row["run_id"])
    cells = cell_store.cells_matching(store, run_or_cell)
    if len(cells) == 1:
        return cells[0]
    if cells:
        raise AmbiguousIdError(run_or_cell, [c.cell_id for c in cells])
    if no_cell is not None:
        raise no_cell
    named = cell_store.newest_run_named(store, run_or_cell)
    if named is not None:
        if named["cell_id"] is None:
            raise _not_from_a_cell(named["run_id"], run_or_cell)
        return CellRef(named["notebook"], str(named["cell_id"]))
    near = difflib.get_close_matches(
        run_or_cell, cell_store.names_and_cell_ids(store), n=5, cutoff=0.6
    )
    hint = f"did you mean {', '.join(map(repr, dict.fromkeys(near)))}? " if near else ""
    raise NotFoundError(
        f"No run id, cell id or run name {run_or_cell!r} in {store.db_path}; {hint}"
        "run names are listed by nbm.runs(), cell ids by "
        "nbm.sql('SELECT DISTINCT notebook, cell_id FROM cell_executions')."
    )


def _not_from_a_cell(run_id: str, name: str | None = None) -> NotFoundError:
    called = f" (the newest run named {name!r})" if name else ""
    return NotFoundError(
        f"Run {run_id}{called} was not made by a notebook cell, so it has no cell history."
    )


def cell_history(store: Store, run_or_cell: str) -> pd.DataFrame:
    """Versions of the cell, oldest first: ``version`` (1, 2, ...), ``source_hash``,
    ``first_run``, ``last_run``, ``executions``, ``errors``, ``runs`` (ids of tracked runs of
    that version) and ``source``. ``frame.attrs`` holds the notebook and cell id."""
    import pandas as pd

    cell = _cell_of(store, run_or_cell)
    versions = cell_store.versions_of(store, cell)
    runs_by_version: dict[str, list[str]] = {}
    for run in cell_store.runs_of(store, cell):
        runs_by_version.setdefault(run["cell_version"], []).append(run["run_id"])
    frame = pd.DataFrame(
        {
            "version": range(1, len(versions) + 1),
            "source_hash": [v["source_hash"] for v in versions],
            "first_run": pd.to_datetime([v["first_run"] for v in versions], unit="s", utc=True),
            "last_run": pd.to_datetime([v["last_run"] for v in versions], unit="s", utc=True),
            "executions": [v["executions"] for v in versions],
            "errors": [v["errors"] for v in versions],
            "runs": [runs_by_version.get(v["source_hash"], []) for v in versions],
            "source": [v["source"] for v in versions],
        }
    )
    frame.attrs.update(notebook=cell.notebook, cell_id=cell.cell_id)
    return frame


@dataclass(frozen=True)
class CellDiff:
    """Two versions of a cell's source; ``str()`` is a unified diff, notebooks show colours."""

    a_label: str
    b_label: str
    a_source: str
    b_source: str

    @property
    def lines(self) -> list[str]:
        return list(
            difflib.unified_diff(
                self.a_source.splitlines(),
                self.b_source.splitlines(),
                self.a_label,
                self.b_label,
                lineterm="",
            )
        )

    @property
    def same(self) -> bool:
        return self.a_source == self.b_source

    def __str__(self) -> str:
        return (
            "\n".join(self.lines) if not self.same else f"{self.a_label} and {self.b_label}: same"
        )

    def _repr_html_(self) -> str:
        colours = {"+": "#e6ffec", "-": "#ffebe9", "@": "#ddf4ff"}
        rows = []
        for line in self.lines if not self.same else [str(self)]:
            colour = colours.get(line[:1], "transparent")
            if line.startswith(("+++", "---")):
                colour = "transparent"
            rows.append(f"<div style='background:{colour}'>{html.escape(line) or '&nbsp;'}</div>")
        return f"<pre style='line-height:1.35'>{''.join(rows)}</pre>"


def _source_of(store: Store, ref: str) -> tuple[str, str]:
    """(label, source) for a run id (prefix) or a cell-version hash (prefix)."""
    try:
        row = run_store.run_row(store, store.resolve_run_id(ref))
    except NotFoundError:
        digest = cell_store.resolve_source_hash(store, ref)
        source = cell_store.cell_source(store, digest) if digest else None
        if source is None or digest is None:
            raise NotFoundError(
                f"{ref!r} is neither a run id nor a cell version (source hash) in "
                f"{store.db_path}; versions are listed by nbm.cell_history(RUN_OR_CELL)."
            ) from None
        return f"version {digest[:12]}", source
    version = row["cell_version"]
    source = cell_store.cell_source(store, version) if version else None
    if source is None:
        raise NotFoundError(f"Run {row['run_id']} has no recorded cell source.")
    return f"run {row['run_id']}", source


def cell_diff(store: Store, a: str, b: str) -> CellDiff:
    a_label, a_source = _source_of(store, a)
    b_label, b_source = _source_of(store, b)
    return CellDiff(a_label, b_label, a_source, b_source)
