"""Per-run summaries (the ``run_summaries`` cache) and the wide DataFrame of ``nbmlops.runs()``.

A summary packs one run's params, latest metrics and tags into one row, so that ``runs()`` reads
one row per run instead of one per value, and parses no number from text: that costs about
0.5 µs per float, so JSON summaries still took ~180 ms for 10,000 runs with 20 values each,
against ~70 ms for this packing (and ~300 ms for the long rows). A summary is

- ``layout``: JSON ``[param keys, param kinds, metric keys, tag keys]``, each list sorted by key;
  ``kinds`` has one letter per param (:func:`nbmlops._params.param_kind`). Runs of
  the same code share the same layout text, so each distinct layout is parsed once per read.
- ``numbers``: little-endian float64, one per param (NaN for a text param), then one per metric
  (its latest value, NaN for NaN).
- ``texts``: JSON array of the text params' values, then the tag values, in layout order.

It is rewritten from the normalized tables whenever a write touches them (``refresh_summary``),
so it stays exact however a run's records are split into writes.
"""

from __future__ import annotations

import json
import math
import sqlite3
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from nbmlops._params import Kind, number_text, param_kind

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

# Kind codes of the number slots: a param's kind, or "m" for a metric.
_KINDS = "ifbsm"
_INT, _FLOAT, _BOOL, _TEXT = (_KINDS.index(kind) for kind in "ifbs")
_PARAM_KINDS: tuple[Kind, ...] = ("i", "f", "b", "s")


def _compact_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def refresh_summary(conn: sqlite3.Connection, run_id: str) -> None:
    """Rewrite one run's ``run_summaries`` row from its params, latest_metrics and tags rows."""
    params = conn.execute(
        "SELECT key, value, value_num FROM params WHERE run_id = ? ORDER BY key", (run_id,)
    ).fetchall()
    metrics = conn.execute(
        "SELECT key, value FROM latest_metrics WHERE run_id = ? ORDER BY key", (run_id,)
    ).fetchall()
    tags = conn.execute(
        "SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", (run_id,)
    ).fetchall()
    kinds = "".join(param_kind(text, number) for _, text, number in params)
    keys = [[p[0] for p in params], kinds, [m[0] for m in metrics], [t[0] for t in tags]]
    numbers = [math.nan if p[2] is None else p[2] for p in params]
    numbers += [math.nan if m[1] is None else m[1] for m in metrics]
    texts = [p[1] for p, kind in zip(params, kinds, strict=True) if kind == "s"]
    texts += [t[1] for t in tags]
    conn.execute(
        "INSERT OR REPLACE INTO run_summaries (run_id, layout, numbers, texts) VALUES (?, ?, ?, ?)",
        (
            run_id,
            _compact_json(keys),
            struct.pack(f"<{len(numbers)}d", *numbers),
            _compact_json(texts),
        ),
    )


class _Columns:
    """The output columns met in the layouts read, numbered in two spaces: number slots (params
    and metrics) and text entries (text params and tags)."""

    def __init__(self) -> None:
        self.numbers: dict[tuple[str, str], int] = {}
        self.texts: dict[tuple[str, str], int] = {}

    def parse(self, layout: str) -> tuple[Any, Any, Any]:
        """A layout's column of each number slot, kind of each slot, column of each text."""
        import numpy as np

        param_keys, kinds, metric_keys, tag_keys = json.loads(layout)
        slots = [("params", k) for k in param_keys] + [("metrics", k) for k in metric_keys]
        entries = [("params", k) for k, kind in zip(param_keys, kinds, strict=True) if kind == "s"]
        entries += [("tags", k) for k in tag_keys]
        return (
            np.array([self.numbers.setdefault(s, len(self.numbers)) for s in slots], "intp"),
            np.array([_KINDS.index(k) for k in kinds + "m" * len(metric_keys)], "intp"),
            np.array([self.texts.setdefault(e, len(self.texts)) for e in entries], "intp"),
        )


class _Group(NamedTuple):
    """The runs of one layout: its slots, their kinds and text entries (``_Columns.parse``),
    the runs' output rows (a column vector), their numbers (runs x slots) and texts (flat)."""

    slots: Any
    kinds: Any
    entries: Any
    rows: Any
    numbers: Any
    texts: list[str]


def build_runs_frame(
    runs: Sequence[tuple[Any, ...]],
    summaries: Sequence[tuple[str, str, bytes, str]],
) -> pd.DataFrame:
    """The runs (``RUN_COLUMNS`` rows, in output order) with their summaries (run_id, layout,
    numbers, texts; any order) spread into ``params.<k>``/``metrics.<k>``/``tags.<k>`` columns,
    sorted by key within each group.

    Runs are taken a layout at a time: their numbers are one 2-D array and their texts one JSON
    parse, scattered into a float and an object matrix by one numpy assignment each. No Python
    object is made per number, and no container per run (those fed the garbage collector).
    """
    import numpy as np
    import pandas as pd

    n = len(runs)
    frame_columns = _run_attribute_columns(runs)
    position = {row[0]: i for i, row in enumerate(runs)}
    by_layout: dict[str, list[int]] = {}
    for i, summary in enumerate(summaries):
        by_layout.setdefault(summary[1], []).append(i)
    output_rows = np.array([position[summary[0]] for summary in summaries], "intp")

    columns = _Columns()
    groups: list[_Group] = []
    for layout, members in by_layout.items():
        slots, kinds, entries = columns.parse(layout)
        packed = b"".join([summaries[i][2] for i in members])
        # Each run's texts are a JSON array of len(entries) strings: parsed as one array.
        joined = ",".join([summaries[i][3][1:-1] for i in members]) if len(entries) else ""
        groups.append(
            _Group(
                slots,
                kinds,
                entries,
                output_rows[members][:, np.newaxis],
                np.frombuffer(packed, "<f8").reshape(len(members), len(slots)),
                json.loads(f"[{joined}]"),
            )
        )

    numbers = np.full((len(columns.numbers), n), np.nan)
    has_kind = np.zeros((len(_KINDS), len(columns.numbers)), dtype=bool)
    strings = np.full((len(columns.texts), n), None, dtype=object)
    for group in groups:
        numbers[group.slots, group.rows] = group.numbers
        has_kind[group.kinds, group.slots] = True
        if group.texts:
            cells = np.empty(len(group.texts), dtype=object)
            cells[:] = group.texts
            strings[group.entries, group.rows] = cells.reshape(len(group.rows), -1)

    for key in sorted(k for section, k in columns.numbers if section == "params"):
        c = columns.numbers["params", key]
        if not has_kind[_TEXT, c]:
            if has_kind[_BOOL, c] and not (has_kind[_FLOAT, c] or has_kind[_INT, c]):
                # Only booleans: a nullable boolean column, shown true/false everywhere.
                missing = np.isnan(numbers[c])
                frame_columns[f"params.{key}"] = pd.arrays.BooleanArray(numbers[c] == 1, missing)
                continue
            numeric = has_kind[_FLOAT, c] or has_kind[_BOOL, c]
            frame_columns[f"params.{key}"] = numbers[c] if numeric else _integers(numbers[c])
            continue
        # Some runs have text here: the whole column is text, numbers as they were logged.
        column = strings[columns.texts["params", key]]
        for group in groups:
            for j in np.flatnonzero((group.slots == c) & (group.kinds != _TEXT)):
                cells = np.empty(len(group.rows), dtype=object)
                kind = _PARAM_KINDS[group.kinds[j]]
                cells[:] = [number_text(kind, v) for v in group.numbers[:, j].tolist()]
                column[group.rows[:, 0]] = cells
        frame_columns[f"params.{key}"] = column
    for key in sorted(k for section, k in columns.numbers if section == "metrics"):
        frame_columns[f"metrics.{key}"] = numbers[columns.numbers["metrics", key]]
    for key in sorted(k for section, k in columns.texts if section == "tags"):
        frame_columns[f"tags.{key}"] = strings[columns.texts["tags", key]]
    return pd.DataFrame(frame_columns, index=pd.RangeIndex(n))


def _run_attribute_columns(runs: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

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
    return {name: columns[name] for name in ordered}


def _integers(numbers: Any) -> Any:
    """Integer params stay integers (nullable Int64)."""
    import numpy as np
    import pandas as pd

    missing = np.isnan(numbers)
    return pd.arrays.IntegerArray(np.where(missing, 0, numbers).astype("int64"), missing)
