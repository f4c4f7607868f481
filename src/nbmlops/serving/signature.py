"""Checking scoring inputs against a version's recorded signature, and the self-test row.

The signature is what registration recorded (:func:`nbmlops.registry.registering.signature_of`):
the input columns with their dtypes, only the column names, or only the feature count. Inputs
are reordered to the signature's columns; a missing column or a value of the wrong kind is a 400
naming the column. Extra columns are never dropped silently (MLflow drops them): the policy is

* ``error``: refuse the request (400 naming the columns);
* ``ignore``: drop them and serve;
* ``log`` (default): drop them, serve, and record them with the prediction (a skew event for
  monitoring) and in the ``X-Nbmlops-Extra-Columns`` response header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbmlops.serving.formats import RequestError

if TYPE_CHECKING:
    import pandas as pd

EXTRA_COLUMN_POLICIES = ("error", "ignore", "log")


def check_policy(policy: str) -> str:
    """``policy`` if it is an extra-columns policy, else ValueError listing the choices."""
    if policy not in EXTRA_COLUMN_POLICIES:
        raise ValueError(
            f"extra_columns={policy!r} is not a policy; choose one of "
            f"{', '.join(EXTRA_COLUMN_POLICIES)}."
        )
    return policy


def _numeric(dtype: str | None) -> bool:
    return dtype is not None and dtype.startswith(("int", "uint", "float", "Int", "UInt", "Float"))


@dataclass(frozen=True)
class InputSchema:
    """What a version accepts: ``columns`` with ``dtypes`` (None where unknown), or only
    ``n_features``, or anything (no signature recorded)."""

    model: str
    columns: tuple[str, ...] | None
    dtypes: tuple[str | None, ...] | None
    n_features: int | None

    @classmethod
    def of(cls, model: str, signature: Mapping[str, Any] | None) -> InputSchema:
        """The schema of a signature as registration recorded it (None: no signature)."""
        columns = (signature or {}).get("columns")
        if columns:
            return cls(
                model,
                tuple(str(c["name"]) for c in columns),
                tuple(c.get("dtype") for c in columns),
                len(columns),
            )
        n_features = (signature or {}).get("n_features")
        return cls(model, None, None, int(n_features) if n_features is not None else None)

    def prepare(self, frame: pd.DataFrame, positional: bool, policy: str) -> tuple[Any, list[str]]:
        """The model's input for ``frame`` and the extra columns seen (RequestError if it does
        not fit the signature or the policy refuses extra columns)."""
        if self.columns is None:
            if self.n_features is not None and frame.shape[1] != self.n_features:
                raise RequestError(
                    400,
                    f"{self.model} expects {self.n_features} features per row; "
                    f"got {frame.shape[1]}.",
                )
            return (frame.to_numpy() if positional or self.n_features else frame), []
        if positional:
            if frame.shape[1] != len(self.columns):
                raise RequestError(
                    400,
                    f"Rows without column names must have {len(self.columns)} values in the "
                    f"signature's order ({', '.join(self.columns)}); got {frame.shape[1]}.",
                )
            frame.columns = list(self.columns)
        given = [str(c) for c in frame.columns]
        given_set, wanted = set(given), set(self.columns)
        missing = [c for c in self.columns if c not in given_set]
        if missing:
            raise RequestError(
                400,
                f"Missing column(s) {', '.join(map(repr, missing))} for {self.model}; its "
                f"signature needs {', '.join(self.columns)}.",
                column=missing[0],
            )
        extra = [c for c in given if c not in wanted]
        if extra and policy == "error":
            raise RequestError(
                400,
                f"Column(s) {', '.join(map(repr, extra))} are not in the signature of "
                f"{self.model}; remove them, or start the server with --extra-columns "
                "ignore or log.",
                column=extra[0],
            )
        selected = frame if not extra and given == list(self.columns) else frame[list(self.columns)]
        return self._cast(selected), extra

    def _cast(self, frame: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        assert self.columns is not None and self.dtypes is not None
        kinds = [t.kind for t in frame.dtypes]  # one pass: a Series per column costs ~15 us
        for name, dtype, kind in zip(self.columns, self.dtypes, kinds, strict=True):
            if not _numeric(dtype) or kind in "biuf":
                continue
            column = frame[name]
            converted = pd.to_numeric(column, errors="coerce")
            bad = converted.isna() & column.notna()
            if bad.any():
                row = int(bad.to_numpy().nonzero()[0][0])
                raise RequestError(
                    400,
                    f"Column {name!r} of {self.model} expects {dtype}; row {row} holds "
                    f"{column.iloc[row]!r}.",
                    column=name,
                )
            frame = frame.assign(**{name: converted})
        return frame

    def example(self) -> Any:
        """One row that fits the signature (zeros, False, empty strings), for the self-test;
        None when no signature was recorded."""
        import numpy as np
        import pandas as pd

        if self.columns is None:
            return None if self.n_features is None else np.zeros((1, self.n_features))
        assert self.dtypes is not None
        row: dict[str, Any] = {}
        types: dict[str, str] = {}
        for name, dtype in zip(self.columns, self.dtypes, strict=True):
            if dtype is None or _numeric(dtype):
                row[name], types[name] = [0], dtype or "float64"
            elif dtype.startswith("bool"):
                row[name], types[name] = [False], dtype
            elif dtype.startswith("datetime"):
                row[name], types[name] = [pd.Timestamp(0)], dtype
            else:
                row[name], types[name] = [""], "object" if dtype == "str" else dtype
        return pd.DataFrame(row).astype(types)
