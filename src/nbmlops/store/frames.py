"""Turn rows read from the store into the wide DataFrame that ``nbmlops.runs()`` returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

RUN_COLUMNS = (
    "run_id",
    "experiment",
    "name",
    "status",
    "start_time",
    "end_time",
    "user",
    "notebook",
    "cell_id",
)


def build_runs_frame(
    runs: Sequence[tuple[Any, ...]],
    params: Sequence[tuple[str, str, str, float | None]],
    metrics: Sequence[tuple[str, str, float | None]],
    tags: Sequence[tuple[str, str, str]],
) -> pd.DataFrame:
    """Pivot long params/metrics/tags rows into ``params.<k>``/``metrics.<k>``/``tags.<k>``.

    The pivot is done with plain lists rather than ``DataFrame.pivot``: at 10,000 runs with 20
    values each it is several times faster, and it keeps column order stable (sorted by key).
    """
    import numpy as np
    import pandas as pd

    n = len(runs)
    position = {row[0]: i for i, row in enumerate(runs)}
    columns: dict[str, Any] = {}
    attrs = list(zip(*runs, strict=True)) if runs else [()] * len(RUN_COLUMNS)
    for name, values in zip(RUN_COLUMNS, attrs, strict=True):
        columns[name] = list(values)
    start = np.array(columns["start_time"], dtype="float64")
    end = np.array([np.nan if v is None else v for v in columns["end_time"]], dtype="float64")
    columns["start_time"] = pd.to_datetime(start, unit="s", utc=True)
    columns["end_time"] = pd.to_datetime(end, unit="s", utc=True)
    columns["duration_s"] = end - start
    ordered = [*RUN_COLUMNS[:6], "duration_s", *RUN_COLUMNS[6:]]
    frame_columns: dict[str, Any] = {name: columns[name] for name in ordered}

    param_text: dict[str, list[Any]] = {}
    param_num: dict[str, np.ndarray[Any, Any]] = {}
    param_all_numeric: dict[str, bool] = {}
    for run_id, key, value, value_num in params:
        i = position[run_id]
        if key not in param_text:
            param_text[key] = [None] * n
            param_num[key] = np.full(n, np.nan)
            param_all_numeric[key] = True
        param_text[key][i] = value
        if value_num is None:
            param_all_numeric[key] = False
        else:
            param_num[key][i] = value_num
    for key in sorted(param_text):
        if param_all_numeric[key]:
            frame_columns[f"params.{key}"] = _narrow(param_num[key], param_text[key])
        else:
            frame_columns[f"params.{key}"] = param_text[key]

    metric_values: dict[str, np.ndarray[Any, Any]] = {}
    for run_id, key, metric in metrics:
        if key not in metric_values:
            metric_values[key] = np.full(n, np.nan)
        if metric is not None:
            metric_values[key][position[run_id]] = metric
    for key in sorted(metric_values):
        frame_columns[f"metrics.{key}"] = metric_values[key]

    tag_values: dict[str, list[str | None]] = {}
    for run_id, key, tag in tags:
        tag_values.setdefault(key, [None] * n)[position[run_id]] = tag
    for key in sorted(tag_values):
        frame_columns[f"tags.{key}"] = tag_values[key]

    return pd.DataFrame(frame_columns, index=pd.RangeIndex(n))


def _narrow(numbers: Any, texts: list[Any]) -> Any:
    """Integer params stay integers (nullable Int64) when every present value is whole."""
    import numpy as np
    import pandas as pd

    present = ~np.isnan(numbers)
    if present.any() and all(t is None or t.lstrip("-").isdigit() for t in texts):
        whole = pd.array(np.where(present, numbers, 0).astype("int64"), dtype="Int64")
        whole[~present] = pd.NA
        return whole
    return numbers
