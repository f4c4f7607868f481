"""Reference profiles: what a detector keeps of the reference data, so checks never re-read it.

A profile holds, per column, either the category frequencies (categorical columns) or a numeric
summary:

- **exact**: the sorted distinct values and their counts, when there are at most ``sketch_size``
  of them (always true for a reference of at most ``sketch_size`` rows). Every statistic computed
  from an exact profile equals the one computed from the raw reference.
- **sketch**: ``sketch_size + 1`` knots of the reference ECDF at evenly spaced ranks, read as a
  piecewise-linear CDF. The profile records how far the sketch is from the data it summarises:
  ``ks_error`` bounds the error of any KS statistic (sup-norm distance of the two CDFs) and
  ``w1_error`` bounds the error of any unnormed Wasserstein distance (triangle inequality).

Both kinds also keep count, missing count, min, max and the central moment sums (mean, M2, M3),
so the standard deviation (any ``ddof``) and the skewness used by Doane's rule are exact.

A profile may summarise a sample of the reference (``build_profile(..., max_rows=N)``): then
``n_rows`` counts the sampled rows, ``source_rows`` the reference's, and checks against the
profile are checks against that sample (p-values use the sample's size). The sample is the same
every time for the same data: ``numpy.random.default_rng(0).choice(n, N, replace=False)``, rows
kept in their order.

Profiles of windows merge (:func:`merge_profiles`): counts, moments and category frequencies add
exactly; exact numeric summaries merge exactly while the union of distinct values stays within
``sketch_size``; otherwise the merged CDF is the exact mixture of the two CDFs, re-sketched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd

from nbmlops.errors import DriftInputError

# Renamed: build_profile has a flag named ``fingerprint``.
from nbmlops.fingerprint import fingerprint as fingerprint_of

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]

FORMAT = "nbmlops-drift-profile-v1"
DEFAULT_SKETCH_SIZE = 10_000
SAMPLE_SEED = 0
# Evidently 0.7 treats an integer column with at most this many distinct values as categorical.
INTEGER_CARDINALITY_LIMIT = 10

Kind = Literal["numeric", "categorical"]
CategoryKey = str | int | float | bool


@dataclass(frozen=True, eq=False)
class NumericSummary:
    """Distribution of one numeric column (missing and non-finite values excluded)."""

    n: int
    values: FloatArray  # exact: sorted distinct values; sketch: knots (x of the linear CDF)
    counts: IntArray | None  # exact: count per distinct value; sketch: None
    fractions: FloatArray | None  # sketch: CDF at each knot (0 ... 1); exact: None
    mean: float
    m2: float  # sum of squared deviations from the mean
    m3: float  # sum of cubed deviations from the mean
    ks_error: float = 0.0
    w1_error: float = 0.0

    @property
    def exact(self) -> bool:
        return self.counts is not None

    @property
    def minimum(self) -> float:
        return float(self.values[0]) if self.n else math.nan

    @property
    def maximum(self) -> float:
        return float(self.values[-1]) if self.n else math.nan

    @property
    def n_distinct(self) -> int | None:
        """Distinct values, or None when the sketch only knows there are more than it keeps."""
        return len(self.values) if self.counts is not None else None

    def std(self, ddof: int = 0) -> float:
        if self.n - ddof <= 0:
            return math.nan
        return math.sqrt(max(self.m2, 0.0) / (self.n - ddof))

    def skewness(self) -> float:
        """Population skewness g1 = m3 / m2**1.5 (the one numpy's Doane rule uses)."""
        if self.n == 0 or self.m2 <= 0:
            return 0.0
        return float((self.m3 / self.n) / (self.m2 / self.n) ** 1.5)

    def cdf_below(self, x: FloatArray) -> FloatArray:
        """Count of reference values strictly below each x (sketch: interpolated)."""
        if self.counts is not None:
            cum = np.concatenate(([0], np.cumsum(self.counts)))
            return cum[np.searchsorted(self.values, x, side="left")].astype(np.float64)
        assert self.fractions is not None
        return np.interp(x, self.values, self.fractions, left=0.0, right=1.0) * self.n

    def cdf_at_or_below(self, x: FloatArray) -> FloatArray:
        """Count of reference values <= each x (sketch: interpolated)."""
        if self.counts is not None:
            cum = np.concatenate(([0], np.cumsum(self.counts)))
            return cum[np.searchsorted(self.values, x, side="right")].astype(np.float64)
        return self.cdf_below(x)

    def limits(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Counts of values strictly below, and at or below, each x: the CDF's left limit and
        its value. Exact for exact summaries; for a sketch, a knot repeated (a value holding
        more than the space between two ranks) is a jump whose foot is the left limit (where
        :meth:`cdf_below` reads its top, as the checks of data always have)."""
        if self.counts is not None:
            return self.cdf_below(x), self.cdf_at_or_below(x)
        assert self.fractions is not None
        at = np.interp(x, self.values, self.fractions, left=0.0, right=1.0)
        below = np.interp(-x, -self.values[::-1], self.fractions[::-1], left=1.0, right=0.0)
        return below * self.n, at * self.n

    def quantiles(self, q: FloatArray) -> FloatArray:
        """numpy's default ('linear') quantiles; exact for exact summaries."""
        if self.counts is None:
            assert self.fractions is not None
            return np.interp(q, self.fractions, self.values)
        cum = np.cumsum(self.counts)
        h = (self.n - 1) * np.asarray(q, dtype=np.float64)
        lo = np.floor(h).astype(np.int64)
        hi = np.minimum(lo + 1, self.n - 1)
        x_lo = self.values[np.searchsorted(cum, lo, side="right")]
        x_hi = self.values[np.searchsorted(cum, hi, side="right")]
        return np.asarray(x_lo + (h - lo) * (x_hi - x_lo), dtype=np.float64)

    def sample(self) -> FloatArray:
        """The reference values themselves (exact summaries only)."""
        assert self.counts is not None
        return np.repeat(self.values, self.counts)


@dataclass(frozen=True, eq=False)
class ColumnProfile:
    """What is kept of one reference column."""

    name: Hashable
    kind: Kind
    dtype: str
    n_missing: int
    numeric: NumericSummary | None = None
    categories: Mapping[CategoryKey, int] | None = None

    @property
    def n(self) -> int:
        if self.numeric is not None:
            return self.numeric.n
        assert self.categories is not None
        return int(sum(self.categories.values()))

    def frequencies(self) -> tuple[list[Any], IntArray]:
        """(keys, counts) of the column's values: categories, or exact distinct numbers."""
        if self.categories is not None:
            return list(self.categories), np.fromiter(self.categories.values(), np.int64)
        assert self.numeric is not None
        if self.numeric.counts is None:
            raise DriftInputError(
                f"Column {self.name!r} has more than the profile's sketch size of distinct "
                "values, so it has no category frequencies; use a binned method "
                "(jensenshannon, psi, hellinger, l_infinity) or a numeric one (ks, wasserstein).",
                [str(self.name)],
            )
        return self.numeric.values.tolist(), self.numeric.counts


@dataclass(frozen=True, eq=False)
class Profile:
    """A compact summary of a reference DataFrame, keyed by its fingerprint."""

    columns: Mapping[Hashable, ColumnProfile]
    n_rows: int
    dataset_id: str | None  # the reference's fingerprint; None when profiled without it
    sketch_size: int = DEFAULT_SKETCH_SIZE
    source_rows: int | None = None  # rows of the reference when n_rows of them were sampled
    _id: list[str] = field(default_factory=list, repr=False)

    @property
    def sampled(self) -> bool:
        return self.source_rows is not None

    @property
    def profile_id(self) -> str:
        """Hash of the reference fingerprint and the profile settings (columns, sketch size,
        sample size when sampled)."""
        if not self._id:
            fields: dict[str, Any] = {
                "dataset_id": self.dataset_id,
                "columns": [_label_json(c) for c in self.columns],
                "kinds": [c.kind for c in self.columns.values()],
                "sketch_size": self.sketch_size,
                "format": FORMAT,
            }
            if self.source_rows is not None:  # unsampled profiles keep the ids they always had
                fields["sample"] = [self.n_rows, self.source_rows]
            settings = json.dumps(fields, sort_keys=True)
            self._id.append(hashlib.sha256(settings.encode()).hexdigest()[:32])
        return self._id[0]

    def __repr__(self) -> str:
        kinds = ", ".join(f"{c.name!r}: {c.kind}" for c in list(self.columns.values())[:6])
        more = " ..." if len(self.columns) > 6 else ""
        sample = f" sampled from {self.source_rows}" if self.source_rows is not None else ""
        return (
            f"Profile(profile_id={self.profile_id[:12]!r}, n_rows={self.n_rows}{sample}, "
            f"columns={{{kinds}{more}}})"
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "sketch_size": self.sketch_size,
            "n_rows": self.n_rows,
            "columns": [_column_json(c) for c in self.columns.values()],
        }
        if self.source_rows is not None:
            out["source_rows"] = self.source_rows
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], dataset_id: str | None) -> Profile:
        if data.get("format") != FORMAT:
            raise DriftInputError(
                f"Unknown drift profile format {data.get('format')!r}; this nbmlops reads "
                f"{FORMAT!r}. Fit the detector on the reference data again."
            )
        columns = [_column_from_json(c) for c in data["columns"]]
        return cls(
            columns={c.name: c for c in columns},
            n_rows=int(data["n_rows"]),
            dataset_id=dataset_id,
            sketch_size=int(data["sketch_size"]),
            source_rows=None if data.get("source_rows") is None else int(data["source_rows"]),
        )


# --- building -------------------------------------------------------------------------------


def infer_kind(name: Hashable, series: pd.Series[Any]) -> Kind:
    """numeric or categorical, the way Evidently 0.7 infers column types (text counts as
    categorical; datetimes and other types are refused)."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_integer_dtype(dtype):
        return "categorical" if series.nunique() <= INTEGER_CARDINALITY_LIMIT else "numeric"
    if pd.api.types.is_float_dtype(dtype):
        return "numeric"
    if pd.api.types.is_string_dtype(dtype) or dtype is np.dtype(object):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
            return "numeric"
        return "categorical"
    raise DriftInputError(
        f"Column {name!r} has dtype {dtype}, which drift detection does not compare; convert "
        "it (datetimes: e.g. to hours since an origin, as float) or leave it out with columns=.",
        [str(name)],
    )


def numeric_values(name: Hashable, series: pd.Series[Any], where: str) -> FloatArray:
    """A numeric column as float64, or a DriftInputError naming the column if it holds text."""
    dtype = series.dtype
    if dtype == np.float64:
        return np.asarray(series.to_numpy(), dtype=np.float64)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    converted = pd.to_numeric(series, errors="coerce")
    bad = series[converted.isna() & series.notna()]
    if len(bad) or (
        isinstance(dtype, pd.CategoricalDtype)
        and pd.api.types.is_string_dtype(dtype.categories.dtype)
    ):
        shown = ", ".join(repr(v) for v in bad.unique()[:3].tolist())
        raise DriftInputError(
            f"Column {name!r} is numeric in the reference but the {where} data holds text "
            f"({shown}); convert it with pd.to_numeric or leave it out with columns=.",
            [str(name)],
        )
    return np.asarray(converted.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def finite(values: FloatArray) -> FloatArray:
    """Drop NaN and ±inf (Evidently treats ±inf as missing too)."""
    mask = np.isfinite(values)
    return values if mask.all() else values[mask]


def category_counts(name: Hashable, series: pd.Series[Any]) -> dict[CategoryKey, int]:
    """Frequencies of the non-missing values, as plain Python keys."""
    try:
        counts = series.value_counts(dropna=True, sort=False)
    except TypeError as exc:
        raise DriftInputError(
            f"Column {name!r} holds unhashable values ({exc}); drift detection compares "
            "values, so convert them first, e.g. .astype(str), or leave the column out.",
            [str(name)],
        ) from None
    out: dict[CategoryKey, int] = {}
    for key, count in zip(counts.index.tolist(), counts.tolist(), strict=True):
        if count == 0:
            continue  # unused categories of a Categorical
        if isinstance(key, np.generic):
            key = key.item()
        if isinstance(key, list | dict | set | np.ndarray):
            raise DriftInputError(
                f"Column {name!r} holds unhashable values ({type(key).__name__}: {key!r}); "
                "drift detection compares values, so convert them first, e.g. .astype(str), "
                "or leave the column out with columns=.",
                [str(name)],
            )
        if not isinstance(key, str | int | float | bool):
            raise DriftInputError(
                f"Column {name!r} holds values of type {type(key).__name__} ({key!r}); "
                "categories must be str, int, float or bool. Convert the column, e.g. "
                ".astype(str), or leave it out with columns=.",
                [str(name)],
            )
        out[key] = out.get(key, 0) + int(count)
    return out


def distinct_counts(sorted_values: FloatArray) -> tuple[FloatArray, IntArray]:
    """Distinct values and their counts of an already sorted array (cheaper than np.unique)."""
    if len(sorted_values) == 0:
        return sorted_values, np.zeros(0, np.int64)
    starts = np.empty(len(sorted_values), dtype=bool)
    starts[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=starts[1:])
    idx = np.flatnonzero(starts)
    counts = np.diff(np.append(idx, len(sorted_values))).astype(np.int64)
    return sorted_values[idx], counts


def summarize_numeric(values: FloatArray, sketch_size: int) -> NumericSummary:
    """The summary of finite values (any order)."""
    x = np.sort(values)
    n = len(x)
    if n == 0:
        empty = np.zeros(0)
        return NumericSummary(0, empty, np.zeros(0, np.int64), None, math.nan, 0.0, 0.0)
    mean = float(x.mean())
    dev = x - mean
    squared = dev * dev
    m2 = float(squared.sum())
    m3 = float(np.dot(squared, dev))
    n_distinct = 1 + int(np.count_nonzero(x[1:] != x[:-1]))
    if n_distinct <= sketch_size:
        distinct, counts = distinct_counts(x)
        return NumericSummary(n, distinct, counts, None, mean, m2, m3)
    knots, fractions = _sketch(x, None, sketch_size)
    ks_error, w1_error = _sketch_errors(x, None, knots, fractions)
    return NumericSummary(n, knots, None, fractions, mean, m2, m3, ks_error, w1_error)


def _summary_from_counts(
    values: FloatArray, counts: IntArray, mean: float, m2: float, m3: float, sketch_size: int
) -> NumericSummary:
    n = int(counts.sum())
    if len(values) <= sketch_size:
        return NumericSummary(n, values, counts, None, mean, m2, m3)
    knots, fractions = _sketch(values, counts, sketch_size)
    ks_error, w1_error = _sketch_errors(values, counts, knots, fractions)
    return NumericSummary(n, knots, None, fractions, mean, m2, m3, ks_error, w1_error)


def _sketch(
    values: FloatArray, counts: IntArray | None, size: int
) -> tuple[FloatArray, FloatArray]:
    """Knots of a piecewise-linear CDF through the data at ``size`` evenly spaced ranks.

    ``values`` are sorted, each with its count (None: each once). The knot at rank r sits at
    (x_(r), (r + 0.5) / n) for interior ranks, and at the minimum with CDF 0 and the maximum with
    CDF 1, so the linear CDF runs through the middle of each step of the ECDF.
    """
    n = len(values) if counts is None else int(counts.sum())
    ranks = _ranks(n, size)
    if counts is None:
        interior = values[ranks]
    else:
        interior = values[np.searchsorted(np.cumsum(counts), ranks, side="right")]
    knots = np.concatenate(([values[0]], interior, [values[-1]]))
    return knots.astype(np.float64), sketch_fractions(n, size)


def _ranks(n: int, size: int) -> IntArray:
    return np.round(np.arange(1, size) * (n / size)).astype(np.int64)


def sketch_fractions(n: int, size: int) -> FloatArray:
    """The CDF at the knots of a sketch of n values: 0, (rank + 0.5) / n ..., 1. A function of
    n and the sketch size only, so profiles store the knots alone."""
    return np.concatenate(([0.0], (_ranks(n, size) + 0.5) / n, [1.0]))


def _sketch_errors(
    values: FloatArray, counts: IntArray | None, knots: FloatArray, fractions: FloatArray
) -> tuple[float, float]:
    """Bounds on the sketch's errors: sup |ECDF - linear CDF| (any KS statistic moves by at
    most this) and the sum over knot intervals of width x local sup, which bounds
    W1(ECDF, linear CDF) and so the error of any unnormed Wasserstein distance."""
    f = np.interp(values, knots, fractions)
    if counts is None:  # each value once: the ECDF steps from i / n to (i + 1) / n at x_i
        n = len(values)
        middle = np.arange(n, dtype=np.float64)
        middle += 0.5
        middle /= n
        f -= middle
        dev = np.abs(f, out=f)
        dev += 0.5 / n
    else:
        cum = np.cumsum(counts)
        n = int(cum[-1])
        f -= (cum - 0.5 * counts) / n
        dev = np.abs(f, out=f)
        dev += 0.5 * counts / n
    starts = np.searchsorted(values, knots[:-1], side="left")
    local = np.maximum.reduceat(dev, starts)
    ends = np.minimum(np.append(starts[1:], len(values) - 1), len(values) - 1)
    local = np.maximum(local, dev[ends])
    ks_error = float(dev.max())
    w1_error = float(np.dot(np.diff(knots), local))
    return ks_error, w1_error


def build_profile(
    reference: pd.DataFrame | pd.Series[Any],
    columns: Sequence[Hashable] | None = None,
    *,
    sketch_size: int = DEFAULT_SKETCH_SIZE,
    kinds: Mapping[Hashable, Kind] | None = None,
    dataset_id: str | None = None,
    fingerprint: bool = True,
    max_rows: int | None = None,
) -> Profile:
    """Profile the reference columns (all of them by default).

    ``dataset_id`` is the reference's fingerprint (``nbmlops.fingerprint``), which keys the
    profile in the store; ``fingerprint=False`` skips it (a profile that is not to be stored).
    ``max_rows``: profile a deterministic sample of that many rows of a longer reference (see
    the module docstring); the fingerprint is still the whole reference's.
    """
    frame = as_frame(reference, "reference")
    names = list(frame.columns) if columns is None else list(columns)
    check_columns_exist(frame, names, "reference")
    if len(frame) == 0:
        raise DriftInputError(
            "The reference data has no rows; drift needs a reference sample to compare with.",
            [str(c) for c in names],
        )
    if sketch_size < 2:
        raise DriftInputError(f"sketch_size must be at least 2, got {sketch_size}.")
    if max_rows is not None and (isinstance(max_rows, bool) or int(max_rows) < 1):
        raise DriftInputError(f"max_rows must be a positive number of rows, not {max_rows!r}.")
    source_rows = None
    if dataset_id is None and fingerprint:
        dataset_id = reference_fingerprint(frame, names)
    if max_rows is not None and len(frame) > max_rows:
        source_rows = len(frame)
        frame = sample_rows(frame, int(max_rows))
    kinds = dict(kinds or {})
    resolved = {name: kinds.get(name) or infer_kind(name, frame[name]) for name in names}
    built = parallel_map(
        lambda name: _profile_column(name, frame[name], resolved[name], sketch_size),
        names,
        len(frame) * len(names),
    )
    profiles = {c.name: c for c in built}
    return Profile(profiles, len(frame), dataset_id, sketch_size, source_rows)


def sample_rows(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` rows of ``frame`` chosen without replacement by a fixed seed, in their order: the
    same rows for the same data every time."""
    rng = np.random.default_rng(SAMPLE_SEED)
    positions = np.sort(rng.choice(len(frame), size=n, replace=False))
    return frame.iloc[positions]


def reference_fingerprint(frame: pd.DataFrame, names: Sequence[Hashable]) -> str:
    try:
        return fingerprint_of(frame).digest
    except TypeError:  # a column of unsupported objects: fingerprint the compared columns
        return fingerprint_of(frame[list(names)]).digest


def _profile_column(name: Hashable, series: pd.Series[Any], kind: Kind, size: int) -> ColumnProfile:
    dtype = str(series.dtype)
    if kind == "numeric" or (
        kind == "categorical"
        and pd.api.types.is_numeric_dtype(series.dtype)
        and not pd.api.types.is_bool_dtype(series.dtype)
    ):
        raw = numeric_values(name, series, "reference")
        values = finite(raw)
        summary = summarize_numeric(values, size)
        return ColumnProfile(name, kind, dtype, len(raw) - summary.n, numeric=summary)
    counts = category_counts(name, series)
    return ColumnProfile(name, kind, dtype, len(series) - sum(counts.values()), categories=counts)


T = TypeVar("T")
R = TypeVar("R")
# Below this many cells threads cost more than they save.
_PARALLEL_MIN_CELLS = 200_000


def parallel_map(func: Callable[[T], R], items: Sequence[T], cells: int) -> list[R]:
    """``[func(x) for x in items]``, on threads when the data is large: numpy's sorts and
    array arithmetic release the GIL, so columns are processed side by side."""
    workers = min(len(items), os.cpu_count() or 1, 8)
    if cells < _PARALLEL_MIN_CELLS or workers < 2:
        return [func(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="nbmlops-drift") as pool:
        return list(pool.map(func, items))


def as_frame(data: object, where: str) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        if not data.columns.is_unique:
            dup = data.columns[data.columns.duplicated()].unique().tolist()
            raise DriftInputError(
                f"The {where} data has duplicate column names {dup}; rename them first.",
                [str(c) for c in dup],
            )
        return data
    if isinstance(data, pd.Series):
        return data.to_frame(name=data.name if data.name is not None else 0)
    raise DriftInputError(
        f"The {where} data must be a pandas DataFrame or Series, not {type(data).__name__}."
    )


def check_columns_exist(frame: pd.DataFrame, names: Iterable[Hashable], where: str) -> None:
    present = set(frame.columns)
    missing = [n for n in names if n not in present]
    if missing:
        raise DriftInputError(
            f"Column(s) {', '.join(repr(m) for m in missing)} not found in the {where} data "
            f"(it has {', '.join(repr(c) for c in list(frame.columns)[:10])}"
            f"{' ...' if frame.shape[1] > 10 else ''}).",
            [str(m) for m in missing],
        )


# --- merging --------------------------------------------------------------------------------


def merge_profiles(first: Profile, *others: Profile) -> Profile:
    """One profile of several windows of the same columns, as if profiled together."""
    merged = first
    for other in others:
        merged = _merge_two(merged, other)
    return merged


def _check_mergeable(a: Profile, b: Profile) -> None:
    """The same columns in the same order, each of the same kind and form on both sides."""
    if list(a.columns) != list(b.columns):
        only_a = [str(c) for c in a.columns if c not in b.columns]
        only_b = [str(c) for c in b.columns if c not in a.columns]
        raise DriftInputError(
            "Profiles to merge must have the same columns in the same order; "
            f"only in the first: {only_a}, only in the second: {only_b}.",
            only_a + only_b,
        )
    for name, ca in a.columns.items():
        cb = b.columns[name]
        if ca.kind != cb.kind or (ca.numeric is None) != (cb.numeric is None):
            raise DriftInputError(
                f"Column {name!r} is {ca.kind} in one profile and {cb.kind} in the other; "
                "pass kinds= when profiling so they agree.",
                [str(name)],
            )


def _merge_two(a: Profile, b: Profile) -> Profile:
    _check_mergeable(a, b)
    size = max(a.sketch_size, b.sketch_size)
    columns: dict[Hashable, ColumnProfile] = {}
    for name, ca in a.columns.items():
        cb = b.columns[name]
        if ca.numeric is not None and cb.numeric is not None:
            numeric = _merge_numeric(ca.numeric, cb.numeric, size)
            columns[name] = ColumnProfile(
                name, ca.kind, ca.dtype, ca.n_missing + cb.n_missing, numeric=numeric
            )
        else:
            columns[name] = _summed_categories([ca, cb])
    return Profile(columns, a.n_rows + b.n_rows, _merged_id([a, b]), size, _source_rows([a, b]))


def _summed_categories(parts: Sequence[ColumnProfile]) -> ColumnProfile:
    cats: dict[CategoryKey, int] = {}
    for part in parts:
        assert part.categories is not None
        for key, count in part.categories.items():
            cats[key] = cats.get(key, 0) + count
    first = parts[0]
    missing = sum(p.n_missing for p in parts)
    return ColumnProfile(first.name, first.kind, first.dtype, missing, categories=cats)


def _merged_id(profiles: Sequence[Profile]) -> str | None:
    ids = [p.dataset_id for p in profiles]
    if any(i is None for i in ids):
        return None
    text = "merge:" + ":".join(sorted(str(i) for i in ids))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _source_rows(profiles: Sequence[Profile]) -> int | None:
    if all(p.source_rows is None for p in profiles):
        return None
    return sum(p.source_rows or p.n_rows for p in profiles)


def _moments(
    a: tuple[int, float, float, float], b: tuple[int, float, float, float]
) -> tuple[int, float, float, float]:
    """(n, mean, M2, M3) of two parts together (Chan et al.'s pairwise update)."""
    na, mean_a, m2a, m3a = a
    nb, mean_b, m2b, m3b = b
    n = na + nb
    delta = mean_b - mean_a
    mean = mean_a + delta * nb / n
    m2 = m2a + m2b + delta * delta * na * nb / n
    m3 = (
        m3a
        + m3b
        + delta**3 * na * nb * (na - nb) / (n * n)
        + 3.0 * delta * (na * m2b - nb * m2a) / n
    )
    return n, mean, m2, m3


def _merge_numeric(a: NumericSummary, b: NumericSummary, size: int) -> NumericSummary:
    if a.n == 0:
        return b
    if b.n == 0:
        return a
    n, mean, m2, m3 = _moments((a.n, a.mean, a.m2, a.m3), (b.n, b.mean, b.m2, b.m3))
    if a.counts is not None and b.counts is not None:
        values = np.concatenate((a.values, b.values))
        counts = np.concatenate((a.counts, b.counts))
        order = np.argsort(values, kind="stable")
        values, counts = values[order], counts[order]
        distinct, first = np.unique(values, return_index=True)
        summed = np.add.reduceat(counts, first)
        return _summary_from_counts(distinct, summed.astype(np.int64), mean, m2, m3, size)
    # At least one sketch: the mixture of the two CDFs is piecewise linear between the union of
    # the knots (exact summaries enter as their ECDF at each distinct value), then re-sketched.
    xa, fa = _cdf_knots(a)
    xb, fb = _cdf_knots(b)
    grid = np.union1d(xa, xb)
    mix = (a.n * np.interp(grid, xa, fa, 0.0, 1.0) + b.n * np.interp(grid, xb, fb, 0.0, 1.0)) / n
    targets = sketch_fractions(n, size)
    knots = np.interp(targets, mix, grid)
    knots[0], knots[-1] = grid[0], grid[-1]
    # Errors add up: the old sketch errors plus the re-sketching of the mixture.
    ks_error = max(a.ks_error, b.ks_error) + float(np.max(np.diff(targets)))
    w1_error = (a.n * a.w1_error + b.n * b.w1_error) / n + float(
        np.max(np.diff(knots)) * np.max(np.diff(targets))
    )
    return NumericSummary(n, knots, None, targets, mean, m2, m3, ks_error, w1_error)


def _cdf_knots(s: NumericSummary) -> tuple[FloatArray, FloatArray]:
    if s.counts is None:
        assert s.fractions is not None
        return s.values, s.fractions
    return s.values, np.cumsum(s.counts) / s.n


def pool_profiles(profiles: Sequence[Profile]) -> Profile:
    """One profile of several profiles of the same columns (the windows of a stream), added up
    at once rather than merged pair by pair: nothing is lost but rounding and one re-sketch.

    Counts, moments and category frequencies add. Exact numeric summaries add into one exact
    summary however many distinct values they hold together (:func:`merge_profiles` re-sketches
    past the sketch size). With a sketch among them, the pooled CDF is the exact mixture of
    theirs (the count-weighted sum: linear pieces from the sketches, steps from the exact
    summaries), sketched once with a knot per breakpoint of the mixture. Its ``ks_error`` and
    ``w1_error`` are the count-weighted means of the parts' plus that re-sketch's (at most
    1 / knots, and the area of the boxes between knots), so unlike pairwise merging the bound
    does not grow with the number of windows.

    ``check_drift(reference, pool_profiles(windows))`` then costs what the profiles' size
    costs, not the rows they counted.
    """
    if not profiles:
        raise DriftInputError("pool_profiles needs at least one profile.")
    first = profiles[0]
    if len(profiles) == 1:
        return first
    for other in profiles[1:]:
        _check_mergeable(first, other)

    def pool(name: Hashable) -> ColumnProfile:
        parts = [p.columns[name] for p in profiles]
        if parts[0].numeric is None:
            return _summed_categories(parts)
        numeric = _pool_numeric([c.numeric for c in parts if c.numeric is not None])
        missing = sum(c.n_missing for c in parts)
        return ColumnProfile(name, parts[0].kind, parts[0].dtype, missing, numeric=numeric)

    knots = sum(len(c.numeric.values) for p in profiles for c in p.columns.values() if c.numeric)
    columns = {c.name: c for c in parallel_map(pool, list(first.columns), knots)}
    n_rows = sum(p.n_rows for p in profiles)
    size = max(p.sketch_size for p in profiles)
    return Profile(columns, n_rows, _merged_id(profiles), size, _source_rows(profiles))


# A CDF as counts: its breakpoints x (sorted, distinct), the count below each (left limit) and
# at or below it; linear from one breakpoint's "at" to the next one's "below".
_Steps = tuple[FloatArray, FloatArray, FloatArray]


def _pool_numeric(parts: Sequence[NumericSummary]) -> NumericSummary:
    live = [s for s in parts if s.n]
    if len(live) <= 1:
        return live[0] if live else parts[0]
    moments = (live[0].n, live[0].mean, live[0].m2, live[0].m3)
    for s in live[1:]:
        moments = _moments(moments, (s.n, s.mean, s.m2, s.m3))
    n, mean, m2, m3 = moments
    if all(s.counts is not None for s in live):
        values = np.concatenate([s.values for s in live])
        counts = np.concatenate([s.counts for s in live if s.counts is not None])
        order = np.argsort(values, kind="stable")
        values, counts = values[order], counts[order]
        starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
        summed = np.add.reduceat(counts, starts).astype(np.int64)
        return NumericSummary(n, values[starts], summed, None, mean, m2, m3)
    x, below, at, steep = _mixture([_steps(s) for s in live])
    size = max(min(len(x), n), 2)
    targets = sketch_fractions(n, size)
    ladder = np.empty(2 * len(x))
    ladder[0::2], ladder[1::2] = below, at
    knots = np.interp(targets * n, ladder, np.repeat(x, 2))
    knots[0], knots[-1] = x[0], x[-1]
    # The parts' bounds (weighted), the re-sketch (boxes between knots), the steep pieces.
    ks_error = sum(s.n * s.ks_error for s in live) / n + float(np.max(np.diff(targets)))
    ks_error += steep[0] / n
    w1_error = sum(s.n * s.w1_error for s in live) / n + steep[1] / n
    w1_error += float(np.dot(np.diff(knots), np.diff(targets)))
    return NumericSummary(n, knots, None, targets, mean, m2, m3, ks_error, w1_error)


def _steps(s: NumericSummary) -> _Steps:
    if s.counts is not None:
        at = np.cumsum(s.counts).astype(np.float64)
        return s.values, at - s.counts, at
    assert s.fractions is not None
    counts = s.fractions * s.n
    starts = np.flatnonzero(np.concatenate(([True], s.values[1:] != s.values[:-1])))
    ends = np.append(starts[1:] - 1, len(s.values) - 1)
    return s.values[starts], counts[starts], counts[ends]


# A linear piece narrower than this share of the range is added as a jump at its end: summing
# slopes (counts per unit of x) loses about eps * slope * range, which a steep piece would make
# matter; the move is bounded by the piece's count (KS) and count x width (W1), and recorded.
_STEEP_WIDTH = 1e-9


def _mixture(
    parts: Sequence[_Steps],
) -> tuple[FloatArray, FloatArray, FloatArray, tuple[float, float]]:
    """The sum of several CDFs (as counts, see ``_Steps``) at every breakpoint of any: jumps
    add at their points; each linear piece adds its slope from its start to its end; one sort
    and running sums, however many parts. Also (largest count, sum of count x width) of the
    steep pieces added as jumps."""
    xs = np.concatenate([x for x, _, _ in parts])
    grid, where = np.unique(xs, return_inverse=True)
    ends = np.cumsum([len(x) for x, _, _ in parts])
    first = np.zeros(len(xs), dtype=bool)
    first[np.concatenate(([0], ends[:-1]))] = True
    last = np.zeros(len(xs), dtype=bool)
    last[ends - 1] = True
    below = np.concatenate([b for _, b, _ in parts])
    at = np.concatenate([a for _, _, a in parts])
    jumps = np.bincount(where, weights=at - below, minlength=len(grid)).astype(np.float64)
    # Piece k of a part runs from its breakpoint k (not a last one) to k + 1 (not a first).
    mass = below[~first] - at[~last]
    width = xs[~first] - xs[~last]
    steep = width <= _STEEP_WIDTH * max(float(grid[-1] - grid[0]), 1e-300)
    moved = (float(mass[steep].max(initial=0.0)), float(np.dot(mass[steep], width[steep])))
    jumps += np.bincount(where[~first][steep], weights=mass[steep], minlength=len(grid))
    gentle = ~steep
    slope = mass[gentle] / width[gentle]
    change = np.bincount(where[~last][gentle], weights=slope, minlength=len(grid))
    change -= np.bincount(where[~first][gentle], weights=slope, minlength=len(grid))
    rising = np.cumsum(change)[:-1] * np.diff(grid)  # counts added between breakpoints
    total_at: FloatArray = np.cumsum(jumps)
    total_at[1:] += np.cumsum(rising)
    return np.asarray(grid, dtype=np.float64), total_at - jumps, total_at, moved


# --- JSON -----------------------------------------------------------------------------------


def _b64(array: np.ndarray[Any, Any], dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _unb64(text: str, dtype: str) -> np.ndarray[Any, Any]:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).copy()


def _label_json(label: Hashable) -> Any:
    if isinstance(label, np.generic):
        return label.item()
    if isinstance(label, tuple):
        return [_label_json(x) for x in label]
    if label is None or isinstance(label, str | int | float | bool):
        return label
    return str(label)


def _label_from_json(label: Any) -> Hashable:
    if isinstance(label, list):
        return tuple(_label_from_json(x) for x in label)
    return label  # type: ignore[no-any-return]


def _num(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _column_json(c: ColumnProfile) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": _label_json(c.name),
        "kind": c.kind,
        "dtype": c.dtype,
        "n": c.n,
        "n_missing": c.n_missing,
    }
    if c.categories is not None:
        out["categories"] = [[k, v] for k, v in c.categories.items()]
        return out
    s = c.numeric
    assert s is not None
    out.update(
        exact=s.exact,
        min=_num(s.minimum),
        max=_num(s.maximum),
        mean=_num(s.mean),
        m2=s.m2,
        m3=s.m3,
        ks_error=s.ks_error,
        w1_error=s.w1_error,
        values="<f8:" + _b64(s.values, "<f8"),
    )
    if s.counts is not None:
        out["counts"] = "<i8:" + _b64(s.counts, "<i8")
    return out


def _column_from_json(d: Mapping[str, Any]) -> ColumnProfile:
    name = _label_from_json(d["name"])
    if "categories" in d:
        cats = {k: int(v) for k, v in d["categories"]}
        return ColumnProfile(name, d["kind"], d["dtype"], int(d["n_missing"]), categories=cats)
    values = _unb64(d["values"].split(":", 1)[1], "<f8").astype(np.float64)
    counts = _unb64(d["counts"].split(":", 1)[1], "<i8").astype(np.int64) if d["exact"] else None
    fractions = None if d["exact"] else sketch_fractions(int(d["n"]), len(values) - 1)
    mean = d["mean"] if d["mean"] is not None else math.nan
    summary = NumericSummary(
        int(d["n"]),
        values,
        counts,
        fractions,
        float(mean),
        float(d["m2"]),
        float(d["m3"]),
        float(d["ks_error"]),
        float(d["w1_error"]),
    )
    return ColumnProfile(name, d["kind"], d["dtype"], int(d["n_missing"]), numeric=summary)
