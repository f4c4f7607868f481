"""The shared base of every detector: the scikit-learn contract, one current column, the curves.

``fit(reference) -> self`` keeps a :class:`~nbmlops.drift.Profile` of the reference in
``profile_``; ``check(current) -> DriftReport`` compares; ``__init__`` only stores parameters;
learned state ends in ``_``; :class:`~nbmlops.errors.NotFittedError` before ``fit``. Both only
compute: nothing here reads or writes a store (``nbmlops.drift.save_profile`` and
``save_report`` do, called by ``nbmlops.check_drift`` when it saves).

A method is a subclass that sets ``method_name`` and implements ``_statistic``: the tests are in
:mod:`._stat_tests`, the distances in :mod:`._distances`, and :class:`DriftDetector`
(:mod:`._auto`) picks one per column with :func:`select_method`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from nbmlops.drift import _stats
from nbmlops.drift._profile import (
    DEFAULT_SKETCH_SIZE,
    ColumnProfile,
    FloatArray,
    IntArray,
    Kind,
    NumericSummary,
    Profile,
    as_frame,
    build_profile,
    category_counts,
    check_columns_exist,
    distinct_counts,
    finite,
    numeric_values,
    parallel_map,
)
from nbmlops.drift.report import ColumnDrift, DriftReport, apply_verdict
from nbmlops.errors import DriftInputError, NotFittedError

# Evidently 0.7's size and cardinality cut-offs (legacy/calculations/stattests/registry.py).
SMALL_REFERENCE = 1000
FEW_VALUES = 5
# Parameters every detector shares; the rest (``base``, ``bins``, ``ddof`` ...) define its method.
_COMMON_PARAMS = frozenset(
    {"threshold", "columns", "drift_share", "multiple_testing", "sketch_size"}
)
# Where the ECDF plots sample both distributions (stored reports keep the current side).
CURVE_PROBS = np.linspace(0.0, 1.0, 101)


def select_method(kind: Kind, n_reference: int, n_unique: int) -> str:
    """Evidently 0.7's default test for a column (``_get_default_stattest``).

    ``kind`` is numeric or categorical (integers with at most 10 distinct values, bools,
    categoricals and text are categorical); ``n_reference`` counts the reference's non-missing
    values; ``n_unique`` counts distinct non-missing values of reference and current together.

    ============================  ======================  ==========================
    column                        reference n <= 1000     reference n > 1000
    ============================  ======================  ==========================
    numeric, > 5 distinct values  ks (p < 0.05)           wasserstein (>= 0.1)
    numeric, <= 5 distinct        chi2_gof if > 2 values,  jensenshannon (>= 0.1)
    or categorical                else z (p < 0.05)
    ============================  ======================  ==========================
    """
    if kind == "numeric" and n_unique > FEW_VALUES:
        return "ks" if n_reference <= SMALL_REFERENCE else "wasserstein"
    if n_reference <= SMALL_REFERENCE:
        return "chi2_gof" if n_unique > 2 else "z"
    return "jensenshannon"


class _Current:
    """One current column: its rows, converted and summarised lazily (each at most once per
    check), or a profile of them (``summary`` for a numeric one), read as it is."""

    def __init__(
        self, name: Hashable, data: pd.Series[Any] | ColumnProfile, reference: ColumnProfile
    ) -> None:
        self.name = name
        self.reference = reference
        self._numeric: FloatArray | None = None
        self._sorted: FloatArray | None = None
        self._categories: dict[Any, int] | None = None
        self.summary: NumericSummary | None = None
        self._profile: ColumnProfile | None = None
        if isinstance(data, ColumnProfile):
            self._from_profile(data)
            return
        series = data
        self.n_rows = len(series)
        if reference.numeric is not None:
            raw = numeric_values(name, series, "current")
            self._numeric = finite(raw)
            self.n = len(self._numeric)
        else:
            if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
                series.dtype
            ):
                keys = reference.categories or {}
                if keys and all(isinstance(k, str) for k in keys):
                    raise DriftInputError(
                        f"Column {name!r} holds text in the reference but numbers in the "
                        "current data; convert one of them so they match.",
                        [str(name)],
                    )
            self._categories = category_counts(name, series)
            self.n = sum(self._categories.values())
        self.n_missing = self.n_rows - self.n

    def _from_profile(self, column: ColumnProfile) -> None:
        name, reference = self.name, self.reference
        self._profile = column
        self.n, self.n_missing = column.n, column.n_missing
        self.n_rows = self.n + self.n_missing
        if reference.numeric is not None and column.numeric is None:
            raise DriftInputError(
                f"Column {name!r} is numeric in the reference but the current profile counts "
                f"its values as categories; profile both with kinds={{{name!r}: "
                f"{reference.kind!r}}} so they agree.",
                [str(name)],
            )
        if column.numeric is not None and reference.numeric is None:
            keys = reference.categories or {}
            if keys and all(isinstance(k, str) for k in keys):
                raise DriftInputError(
                    f"Column {name!r} holds text in the reference but numbers in the current "
                    "profile; profile both from data of the same type.",
                    [str(name)],
                )
        self.summary = column.numeric

    @property
    def numeric(self) -> FloatArray:
        if self._numeric is None:
            raise DriftInputError(
                f"Column {self.name!r} is categorical; this method needs a numeric column. "
                "Use chi2_gof, chi2_contingency, z, jensenshannon, psi, hellinger or "
                "l_infinity for it.",
                [str(self.name)],
            )
        return self._numeric

    @property
    def sorted(self) -> FloatArray:
        if self._sorted is None:
            self._sorted = np.sort(self.numeric)
        return self._sorted

    def frequencies(self) -> tuple[list[Any], IntArray]:
        if self._categories is not None:
            return list(self._categories), np.fromiter(self._categories.values(), np.int64)
        if self._profile is not None:
            return self._profile.frequencies()  # a sketch has none: a DriftInputError says so
        values, counts = distinct_counts(self.sorted)
        return values.tolist(), counts

    def minimum(self) -> float:
        return self.summary.minimum if self.summary is not None else float(self.numeric.min())

    def maximum(self) -> float:
        return self.summary.maximum if self.summary is not None else float(self.numeric.max())

    def histogram(self, edges: FloatArray) -> FloatArray:
        """Counts in numpy's histogram bins (the last one closed), values outside left out."""
        if self.summary is not None:
            return histogram_of(self.summary, edges)
        return _stats.histogram_counts(self.numeric, edges).astype(float)

    def bin_counts(self, interior: FloatArray) -> FloatArray:
        """Counts in the bins [interior[i - 1], interior[i]), open at both ends."""
        if self.summary is not None:
            below = self.summary.cdf_below(interior)
            return np.diff(np.concatenate(([0.0], below, [float(self.n)])))
        positions = np.searchsorted(interior, self.numeric, side="right")
        return np.bincount(positions, minlength=len(interior) + 1).astype(float)

    def n_unique_with_reference(self) -> int:
        """Distinct non-missing values of reference and current together (Evidently's count)."""
        ref = self.reference
        if ref.numeric is not None:
            distinct = ref.numeric.n_distinct
            if distinct is None or distinct > FEW_VALUES:
                return distinct if distinct is not None else ref.numeric.n
            if self.summary is not None:
                if self.summary.counts is None:  # a sketch: more distinct values than it keeps
                    return self.summary.n
                return len(np.union1d(ref.numeric.values, self.summary.values))
            current = pd.unique(self.numeric)
            return len(np.union1d(ref.numeric.values, current))
        assert ref.categories is not None
        if self._profile is not None and self._profile.categories is None:
            return len(set(ref.categories) | set(self.frequencies()[0]))
        if self._profile is not None:
            return len(set(ref.categories) | set(self._profile.categories or {}))
        assert self._categories is not None
        return len(set(ref.categories) | set(self._categories))


def _aligned(
    ref_keys: list[Any], ref_counts: IntArray, cur_keys: list[Any], cur_counts: IntArray
) -> tuple[list[Any], FloatArray, FloatArray]:
    """Counts of both sides over the union of keys (reference order first)."""
    index = {k: i for i, k in enumerate(ref_keys)}
    keys = list(ref_keys)
    for k in cur_keys:
        if k not in index:
            index[k] = len(keys)
            keys.append(k)
    ref = np.zeros(len(keys))
    cur = np.zeros(len(keys))
    ref[: len(ref_keys)] = ref_counts
    cur[[index[k] for k in cur_keys]] = cur_counts
    return keys, ref, cur


Outcome = tuple[float, float | None, float, str]


class BaseDetector:
    """Shared machinery; subclasses set ``method_name`` and implement ``_statistic``."""

    method_name: ClassVar[str] = ""
    default_threshold: ClassVar[float] = 0.05
    is_test: ClassVar[bool] = True

    threshold: float | Mapping[Hashable, float] | None
    columns: Sequence[Hashable] | None
    drift_share: float
    multiple_testing: str | None
    sketch_size: int

    def __init__(
        self,
        threshold: float | None = None,
        *,
        columns: Sequence[Hashable] | None = None,
        drift_share: float = 0.5,
        multiple_testing: str | None = None,
        sketch_size: int = DEFAULT_SKETCH_SIZE,
    ) -> None:
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size)

    def _init_common(
        self,
        threshold: float | Mapping[Hashable, float] | None,
        columns: Sequence[Hashable] | None,
        drift_share: float,
        multiple_testing: str | None,
        sketch_size: int,
    ) -> None:
        self.threshold = threshold
        self.columns = columns
        self.drift_share = drift_share
        self.multiple_testing = multiple_testing
        self.sketch_size = sketch_size

    # -- the scikit-learn contract ---------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def method_params(self) -> dict[str, Any]:
        """The parameters that define this method's statistic (``get_params`` without those
        every detector shares), e.g. ``{"base": 2, "squared": False, "bins": "doane"}``."""
        return {k: v for k, v in self.get_params().items() if k not in _COMMON_PARAMS}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v is not None)
        return f"{type(self).__name__}({args})"

    def fit(self, reference: pd.DataFrame | pd.Series[Any] | Profile) -> Self:
        """Profile the reference (or take a stored :class:`Profile`) into ``profile_``.

        The profile records the reference's fingerprint, so ``nbmlops.drift.save_profile(store,
        detector.profile_)`` can keep it; fitting itself writes nothing."""
        self._validate_params()
        if isinstance(reference, Profile):
            profile = reference
            if self.columns is not None:
                missing = [c for c in self.columns if c not in profile.columns]
                if missing:
                    raise DriftInputError(
                        f"Column(s) {missing} are not in the profile; it has "
                        f"{list(profile.columns)[:10]}.",
                        [str(m) for m in missing],
                    )
        else:
            profile = build_profile(
                reference,
                self.columns,
                sketch_size=self.sketch_size,
                kinds=self._kinds(),
            )
        self.profile_ = profile
        self.columns_ = list(self.columns) if self.columns is not None else list(profile.columns)
        return self

    def check(self, current: pd.DataFrame | pd.Series[Any] | Profile) -> DriftReport:
        """Compare the current data with the fitted reference, column by column.

        ``current`` may be a :class:`Profile` of the current data (e.g. the pooled windows of
        a stream, :func:`~nbmlops.drift.pool_profiles`): then the check costs what the two
        profiles' size costs, not the rows. Against exact profiles every statistic is the one
        of the rows (Wasserstein to rounding: it is summed over distinct values, not rows);
        against a sketch, within its recorded error bounds (noted on the column). A sketched
        current column has no per-value frequencies, so methods that need them refuse it."""
        profile: Profile | None = getattr(self, "profile_", None)
        if profile is None:
            raise NotFittedError(type(self).__name__)
        column_of: Callable[[Hashable], pd.Series[Any] | ColumnProfile]
        if isinstance(current, Profile):
            missing = [c for c in self.columns_ if c not in current.columns]
            if missing:
                raise DriftInputError(
                    f"Column(s) {', '.join(repr(m) for m in missing)} not found in the current "
                    f"profile (it has {', '.join(repr(c) for c in list(current.columns)[:10])}).",
                    [str(m) for m in missing],
                )
            n_rows, column_of = current.n_rows, current.columns.__getitem__
            cells = sum(_size(current.columns[c]) for c in self.columns_)
        else:
            frame = as_frame(current, "current")
            check_columns_exist(frame, self.columns_, "current")
            n_rows, column_of = len(frame), frame.__getitem__
            cells = len(frame) * len(self.columns_)
        if n_rows == 0:
            raise DriftInputError(
                "The current data has no rows; there is nothing to compare with the reference.",
                [str(c) for c in self.columns_],
            )

        def one(name: Hashable) -> tuple[ColumnDrift, dict[str, Any], dict[str, Any] | None]:
            ref = profile.columns[name]
            cur = _Current(name, column_of(name), ref)
            detector = self._detector_for(ref, cur)
            result = self._evaluate(ref, cur, detector)
            setting = {
                "column": name,
                "method": detector.method_name,
                "params": detector.method_params(),
                "threshold": result.threshold,  # nominal: before multiple-testing correction
            }
            return result, setting, None if result.method == "untested" else _curve(ref, cur)

        outcomes = parallel_map(one, self.columns_, cells)
        results = [result for result, _, _ in outcomes]
        curves = {r.column: curve for r, _, curve in outcomes if curve is not None}
        warnings = [f"column {r.column!r}: {r.note}" for r in results if r.method == "untested"]
        final, dataset_drift, share = apply_verdict(
            results, self.drift_share, self.multiple_testing
        )
        return DriftReport(
            columns=tuple(final),
            dataset_drift=dataset_drift,
            drift_share=share,
            drift_share_threshold=self.drift_share,
            multiple_testing=self.multiple_testing,
            profile_id=profile.profile_id,
            report_id=os.urandom(6).hex(),
            created_at=time.time(),
            warnings=tuple(warnings),
            column_settings=tuple(setting for _, setting, _ in outcomes),
            _curves=curves,
            _profile=profile,
        )

    # -- per column ------------------------------------------------------------------------

    def _kinds(self) -> Mapping[Hashable, Kind] | None:
        return None

    def _validate_params(self) -> None:
        if self.multiple_testing not in (None, "bonferroni", "bh"):
            raise DriftInputError(
                "multiple_testing must be None, 'bonferroni' or 'bh', not "
                f"{self.multiple_testing!r}."
            )
        if not 0.0 < float(self.drift_share) <= 1.0:
            raise DriftInputError(f"drift_share must be in (0, 1], not {self.drift_share!r}.")

    def _column_threshold(self, name: Hashable, detector: BaseDetector) -> float:
        if detector is not self:
            return detector._column_threshold(name, detector)
        threshold = self.threshold
        if threshold is None:
            return self.default_threshold
        if isinstance(threshold, Mapping):
            value = threshold.get(name)
            return self.default_threshold if value is None else float(value)
        return float(threshold)

    def _detector_for(self, ref: ColumnProfile, cur: _Current) -> BaseDetector:
        return self

    def _evaluate(self, ref: ColumnProfile, cur: _Current, detector: BaseDetector) -> ColumnDrift:
        threshold = self._column_threshold(ref.name, detector)
        common: dict[str, Any] = {
            "kind": ref.kind,
            "n_reference": ref.n,
            "n_current": cur.n,
            "missing_reference": ref.n_missing,
            "missing_current": cur.n_missing,
        }
        if ref.n == 0 or cur.n == 0:
            side = "reference" if ref.n == 0 else "current"
            return ColumnDrift(
                ref.name,
                "untested",
                math.nan,
                None,
                threshold,
                False,
                math.nan,
                note=f"no non-missing values in the {side} data; not tested",
                **common,
            )
        statistic, p_value, effect, note = detector._statistic(ref, cur)
        if detector.is_test:
            assert p_value is not None
            drifted = p_value < threshold
        else:
            drifted = statistic >= threshold
        return ColumnDrift(
            ref.name,
            detector.method_name,
            statistic,
            p_value,
            threshold,
            bool(drifted),
            effect,
            note=note,
            **common,
        )

    def _statistic(self, ref: ColumnProfile, cur: _Current) -> Outcome:
        raise NotImplementedError


def _numeric_summary(ref: ColumnProfile, method: str) -> NumericSummary:
    if ref.numeric is None:
        raise DriftInputError(
            f"Method {method!r} needs a numeric column, but {ref.name!r} is categorical "
            f"(dtype {ref.dtype}); use chi2_gof, chi2_contingency, z, jensenshannon, psi, "
            "hellinger or l_infinity for it.",
            [str(ref.name)],
        )
    return ref.numeric


def _size(column: ColumnProfile) -> int:
    """What checking a profiled column costs, in the units parallel_map counts (cells)."""
    if column.numeric is not None:
        return len(column.numeric.values)
    return len(column.categories or ())


def histogram_of(s: NumericSummary, edges: FloatArray) -> FloatArray:
    """numpy's histogram of the values a summary counted (bins [e_i, e_i+1), the last one
    closed): exact for exact summaries."""
    below = s.cdf_below(edges)
    below[-1] = s.cdf_at_or_below(edges[-1:])[0]  # numpy's last bin is closed
    return np.asarray(np.diff(below), dtype=np.float64)


def _curve(ref: ColumnProfile, cur: _Current) -> dict[str, Any]:
    """Small summaries for plotting: 101 quantiles of numeric columns, top 20 frequencies."""
    if ref.kind == "numeric" and ref.numeric is not None:
        probs = CURVE_PROBS
        if cur.summary is not None:
            current = cur.summary.quantiles(probs)
        elif cur._sorted is not None:
            current = _sorted_quantiles(cur._sorted, probs)
        else:
            current = np.quantile(cur.numeric, probs)
        return {
            "type": "ecdf",
            "probs": probs,
            "reference": ref.numeric.quantiles(probs),
            "current": current,
        }
    keys, r, c = _aligned(*ref.frequencies(), *cur.frequencies())
    order = np.argsort(-(r / max(r.sum(), 1) + c / max(c.sum(), 1)))[:20]
    return {
        "type": "bars",
        "keys": [keys[i] for i in order],
        "reference": (r / max(r.sum(), 1))[order],
        "current": (c / max(c.sum(), 1))[order],
    }


def _sorted_quantiles(x: FloatArray, probs: FloatArray) -> FloatArray:
    """np.quantile (linear) of an already sorted array, without partitioning it again."""
    h = (len(x) - 1) * probs
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, len(x) - 1)
    return np.asarray(x[lo] + (h - lo) * (x[hi] - x[lo]), dtype=np.float64)


def validate_kinds(kinds: Mapping[Hashable, Kind] | None) -> None:
    """``kinds`` (column -> "numeric" or "categorical") as a user gave it; DriftInputError
    naming the bad value otherwise."""
    for kind in (kinds or {}).values():
        if kind not in ("numeric", "categorical"):
            raise DriftInputError(f"kinds values must be numeric or categorical, not {kind!r}.")
