"""Drift detectors with the scikit-learn contract: ``fit(reference) -> self``,
``check(current) -> DriftReport``; ``__init__`` only stores parameters; learned state ends in
``_``; ``NotFittedError`` before ``fit``.

One class per method (each applies its method to every column) plus :class:`DriftDetector`,
which picks a method per column (Evidently's rule, see :func:`select_method`) and takes
per-column overrides.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import pandas as pd

from nbmlops.drift import _stats
from nbmlops.drift._profile import (
    DEFAULT_SKETCH_SIZE,
    ColumnProfile,
    FloatArray,
    IntArray,
    Kind,
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

if TYPE_CHECKING:
    from nbmlops.store import Store

# Evidently 0.7's size and cardinality cut-offs (legacy/calculations/stattests/registry.py).
SMALL_REFERENCE = 1000
FEW_VALUES = 5
# scipy.stats.ks_2samp uses the exact distribution up to this sample size (method='auto').
KS_EXACT_MAX_N = 10_000
Bins = str | int
# Parameters every detector shares; the rest (``base``, ``bins``, ``ddof`` ...) define its method.
_COMMON_PARAMS = frozenset(
    {"threshold", "columns", "drift_share", "multiple_testing", "sketch_size", "store"}
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
    """One current column, converted and summarised lazily (each at most once per check)."""

    def __init__(self, name: Hashable, series: pd.Series[Any], reference: ColumnProfile) -> None:
        self.name = name
        self.reference = reference
        self.n_rows = len(series)
        self._series = series
        self._numeric: FloatArray | None = None
        self._sorted: FloatArray | None = None
        self._categories: dict[Any, int] | None = None
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
        values, counts = distinct_counts(self.sorted)
        return values.tolist(), counts

    def n_unique_with_reference(self) -> int:
        """Distinct non-missing values of reference and current together (Evidently's count)."""
        ref = self.reference
        if ref.numeric is not None:
            distinct = ref.numeric.n_distinct
            if distinct is None or distinct > FEW_VALUES:
                return distinct if distinct is not None else ref.numeric.n
            current = pd.unique(self.numeric)
            return len(np.union1d(ref.numeric.values, current))
        assert self._categories is not None and ref.categories is not None
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


def _sort_keys(keys: list[Any]) -> list[Any]:
    try:
        return sorted(keys)
    except TypeError:
        return sorted(keys, key=lambda k: (type(k).__name__, str(k)))


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
    store: Store | None

    def __init__(
        self,
        threshold: float | None = None,
        *,
        columns: Sequence[Hashable] | None = None,
        drift_share: float = 0.5,
        multiple_testing: str | None = None,
        sketch_size: int = DEFAULT_SKETCH_SIZE,
        store: Store | None = None,
    ) -> None:
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size, store)

    def _init_common(
        self,
        threshold: float | Mapping[Hashable, float] | None,
        columns: Sequence[Hashable] | None,
        drift_share: float,
        multiple_testing: str | None,
        sketch_size: int,
        store: Store | None,
    ) -> None:
        self.threshold = threshold
        self.columns = columns
        self.drift_share = drift_share
        self.multiple_testing = multiple_testing
        self.sketch_size = sketch_size
        self.store = store

    # -- the scikit-learn contract ---------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def method_params(self) -> dict[str, Any]:
        """The parameters that define this method's statistic (``get_params`` without those
        every detector shares), e.g. ``{"base": 2, "squared": False, "bins": "doane"}``."""
        return {k: v for k, v in self.get_params().items() if k not in _COMMON_PARAMS}

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={v!r}" for k, v in self.get_params().items() if v is not None and k != "store"
        )
        return f"{type(self).__name__}({args})"

    def fit(self, reference: pd.DataFrame | pd.Series[Any] | Profile) -> Self:
        """Profile the reference (or take a stored :class:`Profile`); saved to ``store`` if set."""
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
                fingerprint=self.store is not None,  # the store keys profiles by it
            )
        if self.store is not None:
            from nbmlops.drift._persist import save_profile

            save_profile(self.store, profile)
        self.profile_ = profile
        self.columns_ = list(self.columns) if self.columns is not None else list(profile.columns)
        return self

    def check(self, current: pd.DataFrame | pd.Series[Any]) -> DriftReport:
        """Compare the current data with the fitted reference, column by column."""
        profile: Profile | None = getattr(self, "profile_", None)
        if profile is None:
            raise NotFittedError(type(self).__name__)
        frame = as_frame(current, "current")
        check_columns_exist(frame, self.columns_, "current")
        if len(frame) == 0:
            raise DriftInputError(
                "The current data has no rows; there is nothing to compare with the reference.",
                [str(c) for c in self.columns_],
            )

        def one(name: Hashable) -> tuple[ColumnDrift, dict[str, Any], dict[str, Any] | None]:
            ref = profile.columns[name]
            cur = _Current(name, frame[name], ref)
            detector = self._detector_for(ref, cur)
            result = self._evaluate(ref, cur, detector)
            setting = {
                "column": name,
                "method": detector.method_name,
                "params": detector.method_params(),
                "threshold": result.threshold,  # nominal: before multiple-testing correction
            }
            return result, setting, None if result.method == "untested" else _curve(ref, cur)

        outcomes = parallel_map(one, self.columns_, len(frame) * len(self.columns_))
        results = [result for result, _, _ in outcomes]
        curves = {r.column: curve for r, _, curve in outcomes if curve is not None}
        warnings = [f"column {r.column!r}: {r.note}" for r in results if r.method == "untested"]
        final, dataset_drift, share = apply_verdict(
            results, self.drift_share, self.multiple_testing
        )
        report = DriftReport(
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
        )
        if self.store is not None:
            from nbmlops.drift._persist import save_report

            report = save_report(self.store, report, profile=profile, current=frame)
        return report

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


# --- tests --------------------------------------------------------------------------------------


class KS(BaseDetector):
    """Two-sample Kolmogorov-Smirnov test, as ``scipy.stats.ks_2samp(reference, current,
    method=method)``; drift when p < threshold. Effect size: D.

    Exact whenever the profile is exact (reference with at most ``sketch_size`` distinct values,
    so always when scipy would use its exact distribution). Against a sketched profile D is
    within the profile's ``ks_error`` of the exact D (noted on the column) and the p-value is
    the asymptotic one, as scipy uses for samples above 10,000.
    """

    method_name = "ks"

    def __init__(
        self,
        threshold: float | None = None,
        *,
        method: str = "auto",
        columns: Sequence[Hashable] | None = None,
        drift_share: float = 0.5,
        multiple_testing: str | None = None,
        sketch_size: int = DEFAULT_SKETCH_SIZE,
        store: Store | None = None,
    ) -> None:
        self.method = method
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size, store)

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.method not in ("auto", "exact", "asymp"):
            raise DriftInputError(f"KS method must be auto, exact or asymp, not {self.method!r}.")

    def _statistic(self, ref: ColumnProfile, cur: _Current) -> Outcome:
        s = _numeric_summary(ref, "ks")
        current = cur.sorted
        n, m = s.n, len(current)
        small = max(n, m) <= KS_EXACT_MAX_N
        if s.counts is not None and (self.method == "exact" or (self.method == "auto" and small)):
            from scipy.stats import ks_2samp

            result = ks_2samp(s.sample(), current, method=self.method)
            d = float(result.statistic)
            return d, float(result.pvalue), d, ""
        note = ""
        if s.counts is not None:
            d = _stats.ks_step(s.values, s.counts, current)
        else:
            assert s.fractions is not None
            d = _stats.ks_linear(s.values, s.fractions, current)
            note = f"approximate: |D - exact D| <= {s.ks_error:.2g} (reference sketch)"
            if self.method == "exact":
                note += "; asymptotic p-value (the exact one needs the reference rows)"
        return d, _stats.ks_asymp_pvalue(d, n, m), d, note


class Chi2GOF(BaseDetector):
    """Chi-square goodness of fit of the current counts to the reference proportions, as
    ``scipy.stats.chisquare(f_obs=current, f_exp=reference * m / n)`` (Evidently's "chisquare").

    It treats the reference proportions as known, so when the reference is itself a sample of
    similar size its false-alarm rate is far above the threshold; prefer ``chi2_contingency``
    unless you need Evidently's numbers. Effect size: Cramér's V of the 2 x k table.
    """

    method_name = "chi2_gof"

    def _statistic(self, ref: ColumnProfile, cur: _Current) -> Outcome:
        _, r, c = _aligned(*ref.frequencies(), *cur.frequencies())
        effect = _stats.cramers_v(r, c)
        if len(r) < 2:
            return 0.0, 1.0, effect, "one value only"
        expected = r * (c.sum() / r.sum())
        if np.any((expected == 0) & (c > 0)):
            return math.inf, 0.0, effect, "current has values never seen in the reference"
        from scipy.stats import chisquare

        result = chisquare(c, expected)
        return float(result.statistic), float(result.pvalue), effect, ""


class Chi2Contingency(BaseDetector):
    """Chi-square test of independence on the 2 x k table (reference, current) x values, as
    ``scipy.stats.chi2_contingency(table, correction=correction)`` (alibi-detect's and NannyML's
    chi-square). ``correction`` (Yates) only matters for two values. Effect size: Cramér's V.
    """

    method_name = "chi2_contingency"

    def __init__(
        self,
        threshold: float | None = None,
        *,
        correction: bool = True,
        columns: Sequence[Hashable] | None = None,
        drift_share: float = 0.5,
        multiple_testing: str | None = None,
        sketch_size: int = DEFAULT_SKETCH_SIZE,
        store: Store | None = None,
    ) -> None:
        self.correction = correction
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size, store)

    def _statistic(self, ref: ColumnProfile, cur: _Current) -> Outcome:
        from scipy.stats import chi2_contingency

        _, r, c = _aligned(*ref.frequencies(), *cur.frequencies())
        effect = _stats.cramers_v(r, c)
        result = chi2_contingency(np.vstack((r, c)), correction=self.correction)
        return float(result.statistic), float(result.pvalue), effect, ""


class ZTest(BaseDetector):
    """Two-proportion Z-test with pooled variance (Evidently's "z"): the share of values other
    than the first (sorted) value, reference vs current; two-sided p = 2 * norm.sf(|z|).
    Both sides holding one and the same value gives p = 1. Effect size: Cohen's h.
    """

    method_name = "z"

    def _statistic(self, ref: ColumnProfile, cur: _Current) -> Outcome:
        from scipy.stats import norm

        keys, r, c = _aligned(*ref.frequencies(), *cur.frequencies())
        first = _sort_keys(keys)[0]
        i = keys.index(first)
        n1, n2 = r.sum(), c.sum()
        p1 = 1.0 - r[i] / n1
        p2 = 1.0 - c[i] / n2
        note = "" if len(keys) <= 2 else f"{len(keys)} values: {first!r} against all others"
        if len(keys) == 1:
            return 0.0, 1.0, 0.0, note
        pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
        z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
        return z, float(2.0 * norm.sf(abs(z))), _stats.cohens_h(p1, p2), note


# --- distances ------------------------------------------------------------------------------


class Wasserstein(BaseDetector):
    """Wasserstein-1 distance normed by the reference standard deviation (Evidently's
    "wasserstein"): ``scipy.stats.wasserstein_distance(reference, current) /
    max(np.std(reference, ddof=ddof), min_std)``; drift when >= threshold (default 0.1).

    Evidently uses ``ddof=0`` (numpy's default) and ``min_std=0.001``. Against a sketched
    profile the distance is within ``w1_error / std`` of the exact one (noted on the column).
    """

    method_name = "wasserstein"
    default_threshold = 0.1
    is_test = False

    def __init__(
        self,
        threshold: float | None = None,
        *,
        ddof: int = 0,
        min_std: float = 0.001,
        columns: Sequence[Hashable] | None = None,
        drift_share: float = 0.5,
        multiple_testing: str | None = None,
        sketch_size: int = DEFAULT_SKETCH_SIZE,
        store: Store | None = None,
    ) -> None:
        self.ddof = ddof
        self.min_std = min_std
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size, store)

    def _statistic(self, ref: ColumnProfile, cur: _Current) -> Outcome:
        s = _numeric_summary(ref, "wasserstein")
        current = cur.sorted
        std = s.std(self.ddof)
        norm = max(std if math.isfinite(std) else 0.0, self.min_std)
        note = ""
        if s.counts is not None:
            steps = np.arange(1, len(current) + 1, dtype=np.float64) / len(current)
            w1 = _stats.w1_step_step(s.values, np.cumsum(s.counts) / s.n, current, steps)
        else:
            assert s.fractions is not None
            w1 = _stats.w1_linear_sorted(s.values, s.fractions, current)
            note = f"approximate: within {s.w1_error / norm:.2g} of the exact value (sketch)"
        value = w1 / norm
        return value, None, value, note


class _Binned(BaseDetector):
    """Distances between the binned (or per-value) frequencies of reference and current.

    ``bins`` picks the convention for numeric columns:

    - ``"evidently"``: equal-width bins from ``np.histogram_bin_edges(reference + current,
      "sturges")`` when the reference has more than 20 distinct values, else one bin per value
      over the union of values (Evidently's ``get_binned_data``).
    - ``"doane"``: ``np.histogram_bin_edges(reference, "doane")`` and one more bin for current
      values outside them, for columns with more than 50 distinct values or more than 10% of
      them distinct; else one bin per reference value plus one for values it never had
      (NannyML's convention).
    - an int k: k bins between the reference's k-quantiles, open at both ends (the classic
      PSI deciles with k=10).

    Categorical columns always get one bin per value (union of reference and current values),
    except with ``"doane"``, which pools values unseen in the reference into one bin.
    """

    default_threshold = 0.1
    is_test = False
    bins: Bins

    def __init__(
        self,
        threshold: float | None = None,
        *,
        bins: Bins = "evidently",
        columns: Sequence[Hashable] | None = None,
        drift_share: float = 0.5,
        multiple_testing: str | None = None,
        sketch_size: int = DEFAULT_SKETCH_SIZE,
        store: Store | None = None,
    ) -> None:
        self.bins = bins
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size, store)

    def _frequencies(self, ref: ColumnProfile, cur: _Current) -> tuple[FloatArray, FloatArray]:
        bins = self.bins
        s = ref.numeric
        if s is not None and ref.kind == "numeric" and _binned_as_numeric(s, bins):
            if bins == "evidently":
                x = cur.numeric
                lo = min(s.minimum, float(x.min()))
                hi = max(s.maximum, float(x.max()))
                edges = _stats.sturges_edges(lo, hi, s.n + len(x))
                return _ref_histogram(s, edges), _stats.histogram_counts(x, edges).astype(float)
            if bins == "doane":
                edges = _stats.doane_edges(s.minimum, s.maximum, s.n, s.std(0), s.skewness())
                r = _ref_histogram(s, edges)
                c = _stats.histogram_counts(cur.numeric, edges).astype(float)
                return _with_leftover(r, c, len(cur.numeric))
            assert isinstance(bins, int)
            interior = s.quantiles(np.arange(1, bins) / bins)
            below = s.cdf_below(interior)
            r = np.diff(np.concatenate(([0.0], below, [float(s.n)])))
            c = np.bincount(
                np.searchsorted(interior, cur.numeric, side="right"), minlength=bins
            ).astype(float)
            keep = (r > 0) | (c > 0)
            return r[keep], c[keep]
        ref_keys, ref_counts = ref.frequencies()
        cur_keys, cur_counts = cur.frequencies()
        if bins == "doane":
            _, r, c = _aligned(ref_keys, ref_counts, cur_keys, cur_counts)
            k = len(ref_keys)
            return _with_leftover(r[:k], c[:k], int(c.sum()))
        _, r, c = _aligned(ref_keys, ref_counts, cur_keys, cur_counts)
        return r, c

    def _validate_params(self) -> None:
        super()._validate_params()
        bins = self.bins
        ok = bins in ("evidently", "doane") or (
            isinstance(bins, int) and not isinstance(bins, bool) and bins >= 2
        )
        if not ok:
            raise DriftInputError(
                f"bins must be 'evidently', 'doane' or an int >= 2, not {bins!r}."
            )


def _binned_as_numeric(s: Any, bins: Bins) -> bool:
    distinct = s.n_distinct
    if bins == "evidently":
        return distinct is None or distinct > 20
    if bins == "doane":
        return distinct is None or distinct > 50 or distinct / max(s.n, 1) > 0.1
    return True


def _ref_histogram(s: Any, edges: FloatArray) -> FloatArray:
    below = s.cdf_below(edges)
    below[-1] = s.cdf_at_or_below(edges[-1:])[0]  # numpy's last bin is closed
    return np.asarray(np.diff(below), dtype=np.float64)


def _with_leftover(r: FloatArray, c: FloatArray, m: int) -> tuple[FloatArray, FloatArray]:
    leftover = m - c.sum()
    if leftover > 0:
        return np.append(r, 0.0), np.append(c, leftover)
    return r, c


class JensenShannon(_Binned):
    """Jensen-Shannon distance ``scipy.spatial.distance.jensenshannon(p, q, base)``, i.e. the
    square root of the JS divergence; ``squared=True`` gives the divergence itself. Drift when
    >= threshold (default 0.1). Conventions: Evidently ``base=None`` (natural log),
    ``squared=False``, ``bins="evidently"``; NannyML ``base=2``, ``bins="doane"``.
    """

    method_name = "jensenshannon"

    def __init__(
        self,
        threshold: float | None = None,
        *,
        base: float | None = None,
        squared: bool = False,
        bins: Bins = "evidently",
        columns: Sequence[Hashable] | None = None,
        drift_share: float = 0.5,
        multiple_testing: str | None = None,
        sketch_size: int = DEFAULT_SKETCH_SIZE,
        store: Store | None = None,
    ) -> None:
        self.base = base
        self.squared = squared
        self.bins = bins
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size, store)

    def _statistic(self, ref: ColumnProfile, cur: _Current) -> Outcome:
        r, c = self._frequencies(ref, cur)
        value = _stats.jensenshannon(r / r.sum(), c / c.sum(), self.base, self.squared)
        return value, None, value, _sketch_note(ref)


class PSI(_Binned):
    """Population stability index sum((p - q) * ln(p / q)); drift when >= threshold (default
    0.1, Evidently's; 0.25 is the other common cut-off). ``epsilon`` replaces empty bins:
    ``"evidently"`` uses min(non-zero share) / 1e6 when that is at most 1e-4, else 1e-4, per
    side (Evidently); a float replaces zeros with that value.
    """

    method_name = "psi"

    def __init__(
        self,
        threshold: float | None = None,
        *,
        bins: Bins = "evidently",
        epsilon: str | float = "evidently",
        columns: Sequence[Hashable] | None = None,
        drift_share: float = 0.5,
        multiple_testing: str | None = None,
        sketch_size: int = DEFAULT_SKETCH_SIZE,
        store: Store | None = None,
    ) -> None:
        self.bins = bins
        self.epsilon = epsilon
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size, store)

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.epsilon != "evidently" and not (
            isinstance(self.epsilon, float | int) and self.epsilon > 0
        ):
            raise DriftInputError(
                f"epsilon must be 'evidently' or a positive number, not {self.epsilon!r}."
            )

    def _statistic(self, ref: ColumnProfile, cur: _Current) -> Outcome:
        r, c = self._frequencies(ref, cur)
        p, q = r / r.sum(), c / c.sum()
        if self.epsilon == "evidently":
            p, q = _stats.evidently_fill_zeros(p), _stats.evidently_fill_zeros(q)
        else:
            eps = float(self.epsilon)
            p, q = np.where(p == 0, eps, p), np.where(q == 0, eps, q)
        value = _stats.psi(p, q)
        return value, None, value, _sketch_note(ref)


class Hellinger(_Binned):
    """Hellinger distance sqrt(sum((sqrt p - sqrt q)^2)) / sqrt(2), in [0, 1] (NannyML's
    formula; equal to Evidently's sqrt(1 - sum(sqrt(p q))) for categorical columns). Drift when
    >= threshold (default 0.1). For numeric columns Evidently bins differently (Sturges bins over
    the distinct values); NannyML's numbers come with ``bins="doane"``.
    """

    method_name = "hellinger"

    def _statistic(self, ref: ColumnProfile, cur: _Current) -> Outcome:
        r, c = self._frequencies(ref, cur)
        value = _stats.hellinger(r / r.sum(), c / c.sum())
        return value, None, value, _sketch_note(ref)


class LInfinity(_Binned):
    """L-infinity distance max |p - q| between value (or bin) frequencies (NannyML's
    "l_infinity", TFDV's categorical drift comparator). Drift when >= threshold (default 0.1).
    """

    method_name = "l_infinity"

    def _statistic(self, ref: ColumnProfile, cur: _Current) -> Outcome:
        r, c = self._frequencies(ref, cur)
        value = float(np.max(np.abs(r / r.sum() - c / c.sum())))
        return value, None, value, _sketch_note(ref)


def _sketch_note(ref: ColumnProfile) -> str:
    if ref.numeric is not None and ref.numeric.counts is None and ref.kind == "numeric":
        return f"approximate: reference bin shares within {ref.numeric.ks_error:.2g} (sketch)"
    return ""


def _numeric_summary(ref: ColumnProfile, method: str) -> Any:
    if ref.numeric is None:
        raise DriftInputError(
            f"Method {method!r} needs a numeric column, but {ref.name!r} is categorical "
            f"(dtype {ref.dtype}); use chi2_gof, chi2_contingency, z, jensenshannon, psi, "
            "hellinger or l_infinity for it.",
            [str(ref.name)],
        )
    return ref.numeric


METHODS: dict[str, type[BaseDetector]] = {
    "ks": KS,
    "chi2_gof": Chi2GOF,
    "chi2_contingency": Chi2Contingency,
    "z": ZTest,
    "wasserstein": Wasserstein,
    "jensenshannon": JensenShannon,
    "psi": PSI,
    "hellinger": Hellinger,
    "l_infinity": LInfinity,
}
MethodSpec = str | BaseDetector


class DriftDetector(BaseDetector):
    """Per-column method choice: Evidently's rule (:func:`select_method`) by default, or
    ``method`` for every column (a name or a configured detector such as
    ``JensenShannon(base=2)``), or a mapping column -> method for some columns.

    ``threshold`` (a number, or a mapping column -> number) replaces the method's default.
    ``kinds`` forces a column to be treated as numeric or categorical.
    """

    method_name = "auto"

    def __init__(
        self,
        method: MethodSpec | Mapping[Hashable, MethodSpec] | None = None,
        threshold: float | Mapping[Hashable, float] | None = None,
        *,
        columns: Sequence[Hashable] | None = None,
        drift_share: float = 0.5,
        multiple_testing: str | None = None,
        kinds: Mapping[Hashable, Kind] | None = None,
        sketch_size: int = DEFAULT_SKETCH_SIZE,
        store: Store | None = None,
    ) -> None:
        self.method = method
        self.kinds = kinds
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size, store)

    def _kinds(self) -> Mapping[Hashable, Kind] | None:
        return self.kinds

    def _validate_params(self) -> None:
        super()._validate_params()
        method: Any = self.method
        specs = list(method.values()) if isinstance(method, Mapping) else [method]
        for spec in specs:
            if spec is None or isinstance(spec, BaseDetector):
                continue
            if spec not in METHODS:
                raise DriftInputError(
                    f"Unknown drift method {spec!r}; choose from {', '.join(METHODS)}."
                )
        validate_kinds(self.kinds)

    def _detector_for(self, ref: ColumnProfile, cur: _Current) -> BaseDetector:
        spec: Any = self.method
        if isinstance(spec, Mapping):
            spec = spec.get(ref.name)
        if isinstance(spec, BaseDetector):
            return spec
        if spec is None:
            spec = select_method(ref.kind, ref.n, cur.n_unique_with_reference())
        return _default_detector(spec)

    def _column_threshold(self, name: Hashable, detector: BaseDetector) -> float:
        threshold: Any = self.threshold
        if isinstance(threshold, Mapping):
            threshold = threshold.get(name)
        if threshold is None:
            return detector._column_threshold(name, detector)
        return float(threshold)


_DEFAULTS: dict[str, BaseDetector] = {}


def _default_detector(name: str) -> BaseDetector:
    detector = _DEFAULTS.get(name)
    if detector is None:
        detector = _DEFAULTS[name] = METHODS[name]()
    return detector


def _curve(ref: ColumnProfile, cur: _Current) -> dict[str, Any]:
    """Small summaries for plotting: 101 quantiles of numeric columns, top 20 frequencies."""
    if ref.kind == "numeric" and ref.numeric is not None:
        probs = CURVE_PROBS
        current = (
            _sorted_quantiles(cur._sorted, probs)
            if cur._sorted is not None
            else np.quantile(cur.numeric, probs)
        )
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
