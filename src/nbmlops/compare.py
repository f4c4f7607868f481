"""Comparing runs: what differs in params, metrics, data, environment and code, and which
metric is a run's headline.

The runs panel, the compare view, the REST API and ``nbmlops diff`` all read this, so a
comparison means the same thing everywhere. Which metric value is "best" depends on the metric:
names that read as a loss or an error (``loss``, ``error``, ``mae``, ``mse``, ``rmse``,
``logloss``, ...) are better when lower, everything else when higher; ``lower_is_better``
overrides per metric.

A run's headline metric is the one it logged first: the one the ``%%track`` summary line shows
first, and what a cell's badge and a version's label show. :func:`headline_metrics` orders
every metric of many runs that way, from one query.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbmlops.capture.run import Run
from nbmlops.store import Store
from nbmlops.store.listings import run_metrics

if TYPE_CHECKING:
    import pandas as pd

_LOWER_IS_BETTER = re.compile(
    r"(loss|error|err$|^err|mae|mse|rmse|mape|logloss|perplexity|distance|latency|time|wer|cer)",
    re.IGNORECASE,
)


def lower_is_better(metric: str) -> bool:
    """Whether smaller values of ``metric`` are better, judged by its name."""
    return bool(_LOWER_IS_BETTER.search(metric.rsplit(".", 1)[-1]))


def headline_metrics(store: Store, run_ids: Sequence[str]) -> dict[str, dict[str, float]]:
    """Each run's latest metric values (NaN where NaN was logged), headline first: in the order
    the run first logged them, ties by name. Runs without metrics map to ``{}``."""
    by_run: dict[str, list[tuple[float, str, float]]] = {run_id: [] for run_id in run_ids}
    for metric in run_metrics(store, run_ids):
        value = math.nan if metric.value is None else metric.value
        by_run[metric.run_id].append((metric.first_logged, metric.key, value))
    return {run_id: {k: v for _, k, v in sorted(rows)} for run_id, rows in by_run.items()}


def _same(values: list[Any]) -> bool:
    first = values[0]
    for value in values[1:]:
        if isinstance(first, float) and isinstance(value, float):
            if not (first == value or (math.isnan(first) and math.isnan(value))):
                return False
        elif value != first:
            return False
    return True


@dataclass
class Comparison:
    """Two or more runs side by side. Every table has one column per run, labelled by run id."""

    runs: list[Run]
    lower_is_better: Mapping[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.runs) < 2:
            raise ValueError(f"Compare needs at least two runs, got {len(self.runs)}.")
        self._cache: dict[str, Any] = {}

    @property
    def labels(self) -> list[str]:
        return [r.run_id for r in self.runs]

    def _per_run(self, key: str, read: Any) -> list[Any]:
        if key not in self._cache:
            self._cache[key] = [read(r) for r in self.runs]
        return list(self._cache[key])

    def _table(
        self, rows: list[dict[str, Any]], only_different: bool, missing: Any = None
    ) -> pd.DataFrame:
        import pandas as pd

        keys = sorted({k for row in rows for k in row})
        data = {k: [row.get(k, missing) for row in rows] for k in keys}
        if only_different:
            data = {k: v for k, v in data.items() if not _same(v)}
        frame = pd.DataFrame(data, index=self.labels, dtype=object).T
        frame.columns.name = "run"
        return frame

    def params(self, only_different: bool = True) -> pd.DataFrame:
        """One row per param; by default only the params whose values differ."""
        return self._table(self._per_run("params", lambda r: r.params), only_different)

    def metrics(self) -> pd.DataFrame:
        """One row per metric (latest value), with ``best`` naming the best run."""
        import pandas as pd

        rows = self._per_run("metrics", lambda r: r.metrics)
        keys = sorted({k for row in rows for k in row})
        frame = pd.DataFrame(
            {k: [row.get(k, math.nan) for row in rows] for k in keys},
            index=self.labels,
            dtype="float64",
        ).T
        frame.columns.name = "run"
        frame["best"] = [self.best_run(k, frame.loc[k]) for k in keys]
        return frame

    def best_run(self, metric: str, values: pd.Series) -> str | None:
        finite = values.dropna()
        if finite.empty:
            return None
        lower = self.lower_is_better.get(metric, lower_is_better(metric))
        return str(finite.idxmin() if lower else finite.idxmax())

    def stepped_metrics(self) -> list[str]:
        """Metrics with more than one step in some run (worth a line plot)."""

        keys = set(self.metrics().index)
        stepped = []
        for key in sorted(keys):
            for run in self.runs:
                history: pd.DataFrame = run.metric_history(key)
                if len(history) > 1:
                    stepped.append(key)
                    break
        return stepped

    def metric_histories(self, key: str) -> dict[str, pd.DataFrame]:
        return {run.run_id: run.metric_history(key) for run in self.runs}

    def datasets(self) -> pd.DataFrame:
        """One row per (role, name): each run's fingerprint prefix and whether all are ``same``."""
        rows = [
            {f"{d['role']} {d['name']}": d["dataset_id"][:16] for d in datasets}
            for datasets in self._per_run("datasets", lambda r: r.datasets)
        ]
        frame = self._table(rows, only_different=False)
        frame["same"] = [_same(list(frame.loc[i, self.labels])) for i in frame.index]
        return frame

    def environment(self, only_different: bool = True) -> pd.DataFrame:
        """Python, platform, git state and package versions, per run."""
        rows = []
        for env in self._per_run("environment", lambda r: r.environment or {}):
            flat = {
                k: env.get(k)
                for k in ("python", "platform", "git_commit", "git_branch", "git_dirty")
            }
            flat.update({f"package {k}": v for k, v in env.get("packages", {}).items()})
            rows.append(flat)
        return self._table(rows, only_different)

    def sources(self) -> list[str | None]:
        return self._per_run("source", lambda r: r.cell_source)

    def source_diff(self, a: int = 0, b: int = 1) -> list[str]:
        """Unified diff of the cell source of run ``a`` and run ``b`` (indices)."""
        sources = self.sources()
        return list(
            difflib.unified_diff(
                (sources[a] or "").splitlines(),
                (sources[b] or "").splitlines(),
                f"run {self.labels[a]}",
                f"run {self.labels[b]}",
                lineterm="",
            )
        )

    def to_frame(self) -> pd.DataFrame:
        """Params (differing) and metrics in one table, for pandas users and exports."""
        import pandas as pd

        params = self.params().rename(index=lambda k: f"params.{k}")
        metrics = self.metrics().drop(columns="best").rename(index=lambda k: f"metrics.{k}")
        return pd.concat([params, metrics])

    def to_dict(self) -> dict[str, Any]:
        return json.loads(self.to_frame().to_json(orient="index", default_handler=str))  # type: ignore[no-any-return]
