"""The request formats of MLflow's scoring protocol and of the KServe/MLServer V2 subset.

MLflow clients send ``POST /invocations`` with a JSON object holding exactly one of
``dataframe_split`` (``{"columns": [...], "data": [[...]]}``), ``dataframe_records``
(``[{"col": value}, ...]``), ``instances`` or ``inputs`` (rows as lists, records, or a dict of
columns), plus an optional ``params`` object; or a CSV body with a header row (``text/csv``).
Each decodes to a DataFrame here; checking it against the model's signature is
:mod:`nbmlops.serving.signature`'s job. Anything malformed raises :class:`RequestError`, which
the app turns into a JSON 4xx naming the problem (MLflow's ``error_code``/``message`` shape).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_SCALARS = {int, float, str, bool, type(None)}
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


class RequestError(Exception):
    """A request the server refuses: ``status`` (4xx/503), a message naming the problem and,
    when one column is at fault, ``column``. Never leaves the app: it becomes the response."""

    def __init__(self, status: int, message: str, *, column: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.column = column

    def body(self) -> dict[str, Any]:
        """The JSON error body: MLflow's ``error_code`` and ``message`` (+ ``column``)."""
        out: dict[str, Any] = {
            "error_code": _ERROR_CODES.get(self.status, "ERROR"),
            "message": self.message,
        }
        if self.column is not None:
            out["column"] = self.column
        return out


@dataclass
class Decoded:
    """A decoded scoring request: its format, the rows, and the ``params`` sent with them.

    ``positional`` is True when rows came as bare lists (no column names): the columns are then
    matched to the signature by position."""

    format: str
    frame: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)
    positional: bool = False


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_invocation(body: bytes, content_type: str | None) -> Decoded:
    """Decode the body of ``POST /invocations`` by its content type (415 for any other)."""
    kind = media_type(content_type)
    if kind == "text/csv":
        return Decoded("csv", _read_csv(body))
    if kind != "application/json":
        raise RequestError(
            415,
            f"Content type {content_type or '(none)'!r} is not supported: send application/json "
            "(dataframe_split, dataframe_records, instances or inputs) or text/csv.",
        )
    payload = _load_json(body)
    if not isinstance(payload, dict):
        raise RequestError(
            400,
            f"The JSON body must be an object with one of {', '.join(FORMATS)}; "
            f"got {_kind(payload)}.",
        )
    given = [k for k in FORMATS if k in payload]
    unknown = sorted(k for k in payload if k not in FORMATS and k != "params")
    if unknown:
        raise RequestError(
            400,
            f"Unknown field(s) {', '.join(map(repr, unknown))} in the request; the body holds "
            f"exactly one of {', '.join(FORMATS)}, and optionally params.",
        )
    if len(given) != 1:
        got = f"got {', '.join(given)}" if given else "got none"
        raise RequestError(
            400, f"Give exactly one of {', '.join(FORMATS)} in the request body ({got})."
        )
    params = payload.get("params") or {}
    if not isinstance(params, dict):
        raise RequestError(400, f"params must be a JSON object, not {_kind(params)}.")
    fmt = given[0]
    value = payload[fmt]
    if fmt == "dataframe_split":
        return Decoded(fmt, _split(value), params)
    if fmt == "dataframe_records":
        return Decoded(fmt, _records(value, fmt), params)
    frame, positional = _tensor(value, fmt)
    return Decoded(fmt, frame, params, positional)


def decode_v2(body: bytes, content_type: str | None) -> Decoded:
    """Decode a V2 ``infer`` request: one tensor ``[rows, features]`` (columns by position) or
    one tensor ``[rows]`` per column, named after the column."""
    import pandas as pd

    if media_type(content_type) not in ("application/json", ""):
        raise RequestError(415, f"Content type {content_type!r} is not supported: send JSON.")
    payload = _load_json(body)
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(400, "A V2 infer request needs a non-empty 'inputs' list of tensors.")
    columns: dict[str, Any] = {}
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("data"), list):
            raise RequestError(400, f"inputs[{i}] must be an object with a 'data' list.")
        name = tensor.get("name")
        shape = tensor.get("shape")
        data = _flatten(tensor["data"])
        if (
            not isinstance(shape, list)
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
            or len(shape) not in (1, 2)
        ):
            raise RequestError(400, f"inputs[{i}].shape must be [rows] or [rows, features].")
        size = shape[0] * (shape[1] if len(shape) == 2 else 1)
        if size != len(data):
            raise RequestError(
                400, f"inputs[{i}] ({name!r}) has {len(data)} values for shape {shape}."
            )
        if len(shape) == 2:
            if len(inputs) != 1:
                raise RequestError(400, "Send one [rows, features] tensor, or one per column.")
            rows = [data[r * shape[1] : (r + 1) * shape[1]] for r in range(shape[0])]
            return Decoded("v2", pd.DataFrame(rows), positional=True)
        if not isinstance(name, str) or not name:
            raise RequestError(400, f"inputs[{i}] needs a 'name' (the column it holds).")
        columns[name] = data
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise RequestError(400, "The V2 input tensors have different numbers of rows.")
    return Decoded("v2", pd.DataFrame(columns))


def _flatten(data: list[Any]) -> list[Any]:
    if data and isinstance(data[0], list):
        return [x for row in data for x in (row if isinstance(row, list) else [row])]
    return data


def _load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, f"The request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise RequestError(400, "The request body is JSON nested too deeply.") from None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    names: dict[type, str] = {dict: "an object", list: "an array", str: "a string"}
    return names.get(type(value), f"a {type(value).__name__}")


def _split(value: object) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise RequestError(
            400, 'dataframe_split must be an object like {"columns": [...], "data": [[...]]}.'
        )
    columns = value.get("columns")
    data = value["data"]
    if columns is not None and (
        not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
    ):
        raise RequestError(400, "dataframe_split.columns must be a list of column names.")
    if columns is not None and len(set(columns)) != len(columns):
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        raise RequestError(
            400,
            f"dataframe_split.columns repeats {', '.join(map(repr, duplicated))}.",
            column=duplicated[0],
        )
    width = len(columns) if columns is not None else None
    for i, row in enumerate(data):
        if not isinstance(row, list):
            raise RequestError(400, f"dataframe_split.data[{i}] must be a list of values.")
        if width is not None and len(row) != width:
            raise RequestError(
                400,
                f"dataframe_split.data[{i}] has {len(row)} values for {width} columns.",
            )
    widths = sorted({len(row) for row in data})
    if len(widths) > 1:
        raise RequestError(
            400, f"The rows of dataframe_split.data have different lengths {widths}."
        )
    kinds = {type(v) for row in data for v in row}
    if kinds - _SCALARS:
        for i, row in enumerate(data):
            _check_scalars(row, f"dataframe_split.data[{i}]")
    if data and kinds <= {int, float}:
        # All numbers: one C-level conversion, 2-4x faster than pandas' row-by-row inference.
        import numpy as np

        return pd.DataFrame(np.asarray(data, dtype=np.float64), columns=columns)
    if columns is None:
        return pd.DataFrame(data)
    return pd.DataFrame(data, columns=columns) if data else pd.DataFrame(columns=columns)


def _records(value: object, fmt: str) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise RequestError(400, f'{fmt} must be a list of objects like [{{"column": value}}].')
    for i, record in enumerate(value):
        _check_scalars(record.values(), f"{fmt}[{i}]")
    return pd.DataFrame.from_records(value)


def _tensor(value: object, fmt: str) -> tuple[pd.DataFrame, bool]:
    import pandas as pd

    if isinstance(value, dict):
        columns = {str(k): (v if isinstance(v, list) else [v]) for k, v in value.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise RequestError(400, f"The columns of {fmt} have different numbers of rows.")
        for name, column in columns.items():
            _check_scalars(column, f"{fmt}[{name!r}]")
        return pd.DataFrame(columns), False
    if not isinstance(value, list):
        raise RequestError(400, f"{fmt} must be a list of rows or an object of columns.")
    if value and all(isinstance(r, dict) for r in value):
        return _records(value, fmt), False
    rows = [r if isinstance(r, list) else [r] for r in value]
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise RequestError(400, f"The rows of {fmt} have different lengths ({sorted(widths)}).")
    for i, row in enumerate(rows):
        _check_scalars(row, f"{fmt}[{i}]")
    return pd.DataFrame(rows), True


def _check_scalars(values: Any, where: str) -> None:
    for v in values:
        if isinstance(v, dict | list):
            raise RequestError(400, f"{where} holds {_kind(v)}; each value must be a scalar.")


def _read_csv(body: bytes) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_csv(io.BytesIO(body))
    except (ValueError, UnicodeDecodeError) as exc:  # EmptyDataError, ParserError
        raise RequestError(400, f"The CSV body could not be read: {exc}.") from None


def encode_predictions(predictions: Any) -> list[Any]:
    """Model output as JSON-ready values: one entry per row (a dict per row for DataFrames)."""
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        return list(predictions.to_dict(orient="records"))
    if isinstance(predictions, pd.Series):
        return list(predictions.tolist())
    tolist = getattr(predictions, "tolist", None)
    if callable(tolist):
        out = tolist()
        return out if isinstance(out, list) else [out]
    if isinstance(predictions, Sequence) and not isinstance(predictions, str | bytes):
        return list(predictions)
    return [predictions]


def v2_datatype(values: Sequence[Any]) -> str:
    """The V2 datatype of a list of predictions."""
    first = values[0] if values else 0.0
    if isinstance(first, bool):
        return "BOOL"
    if isinstance(first, int):
        return "INT64"
    if isinstance(first, float):
        return "FP64"
    return "BYTES"


def error_body(status: int, message: str, details: Mapping[str, Any] | None = None) -> bytes:
    """A JSON error body for a status (used outside RequestError: 404, 405, 500)."""
    body = {"error_code": _ERROR_CODES.get(status, "ERROR"), "message": message, **(details or {})}
    return json.dumps(body).encode()
