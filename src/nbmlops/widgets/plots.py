"""Matplotlib figures for the compare view, built with :func:`nbmlops._figures.new_figure`
(``Figure`` directly, not pyplot)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nbmlops._figures import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from nbmlops.compare import Comparison

BEST = "#2e7d32"
OTHER = "#90a4ae"
PALETTE = ["#1565c0", "#ef6c00", "#2e7d32", "#c62828", "#6a1b9a", "#00838f", "#9e9d24", "#4e342e"]


def metric_bars(comparison: Comparison) -> Figure:
    """One small bar chart per metric; the best run's bar in green."""
    metrics = comparison.metrics()
    keys = list(metrics.index)
    cols = min(3, max(1, len(keys)))
    rows = max(1, math.ceil(len(keys) / cols))
    fig = new_figure(3.4 * cols, 2.4 * rows)
    if not keys:
        fig.text(0.5, 0.5, "no metrics", ha="center")
        return fig
    axes = fig.subplots(rows, cols, squeeze=False)
    labels = comparison.labels
    for ax, key in zip(axes.flat, keys, strict=False):
        values = [metrics.loc[key, label] for label in labels]
        best = metrics.loc[key, "best"]
        top = math.nan if best is None else metrics.loc[key, best]
        ax.bar(  # every run that ties with the best is best
            range(len(labels)),
            [0 if math.isnan(v) else v for v in values],
            color=[BEST if v == top else OTHER for v in values],
        )
        ax.set_title(key, fontsize=9)
        ax.set_xticks(range(len(labels)), [label[:6] for label in labels], fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    return fig


def metric_lines(comparison: Comparison, key: str) -> Figure:
    """``key`` against step, one line per run."""
    fig = new_figure(6, 3)
    ax = fig.subplots()
    for i, (run_id, history) in enumerate(comparison.metric_histories(key).items()):
        if len(history):
            ax.plot(history["step"], history["value"], label=run_id[:8], color=PALETTE[i % 8])
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.legend(fontsize=7)
    return fig


def _numeric(values: list[Any]) -> list[float] | None:
    """Values as floats (a run lacking the param gives NaN), or None if any is not a number."""
    numbers = []
    for value in values:
        if value is None:
            numbers.append(math.nan)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            return None
        else:
            numbers.append(float(value))
    return numbers


def _finite_range(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if not math.isnan(v)] or [0.0]
    return min(finite), max(finite)


def parallel_coordinates(comparison: Comparison, metric: str) -> Figure:
    """Each run a line across its numeric params (each axis scaled to its range) to ``metric``."""
    params = comparison.params(only_different=False)
    metrics = comparison.metrics()
    labels = comparison.labels
    axes_data: list[tuple[str, list[float]]] = []
    for name in params.index:
        numbers = _numeric([params.loc[name, label] for label in labels])
        if numbers is not None and len({n for n in numbers if not math.isnan(n)}) > 1:
            axes_data.append((name, numbers))
    if metric in metrics.index:
        row: dict[Any, Any] = dict(metrics.loc[metric])
        axes_data.append((metric, [float(row[label]) for label in labels]))
    fig = new_figure(max(4.0, 1.4 * len(axes_data)), 3.2)
    ax = fig.subplots()
    if len(axes_data) < 2:
        ax.text(0.5, 0.5, "needs numeric params that differ", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    scores = axes_data[-1][1]
    finite = [s for s in scores if not math.isnan(s)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    for j, label in enumerate(labels):
        ys = []
        for _, values in axes_data:  # a missing value (NaN) breaks the run's line there
            lo, hi = _finite_range(values)
            if math.isnan(values[j]):
                ys.append(math.nan)
            else:
                ys.append(0.5 if hi == lo else (values[j] - lo) / (hi - lo))
        shade = 0.5 if high == low or math.isnan(scores[j]) else (scores[j] - low) / (high - low)
        ax.plot(range(len(axes_data)), ys, color=cmap(shade), marker="o", label=label[:8])
    ax.set_xticks(range(len(axes_data)), [name for name, _ in axes_data], fontsize=8, rotation=20)
    for x, (_, values) in enumerate(axes_data):
        lo, hi = _finite_range(values)
        ax.axvline(x, color="#bbb", lw=0.8)
        ax.annotate(f"{lo:.3g}", (x, 0), fontsize=7, xytext=(2, -10), textcoords="offset points")
        ax.annotate(f"{hi:.3g}", (x, 1), fontsize=7, xytext=(2, 4), textcoords="offset points")
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def scatter(comparison: Comparison, param: str, metric: str) -> Figure:
    params = comparison.params(only_different=False)
    metrics = comparison.metrics()
    fig = new_figure(4.5, 3.2)
    ax = fig.subplots()
    xs: dict[Any, Any] = dict(params.loc[param]) if param in params.index else {}
    ys: dict[Any, Any] = dict(metrics.loc[metric]) if metric in metrics.index else {}
    for i, label in enumerate(comparison.labels):
        x, y = xs.get(label), ys.get(label, math.nan)
        if x is None or (isinstance(x, float) and math.isnan(x)):
            continue
        ax.scatter([x], [y], color=PALETTE[i % 8], label=label[:8])
    ax.set_xlabel(param)
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    return fig
