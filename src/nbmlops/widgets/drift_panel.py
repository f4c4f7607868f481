"""The drift panel: the verdict, a sortable per-column table, and a column's reference vs
current plot when it is selected."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from nbmlops.widgets import _html
from nbmlops.widgets._panel import Panel

if TYPE_CHECKING:
    import pandas as pd

    from nbmlops.drift import DriftReport

SORTS = {
    "drifted first": (["drifted", "effect_size"], [False, False]),
    "effect size": (["effect_size"], [False]),
    "p-value": (["p_value"], [True]),
    "column": (["column"], [True]),
}


class DriftPanel(Panel):
    def __init__(self, report: DriftReport, *, title: str = "") -> None:
        self.report = report
        self.frame: pd.DataFrame = report.to_frame()
        self.figure: Any = None
        verdict = "dataset drift" if report.dataset_drift else "no dataset drift"
        colour = "#c62828" if report.dataset_drift else "#2e7d32"
        drifted = int(self.frame["drifted"].sum())
        self.verdict = widgets.HTML(
            f"<b style='color:{colour}'>{verdict}</b> · {drifted} of {len(self.frame)} columns "
            f"drifted (share {report.drift_share:.2f}) {html.escape(title)}"
        )
        self.sort = widgets.ToggleButtons(options=list(SORTS), description="sort")
        self.table = widgets.HTML()
        self.column = widgets.Select(rows=min(10, max(2, len(self.frame))), description="plot")
        self.plot = widgets.HTML()
        self.sort.observe(lambda _: self._draw_table(), "value")
        self.column.observe(lambda _: self._draw_plot(), "value")
        self.widget = widgets.VBox(
            [self.verdict, self.sort, self.table, widgets.HBox([self.column, self.plot])]
        )
        self._draw_table()

    def sorted_frame(self) -> pd.DataFrame:
        by, ascending = SORTS[self.sort.value]
        return self.frame.sort_values(by, ascending=ascending, na_position="last", kind="stable")

    def _draw_table(self) -> None:
        shown = self.sorted_frame()
        self.table.value = _table_html(shown)
        labels = [
            (f"{'⚠ ' if row.drifted else ''}{row.column}", row.column) for row in shown.itertuples()
        ]
        current = self.column.value
        self.column.options = labels
        first_drifted = next((c for c in shown[shown["drifted"]]["column"]), None)
        target = current if current in list(shown["column"]) else first_drifted
        if target is not None:
            self.column.value = target
        self._draw_plot()

    def _draw_plot(self) -> None:
        if self.column.value is None:
            self.plot.value = ""
            return
        try:
            self.figure = self.report.plot(columns=[self.column.value])
        except Exception as exc:  # e.g. a report read back from the store has no data to plot
            self.plot.value = f"<i>{html.escape(str(exc))}</i>"
            return
        self.plot.value = _html.figure_png(self.figure)

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def to_html(self) -> str:
        return f"<div>{self.verdict.value}</div>" + _table_html(self.sorted_frame())

    def __repr__(self) -> str:
        return f"<DriftPanel: {int(self.frame['drifted'].sum())}/{len(self.frame)} drifted>"


def _table_html(frame: pd.DataFrame) -> str:
    def style(label: Any, column: str) -> str:
        return _html.DIFFERENT if frame.loc[label, "drifted"] else ""

    return _html.table(frame, index=False, cell_style=style)
