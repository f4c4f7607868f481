"""An evaluation: a model's metrics on a dataset, and whether they count (unseen, comparable)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbmlops._display import value

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STATUSES = ("unseen", "leaky", "not_comparable", "unchecked")
COLOURS = {
    "unseen": "#1a7f37",
    "leaky": "#cf222e",
    "not_comparable": "#9a6700",
    "unchecked": "#57606a",
}


@dataclass(frozen=True)
class Evaluation:
    """One evaluation, as recorded in the ``evaluations`` table (docs/schema.md).

    ``status`` is ``unseen`` (no row of the set in the training data, and comparable),
    ``leaky`` (rows of it were trained on: the metrics do not count), ``not_comparable``
    (missing, extra or retyped columns, or drift: ``failing_columns`` says which) or
    ``unchecked`` (the training data is unknown, or kept no row hashes or profile).
    ``report`` holds the whole story: overlap, columns, drift, label drift, the training data
    compared against and the thresholds.
    """

    evaluation_id: int | None
    task: str
    metrics: Mapping[str, float]
    status: str
    unseen: bool | None
    comparable: bool | None
    overlap: Mapping[str, Any] | None
    failing_columns: list[str]
    report: Mapping[str, Any] = field(repr=False)
    dataset_id: str = ""
    dataset_ref: str | None = None
    n_rows: int = 0
    """The rows evaluated."""
    model: str | None = None
    """The model version evaluated (``name/3``), when it is registered."""
    run_id: str | None = None
    """The run the evaluation was recorded on (its metrics logged there too)."""
    model_run_id: str | None = None
    """The run that trained the model, when a record names it."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Evaluation:
        """The evaluation an ``evaluations`` row records (JSON columns decoded)."""
        report = row["report"]
        name, version = row.get("name"), row.get("version")
        return cls(
            evaluation_id=row["evaluation_id"],
            task=row["task"],
            metrics=row["metrics"],
            status=row["status"],
            unseen=row["unseen"],
            comparable=row["comparable"],
            overlap=report.get("overlap"),
            failing_columns=list(report.get("failing_columns", [])),
            report=report,
            dataset_id=row["dataset_id"],
            dataset_ref=row.get("dataset_ref"),
            n_rows=int(row.get("n_rows") or 0),
            model=None if name is None else f"{name}/{version}",
            run_id=row.get("run_id"),
            model_run_id=row.get("model_run_id"),
        )

    @property
    def badge(self) -> str:
        """``unseen``, ``leaky``, ``not comparable`` or ``unchecked``: the word panels show."""
        return self.status.replace("_", " ")

    @property
    def detail(self) -> str:
        """Why the badge, in a few words: ``18 rows seen in training``, ``failing: age, bmi``."""
        if self.status == "leaky" and self.overlap:
            return f"{self.overlap['rows_without_target']} rows seen in training"
        if self.status == "not_comparable":
            return (
                "failing: "
                + ", ".join(self.failing_columns[:5])
                + (" ..." if len(self.failing_columns) > 5 else "")
            )
        if self.status == "unchecked":
            return str(self.report.get("note") or "training data unknown")
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluation_id": self.evaluation_id,
            "task": self.task,
            "metrics": dict(self.metrics),
            "status": self.status,
            "unseen": self.unseen,
            "comparable": self.comparable,
            "overlap": self.overlap,
            "failing_columns": self.failing_columns,
            "dataset_id": self.dataset_id,
            "dataset_ref": self.dataset_ref,
            "n_rows": self.n_rows,
            "model": self.model,
            "run_id": self.run_id,
            "model_run_id": self.model_run_id,
            "report": dict(self.report),
        }

    def __str__(self) -> str:
        metrics = " ".join(f"{k}={value(v)}" for k, v in self.metrics.items())
        detail = f": {self.detail}" if self.detail else ""
        on = self.dataset_ref or self.dataset_id[:12]
        rows = f", {self.n_rows:,} rows" if self.n_rows else ""
        model = f" of {self.model}" if self.model else ""
        return f"evaluation{model} on {on}{rows} ({self.badge}{detail}) {metrics}".rstrip()

    def __repr__(self) -> str:
        return f"<Evaluation {self.evaluation_id} {self}>"

    def _repr_html_(self) -> str:
        colour = COLOURS.get(self.status, "#57606a")
        badge = (
            f"<span style='background:{colour};color:white;border-radius:4px;"
            f"padding:1px 6px'>{html.escape(self.badge)}</span>"
        )
        detail = f" {html.escape(self.detail)}" if self.detail else ""
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:right'>{html.escape(value(v))}</td></tr>"
            for k, v in self.metrics.items()
        )
        on = html.escape(self.dataset_ref or self.dataset_id[:12])
        model = f" of {html.escape(self.model)}" if self.model else ""
        return f"<div><b>Evaluation{model}</b> on {on}: {badge}{detail}<table>{rows}</table></div>"

    def plot(self) -> Figure:
        """The overlap with the training data (rows seen, with and without the target) and the
        effect size of each drifted column against the minimum that fails it."""
        from matplotlib.figure import Figure

        figure = Figure(figsize=(9, 3.2), layout="constrained")
        left, right = figure.subplots(1, 2)
        overlap = self.overlap or {}
        n_rows = int(overlap.get("n_rows") or 0)
        bars = {
            "seen (features)": overlap.get("rows_without_target") or 0,
            "seen (with target)": overlap.get("rows") or 0,
            "unseen": n_rows - (overlap.get("rows_without_target") or 0),
        }
        left.barh(list(bars), list(bars.values()), color=["#cf222e", "#a40e26", "#1a7f37"])
        left.set_title("rows of the evaluation set" if overlap else "overlap not checked")
        drift = self.report.get("drift") or {}
        failing = set(drift.get("drifted", []))
        drifted = [c for c in drift.get("columns", []) if str(c["column"]) in failing]
        if drifted:
            names = [str(c["column"]) for c in drifted]
            right.barh(names, [c["effect_size"] for c in drifted], color="#9a6700")
            right.axvline(drift.get("min_effect", 0.1), color="k", linewidth=1)
            right.set_title("drifted columns: effect size | minimum")
        else:
            right.set_axis_off()
            right.set_title("no drifted column" if drift.get("checked") else "drift not checked")
        return figure
