"""The compare view: 2..N runs side by side, as live widgets and as static HTML."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from nbmlops.compare import Comparison
from nbmlops.widgets import _html, plots
from nbmlops.widgets._panel import Panel

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

TABS = ("Params", "Metrics", "Steps", "Parallel", "Scatter", "Code", "Data", "Environment")


def _show(target: widgets.HTML, fig: Figure) -> None:
    # An inline PNG in an HTML widget: no kernel-side Output capture, and it is kept in the
    # saved widget state.
    target.value = _html.figure_png(fig)


class CompareView(Panel):
    """Tabs: params diff, metrics with the best highlighted and bar charts, metric-vs-step
    lines, parallel coordinates, param-vs-metric scatter, cell-source diff, datasets same or
    different, environment diff. ``figures`` keeps the last figure drawn in each tab."""

    def __init__(self, comparison: Comparison) -> None:
        self.comparison = comparison
        self.figures: dict[str, Figure] = {}
        labels = comparison.labels
        metrics = list(comparison.metrics().index)
        params = list(comparison.params(only_different=False).index)
        stepped = comparison.stepped_metrics()

        self.all_params = widgets.ToggleButton(description="show all params", value=False)
        self.params_html = widgets.HTML()
        self.all_params.observe(lambda _: self._draw_params(), "value")

        self.metrics_html = widgets.HTML()
        self.bars = widgets.HTML()

        self.step_metric = widgets.Dropdown(options=stepped, description="metric")
        self.steps = widgets.HTML()
        self.step_metric.observe(lambda _: self._draw_steps(), "value")

        self.parallel_metric = widgets.Dropdown(options=metrics, description="metric")
        self.parallel = widgets.HTML()
        self.parallel_metric.observe(lambda _: self._draw_parallel(), "value")

        self.scatter_param = widgets.Dropdown(options=params, description="param")
        self.scatter_metric = widgets.Dropdown(options=metrics, description="metric")
        self.scatter = widgets.HTML()
        for control in (self.scatter_param, self.scatter_metric):
            control.observe(lambda _: self._draw_scatter(), "value")

        pairs = [(f"{labels[0]} → {label}", i) for i, label in enumerate(labels) if i]
        self.code_pair = widgets.Dropdown(options=pairs, description="runs")
        self.code_mode = widgets.ToggleButtons(options=["unified", "side by side"])
        self.code_html = widgets.HTML()
        for control in (self.code_pair, self.code_mode):
            control.observe(lambda _: self._draw_code(), "value")

        self.data_html = widgets.HTML()
        self.all_env = widgets.ToggleButton(description="show all packages", value=False)
        self.env_html = widgets.HTML()
        self.all_env.observe(lambda _: self._draw_environment(), "value")

        self.tabs = widgets.Tab(
            children=[
                widgets.VBox([self.all_params, self.params_html]),
                widgets.VBox([self.metrics_html, self.bars]),
                widgets.VBox([self.step_metric, self.steps]),
                widgets.VBox([self.parallel_metric, self.parallel]),
                widgets.VBox(
                    [widgets.HBox([self.scatter_param, self.scatter_metric]), self.scatter]
                ),
                widgets.VBox([widgets.HBox([self.code_pair, self.code_mode]), self.code_html]),
                self.data_html,
                widgets.VBox([self.all_env, self.env_html]),
            ],
            titles=TABS,
        )
        title = widgets.HTML(f"<b>Comparing {len(labels)} runs:</b> {', '.join(labels)}")
        self.widget = widgets.VBox([title, self.tabs])
        self._drawers = [
            self._draw_params,
            self._draw_metrics,
            self._draw_steps,
            self._draw_parallel,
            self._draw_scatter,
            self._draw_code,
            self._draw_datasets,
            self._draw_environment,
        ]
        self._drawn: set[int] = set()
        self.tabs.observe(lambda _: self._draw_tab(), "selected_index")
        self.refresh()

    # -- drawing -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Redraw the tab on show; the others are drawn when first selected (figures are the
        slow part, so a compare view opens in the time of one tab)."""
        self._drawn.clear()
        self._draw_tab()

    def _draw_tab(self) -> None:
        index = self.tabs.selected_index or 0
        if index not in self._drawn:
            self._drawn.add(index)
            self._drawers[index]()

    def _draw_params(self) -> None:
        frame = self.comparison.params(only_different=not self.all_params.value)
        self.params_html.value = _params_html(frame)

    def _draw_metrics(self) -> None:
        self.metrics_html.value = _metrics_html(self.comparison.metrics())
        self.figures["bars"] = plots.metric_bars(self.comparison)
        _show(self.bars, self.figures["bars"])

    def _draw_steps(self) -> None:
        if self.step_metric.value:
            self.figures["steps"] = plots.metric_lines(self.comparison, self.step_metric.value)
            _show(self.steps, self.figures["steps"])
        else:
            self.steps.value = "<i>no metric has more than one step</i>"

    def _draw_parallel(self) -> None:
        if self.parallel_metric.value:
            fig = plots.parallel_coordinates(self.comparison, self.parallel_metric.value)
            self.figures["parallel"] = fig
            _show(self.parallel, fig)

    def _draw_scatter(self) -> None:
        if self.scatter_param.value and self.scatter_metric.value:
            fig = plots.scatter(
                self.comparison, self.scatter_param.value, self.scatter_metric.value
            )
            self.figures["scatter"] = fig
            _show(self.scatter, fig)

    def _draw_code(self) -> None:
        b = self.code_pair.value or 1
        if self.code_mode.value == "unified":
            self.code_html.value = _html.unified_diff(self.comparison.source_diff(0, b))
        else:
            sources = self.comparison.sources()
            labels = self.comparison.labels
            self.code_html.value = _html.side_by_side(
                sources[0] or "", sources[b] or "", f"run {labels[0]}", f"run {labels[b]}"
            )

    def _draw_datasets(self) -> None:
        self.data_html.value = _datasets_html(self.comparison.datasets())

    def _draw_environment(self) -> None:
        frame = self.comparison.environment(only_different=not self.all_env.value)
        self.env_html.value = _params_html(frame) if len(frame) else "<i>same environment</i>"

    # -- static rendering --------------------------------------------------------------------

    def to_html(self) -> str:
        c = self.comparison
        parts = [
            f"<b>Comparing {len(c.labels)} runs:</b> {', '.join(c.labels)}",
            _html.section("Params that differ", _params_html(c.params())),
            _html.section("Metrics (best in green)", _metrics_html(c.metrics())),
            _html.figure_png(self.figures.get("bars") or plots.metric_bars(c), dpi=70),
            _html.section("Cell source", _html.unified_diff(c.source_diff())),
            _html.section("Datasets", _datasets_html(c.datasets())),
            _html.section("Environment that differs", _params_html(c.environment())),
        ]
        return "<div>" + "".join(parts) + "</div>"

    def to_frame(self) -> pd.DataFrame:
        return self.comparison.to_frame()

    def __repr__(self) -> str:
        return f"<CompareView of {', '.join(self.comparison.labels)}>"


def _params_html(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<i>no differences</i>"

    def style(label: Any, column: str) -> str:
        values = [_html.fmt(v) for v in frame.loc[label]]
        return _html.DIFFERENT if len(set(values)) > 1 else ""

    return _html.table(frame, cell_style=style)


def _metrics_html(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<i>no metrics</i>"
    shown = frame.drop(columns="best")

    def style(label: Any, column: str) -> str:
        best = frame.loc[label, "best"]
        value = frame.loc[label, column]
        return _html.HIGHLIGHT if best is not None and value == frame.loc[label, best] else ""

    return _html.table(shown, cell_style=style)


def _datasets_html(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<i>no datasets recorded</i>"

    def style(label: Any, column: str) -> str:
        return "" if frame.loc[label, "same"] else _html.DIFFERENT

    shown = frame.assign(same=["same" if s else "different" for s in frame["same"]])
    return _html.table(shown, cell_style=style)
