"""The cell history panel: every version of a cell, its runs and metrics, diffs between any two
versions, and restoring an old version into a new cell."""

from __future__ import annotations

import difflib
import html
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from nbmlops import api
from nbmlops.compare import headline_metrics
from nbmlops.store import open_store
from nbmlops.widgets import _html
from nbmlops.widgets._panel import Panel

if TYPE_CHECKING:
    import pandas as pd


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class CellHistoryPanel(Panel):
    def __init__(self, run_or_cell: str, *, store: Any = None, shell: Any = None) -> None:
        self.store = store
        self.shell = shell
        self.history: pd.DataFrame = api.cell_history(run_or_cell, store=store)
        # Each version's newest run's metrics, headline first, read in one query.
        newest = [runs[-1] if runs else "" for runs in self.history["runs"]]
        by_run = headline_metrics(open_store(store, create=False), [r for r in newest if r])
        self.metrics = [by_run.get(run_id, {}) for run_id in newest]
        labels = [self._label(i) for i in range(len(self.history))]
        last = len(labels) - 1

        self.versions = widgets.Select(
            options=[(label, i) for i, label in enumerate(labels)],
            value=last if last >= 0 else None,
            rows=min(8, max(2, len(labels))),
            layout=widgets.Layout(width="100%"),
        )
        self.detail = widgets.HTML()
        self.restore_button = widgets.Button(
            description="restore into a new cell",
            icon="undo",
            disabled=shell is None,
            layout=widgets.Layout(width="auto"),
            tooltip="insert this version's source as the next cell",
        )
        self.diff_a = widgets.Dropdown(
            options=[(f"v{i + 1}", i) for i in range(len(labels))],
            value=max(0, last - 1) if labels else None,
            description="diff",
        )
        self.diff_b = widgets.Dropdown(
            options=[(f"v{i + 1}", i) for i in range(len(labels))],
            value=last if labels else None,
            description="with",
        )
        self.diff_html = widgets.HTML()

        self.versions.observe(lambda _: self._draw_detail(), "value")
        for control in (self.diff_a, self.diff_b):
            control.observe(lambda _: self._draw_diff(), "value")
        self.restore_button.on_click(lambda _: self.restore())

        cell = self.history.attrs.get("cell_id")
        notebook = self.history.attrs.get("notebook")
        title = widgets.HTML(
            f"<b>Cell {html.escape(str(cell))}</b> "
            f"<span style='color:#666'>{html.escape(str(notebook or ''))}</span> · "
            f"{len(labels)} versions"
        )
        self.widget = widgets.VBox(
            [
                title,
                self.versions,
                self.detail,
                self.restore_button,
                widgets.HBox([self.diff_a, self.diff_b]),
                self.diff_html,
            ]
        )
        self._draw_detail()
        self._draw_diff()

    def _label(self, i: int) -> str:
        row = self.history.iloc[i]
        when = _html.when(row["first_run"])
        runs = len(row["runs"])
        shown = " ".join(f"{k}={v:.4g}" for k, v in list(self.metrics[i].items())[:3])
        parts = [f"v{i + 1}", when, _count(row["executions"], "execution"), _count(runs, "run")]
        if row["errors"]:
            parts.append(_count(row["errors"], "error"))
        if shown:
            parts.append(shown)
        return " · ".join(parts)

    def _draw_detail(self) -> None:
        i = self.versions.value
        if i is None:
            self.detail.value = "<i>no versions recorded</i>"
            return
        row = self.history.iloc[i]
        runs = ", ".join(row["runs"]) or "none"
        self.detail.value = (
            f"<div style='font-size:12px'>version {row['source_hash'][:12]} · runs: {runs}</div>"
            f"<pre style='background:#f5f5f5;padding:6px;font-size:12px;margin:4px 0'>"
            f"{html.escape(row['source'])}</pre>"
        )

    def _draw_diff(self) -> None:
        a, b = self.diff_a.value, self.diff_b.value
        if a is None or b is None:
            self.diff_html.value = ""
            return
        self.diff_html.value = _html.unified_diff(self.diff_lines(a, b))

    def diff_lines(self, a: int, b: int) -> list[str]:
        return list(
            difflib.unified_diff(
                self.history["source"].iloc[a].splitlines(),
                self.history["source"].iloc[b].splitlines(),
                f"v{a + 1}",
                f"v{b + 1}",
                lineterm="",
            )
        )

    def restore(self) -> str | None:
        """Put the selected version's source into the next cell (the current one is kept)."""
        i = self.versions.value
        if i is None or self.shell is None:
            return None
        source = str(self.history["source"].iloc[i])
        self.shell.set_next_input(source, replace=False)
        return source

    def to_frame(self) -> pd.DataFrame:
        return self.history

    def to_html(self) -> str:
        table = self.history[["version", "first_run", "executions", "errors"]].assign(
            runs=[", ".join(r) for r in self.history["runs"]],
            first_run=self.history["first_run"].map(_html.when),
        )
        n = len(self.history)
        diff = _html.unified_diff(self.diff_lines(n - 2, n - 1)) if n > 1 else ""
        return _html.table(table, index=False) + diff

    def __repr__(self) -> str:
        return f"<CellHistoryPanel: {len(self.history)} versions>"
