"""DriftReport: the result of checking current data against a reference."""

from __future__ import annotations

import html
import math
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbmlops.errors import DriftInputError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from nbmlops.drift._profile import Profile

FRAME_COLUMNS = (
    "column",
    "method",
    "statistic",
    "p_value",
    "threshold",
    "drifted",
    "effect_size",
)


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test: the statistic, its p-value (tests) and effect size, and the verdict.

    Tests (ks, chi2_gof, chi2_contingency, z) drift when ``p_value < threshold``; distances
    (wasserstein, jensenshannon, psi, hellinger, l_infinity) have no p-value and drift when
    ``statistic >= threshold``. ``effect_size`` does not grow with the sample size: KS D,
    Cramér's V (chi-square), Cohen's h (z-test), the distance itself for distances.
    """

    column: Hashable
    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    effect_size: float
    kind: str = ""
    n_reference: int = 0
    n_current: int = 0
    missing_reference: int = 0
    missing_current: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "method": self.method,
            "statistic": _clean(self.statistic),
            "p_value": _clean(self.p_value),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "effect_size": _clean(self.effect_size),
            "kind": self.kind,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "missing_reference": self.missing_reference,
            "missing_current": self.missing_current,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnDrift:
        column = d["column"]
        return cls(
            column=tuple(column) if isinstance(column, list) else column,
            method=d["method"],
            statistic=math.nan if d["statistic"] is None else float(d["statistic"]),
            p_value=None if d["p_value"] is None else float(d["p_value"]),
            threshold=float(d["threshold"]),
            drifted=bool(d["drifted"]),
            effect_size=math.nan if d["effect_size"] is None else float(d["effect_size"]),
            kind=d.get("kind", ""),
            n_reference=int(d.get("n_reference", 0)),
            n_current=int(d.get("n_current", 0)),
            missing_reference=int(d.get("missing_reference", 0)),
            missing_current=int(d.get("missing_current", 0)),
            note=d.get("note", ""),
        )


def _clean(value: float | None) -> float | None:
    """NaN and infinities are stored as null (JSON has no such numbers)."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class DriftReport:
    """Per-column drift results and the dataset verdict.

    ``dataset_drift`` is ``drift_share >= drift_share_threshold`` (default 0.5, Evidently's rule)
    when no multiple-testing correction is asked for; with ``multiple_testing='bonferroni'`` or
    ``'bh'`` the p-value thresholds are corrected and the dataset drifts when any column does.

    ``column_settings`` says how each column was tested: ``{"column", "method", "params",
    "threshold"}`` with the method's parameters (e.g. ``{"base": 2, "bins": "doane"}``) and the
    nominal threshold, before any multiple-testing correction. Reports read back from the store
    keep all of it, and ``plot()`` works on them: the current side of each plot is stored with the
    report, the reference side comes from the stored profile.
    """

    columns: tuple[ColumnDrift, ...]
    dataset_drift: bool
    drift_share: float
    drift_share_threshold: float = 0.5
    multiple_testing: str | None = None
    profile_id: str | None = None
    current_id: str | None = None
    report_id: str | None = None
    created_at: float = field(default_factory=time.time)
    warnings: tuple[str, ...] = ()
    column_settings: tuple[Mapping[str, Any], ...] = ()
    _curves: Mapping[Hashable, Mapping[str, Any]] = field(
        default_factory=dict, repr=False, compare=False
    )
    # The reference profile checked against, so that saving the report can save it too.
    _profile: Profile | None = field(default=None, repr=False, compare=False)

    # -- access ----------------------------------------------------------------------------

    @property
    def drifted_columns(self) -> list[Hashable]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def n_drifted(self) -> int:
        return sum(c.drifted for c in self.columns)

    def __getitem__(self, column: Hashable) -> ColumnDrift:
        for c in self.columns:
            if c.column == column:
                return c
        raise KeyError(column)

    def __repr__(self) -> str:
        verdict = "drift" if self.dataset_drift else "no drift"
        drifted = ", ".join(repr(c) for c in self.drifted_columns[:8])
        more = " ..." if self.n_drifted > 8 else ""
        return (
            f"DriftReport({verdict}: {self.n_drifted}/{len(self.columns)} columns drifted, "
            f"share {self.drift_share:.2f} (dataset drift at >= {self.drift_share_threshold:g}"
            f"{_correction_text(self.multiple_testing)}); drifted=[{drifted}{more}])"
        )

    # -- conversion ------------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """One row per column: column, method, statistic, p_value, threshold, drifted,
        effect_size."""
        import pandas as pd

        rows = [
            (c.column, c.method, c.statistic, c.p_value, c.threshold, c.drifted, c.effect_size)
            for c in self.columns
        ]
        frame = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
        frame["p_value"] = frame["p_value"].astype("float64")
        frame["drifted"] = frame["drifted"].astype(bool)
        return frame

    def to_dict(self) -> dict[str, Any]:
        return {
            "report_id": self.report_id,
            "profile_id": self.profile_id,
            "current_id": self.current_id,
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "drift_share_threshold": self.drift_share_threshold,
            "multiple_testing": self.multiple_testing,
            "created_at": self.created_at,
            "warnings": list(self.warnings),
            "columns": [c.to_dict() for c in self.columns],
            "column_settings": [dict(s) for s in self.column_settings],
        }

    # -- display ---------------------------------------------------------------------------

    def _repr_html_(self) -> str:
        verdict = "Dataset drift detected" if self.dataset_drift else "No dataset drift"
        colour = "#b00020" if self.dataset_drift else "#1b5e20"
        head = "".join(f"<th>{h}</th>" for h in FRAME_COLUMNS)
        body = []
        for c in self.columns:
            style = ' style="background:#fde0e0"' if c.drifted else ""
            cells = [
                html.escape(str(c.column)),
                html.escape(c.method),
                _fmt(c.statistic),
                _fmt(c.p_value),
                _fmt(c.threshold),
                "<b>yes</b>" if c.drifted else "no",
                _fmt(c.effect_size),
            ]
            title = f' title="{html.escape(c.note)}"' if c.note else ""
            body.append(f"<tr{style}{title}>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
        notes = "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings)
        return (
            f'<div class="nbmlops-drift"><p style="color:{colour}"><b>{verdict}</b>: '
            f"{self.n_drifted} of {len(self.columns)} columns drifted "
            f"(share {self.drift_share:.2f}, threshold {self.drift_share_threshold:g}"
            f"{html.escape(_correction_text(self.multiple_testing))})</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + "</div>"
        )

    def plot(self, columns: Iterable[Hashable] | None = None, max_columns: int = 12) -> Figure:
        """Reference vs current for the drifted columns (or ``columns``): ECDFs of numeric
        columns, side-by-side frequencies of categorical ones. Returns a matplotlib Figure."""
        from matplotlib.figure import Figure

        chosen = list(columns) if columns is not None else self.drifted_columns
        unknown = [c for c in chosen if c not in {d.column for d in self.columns}]
        if unknown:
            raise DriftInputError(
                f"Column(s) {unknown} are not in this report; it has "
                f"{[c.column for c in self.columns][:10]}.",
                [str(c) for c in unknown],
            )
        missing = [c for c in chosen if c not in self._curves]
        if missing:
            raise DriftInputError(
                f"This report has no distributions to plot for {missing}: it was saved before "
                "nbmlops stored them with reports (store migration 0007), or the column was not "
                "tested. Check the data again to plot it.",
                [str(c) for c in missing],
            )
        chosen = chosen[:max_columns]
        n = max(len(chosen), 1)
        ncols = min(n, 3)
        nrows = math.ceil(n / ncols)
        fig = Figure(figsize=(4.2 * ncols, 3.0 * nrows), layout="constrained")
        if not chosen:
            ax = fig.add_subplot(1, 1, 1)
            ax.text(0.5, 0.5, "no drifted columns", ha="center", va="center")
            ax.set_axis_off()
            return fig
        for i, name in enumerate(chosen):
            ax = fig.add_subplot(nrows, ncols, i + 1)
            _plot_column(ax, name, self[name], self._curves[name])
        return fig


def _plot_column(ax: Any, name: Hashable, result: ColumnDrift, curve: Mapping[str, Any]) -> None:
    import numpy as np

    if curve["type"] == "ecdf":
        probs = curve["probs"]
        ax.step(curve["reference"], probs, where="post", label="reference")
        ax.step(curve["current"], probs, where="post", label="current")
        ax.set_ylabel("ECDF")
    else:
        keys = [str(k) for k in curve["keys"]]
        x = np.arange(len(keys))
        ax.bar(x - 0.2, curve["reference"], width=0.4, label="reference")
        ax.bar(x + 0.2, curve["current"], width=0.4, label="current")
        ax.set_xticks(x, keys, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("share")
    stat = f"{result.method} {_fmt(result.statistic)}"
    if result.p_value is not None:
        stat += f", p={_fmt(result.p_value)}"
    ax.set_title(f"{name}: {stat}" + (" (drift)" if result.drifted else ""), fontsize=9)
    ax.legend(fontsize=7)


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.4g}"


def _correction_text(correction: str | None) -> str:
    return "" if correction is None else f", {correction}-corrected p-values"


def apply_verdict(
    results: Sequence[ColumnDrift],
    drift_share_threshold: float,
    multiple_testing: str | None,
) -> tuple[list[ColumnDrift], bool, float]:
    """Correct the tests' thresholds for multiple testing, then judge the dataset."""
    import dataclasses

    import numpy as np

    out = list(results)
    tests = [
        i
        for i, c in enumerate(out)
        if c.p_value is not None and math.isfinite(c.p_value) and c.method != "untested"
    ]
    k = len(tests)
    if multiple_testing not in (None, "bonferroni", "bh"):
        raise DriftInputError(
            f"multiple_testing must be None, 'bonferroni' or 'bh', not {multiple_testing!r}."
        )
    if multiple_testing == "bonferroni" and k:
        for i in tests:
            c = out[i]
            threshold = c.threshold / k
            assert c.p_value is not None
            out[i] = dataclasses.replace(c, threshold=threshold, drifted=c.p_value < threshold)
    elif multiple_testing == "bh" and k:
        order = sorted(tests, key=lambda i: out[i].p_value or 0.0)
        ranks = np.arange(1, k + 1)
        p_sorted = np.array([out[i].p_value for i in order], dtype=np.float64)
        alphas = np.array([out[i].threshold for i in order], dtype=np.float64)
        passing = np.flatnonzero(p_sorted <= ranks * alphas / k)
        cutoff_rank = int(passing[-1]) + 1 if len(passing) else 0
        for position, i in enumerate(order):
            c = out[i]
            cutoff = max(cutoff_rank, 1) * c.threshold / k
            out[i] = dataclasses.replace(c, threshold=cutoff, drifted=position < cutoff_rank)
    share = sum(c.drifted for c in out) / len(out) if out else 0.0
    if multiple_testing is None:
        dataset_drift = bool(out) and share >= drift_share_threshold
    else:
        dataset_drift = any(c.drifted for c in out)
    return out, dataset_drift, share
