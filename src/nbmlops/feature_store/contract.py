"""The data contract a training set implies for the features a model reads: per column its
dtype, whether nulls occurred, the numeric range and, for few distinct strings, the categories.

Recorded with each training set (and so known for every model version trained from one);
serving checks requests against it (:func:`violations`), the way the issue's "inferred data
contract" asks, so a request the model has never seen the like of is caught at the door.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

MAX_CATEGORIES = 50  # more distinct strings than this: free text, no category list kept


def infer_contract(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, Any]:
    """``{"columns": {name: {"dtype", "nullable", "min"?, "max"?, "categories"?}}}``."""
    import pandas as pd

    out: dict[str, Any] = {}
    for name in columns:
        series = frame[name]
        spec: dict[str, Any] = {"dtype": str(series.dtype), "nullable": bool(series.isna().any())}
        values = series.dropna()
        if pd.api.types.is_bool_dtype(series.dtype):
            pass
        elif pd.api.types.is_numeric_dtype(series.dtype) and len(values):
            low, high = float(values.min()), float(values.max())
            if math.isfinite(low) and math.isfinite(high):
                spec["min"], spec["max"] = low, high
        elif (
            isinstance(series.dtype, pd.CategoricalDtype)
            or pd.api.types.is_object_dtype(series.dtype)
            or pd.api.types.is_string_dtype(series.dtype)
        ):
            distinct = values.astype(str).unique()
            if len(distinct) <= MAX_CATEGORIES:
                spec["categories"] = sorted(distinct.tolist())
        out[name] = spec
    return {"columns": out}


def violations(contract: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """What in ``rows`` (dicts of feature values) breaks ``contract``, one line per column and
    kind of fault (first offending row and value named); empty when all is well."""
    found: dict[tuple[str, str], str] = {}
    for index, row in enumerate(rows):
        for name, spec in contract.get("columns", {}).items():
            if (name, "missing") in found:
                continue
            if name not in row:
                found[(name, "missing")] = f"{name}: missing (row {index})"
                continue
            value = row[name]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                if not spec.get("nullable"):
                    found.setdefault(
                        (name, "null"), f"{name}: null in row {index}, never null in training"
                    )
                continue
            if "min" in spec:
                if not isinstance(value, int | float) or isinstance(value, bool):
                    found.setdefault(
                        (name, "type"), f"{name}: {value!r} in row {index} is not a number"
                    )
                elif not spec["min"] <= value <= spec["max"]:
                    found.setdefault(
                        (name, "range"),
                        f"{name}: {value!r} in row {index} is outside the training range "
                        f"[{spec['min']:g}, {spec['max']:g}]",
                    )
            elif "categories" in spec and str(value) not in spec["categories"]:
                found.setdefault(
                    (name, "category"),
                    f"{name}: {value!r} in row {index} is not a category seen in training",
                )
    return list(found.values())
