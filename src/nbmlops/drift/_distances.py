"""The distances: drift when the distance is at or above the threshold (default 0.1).

What each computes and which tool's numbers it reproduces: the method table in
:mod:`nbmlops.drift` (one table, so it cannot disagree with itself).

A distance has no p-value; its effect size is the distance itself. Wasserstein works on the
numeric summary; the other four on binned (or per-value) frequencies, :class:`_Binned`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from nbmlops.drift import _stats
from nbmlops.drift._base import (
    BaseDetector,
    Outcome,
    _aligned,
    _Current,
    _numeric_summary,
    histogram_of,
)
from nbmlops.drift._profile import DEFAULT_SKETCH_SIZE, ColumnProfile, FloatArray
from nbmlops.errors import DriftInputError

# How numeric columns are binned: "evidently", "doane" or a number of quantile bins.
Bins = str | int


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
    ) -> None:
        self.ddof = ddof
        self.min_std = min_std
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size)

    def _statistic(self, ref: ColumnProfile, cur: _Current) -> Outcome:
        s = _numeric_summary(ref, "wasserstein")
        std = s.std(self.ddof)
        norm = max(std if math.isfinite(std) else 0.0, self.min_std)
        note = ""
        c = cur.summary
        if c is not None:  # a profile of the current data: the integral of |F - G| over x
            grid = np.union1d(s.values, c.values)
            w1 = _stats.w1_limits(grid, *s.limits(grid), s.n, *c.limits(grid), c.n)
            if s.counts is None or c.counts is None:
                error = (s.w1_error + c.w1_error) / norm
                note = f"approximate: within {error:.2g} of the exact value (sketch)"
            value = w1 / norm
            return value, None, value, note
        current = cur.sorted
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
    ) -> None:
        self.bins = bins
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size)

    def _frequencies(self, ref: ColumnProfile, cur: _Current) -> tuple[FloatArray, FloatArray]:
        bins = self.bins
        s = ref.numeric
        if s is not None and ref.kind == "numeric" and _binned_as_numeric(s, bins):
            if bins == "evidently":
                lo = min(s.minimum, cur.minimum())
                hi = max(s.maximum, cur.maximum())
                edges = _stats.sturges_edges(lo, hi, s.n + cur.n)
                return histogram_of(s, edges), cur.histogram(edges)
            if bins == "doane":
                edges = _stats.doane_edges(s.minimum, s.maximum, s.n, s.std(0), s.skewness())
                return _with_leftover(histogram_of(s, edges), cur.histogram(edges), cur.n)
            assert isinstance(bins, int)
            interior = s.quantiles(np.arange(1, bins) / bins)
            below = s.cdf_below(interior)
            r = np.diff(np.concatenate(([0.0], below, [float(s.n)])))
            c = cur.bin_counts(interior)
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
    ) -> None:
        self.base = base
        self.squared = squared
        self.bins = bins
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size)

    def _statistic(self, ref: ColumnProfile, cur: _Current) -> Outcome:
        r, c = self._frequencies(ref, cur)
        value = _stats.jensenshannon(r / r.sum(), c / c.sum(), self.base, self.squared)
        return value, None, value, _sketch_note(ref, cur)


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
    ) -> None:
        self.bins = bins
        self.epsilon = epsilon
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size)

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
        return value, None, value, _sketch_note(ref, cur)


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
        return value, None, value, _sketch_note(ref, cur)


class LInfinity(_Binned):
    """L-infinity distance max |p - q| between value (or bin) frequencies (NannyML's
    "l_infinity", TFDV's categorical drift comparator). Drift when >= threshold (default 0.1).
    """

    method_name = "l_infinity"

    def _statistic(self, ref: ColumnProfile, cur: _Current) -> Outcome:
        r, c = self._frequencies(ref, cur)
        value = float(np.max(np.abs(r / r.sum() - c / c.sum())))
        return value, None, value, _sketch_note(ref, cur)


def _sketch_note(ref: ColumnProfile, cur: _Current) -> str:
    if ref.numeric is None or ref.kind != "numeric":
        return ""
    c = cur.summary
    if c is not None and c.counts is None:  # a sketched current: its CDF at the edges too
        error = c.ks_error + (ref.numeric.ks_error if ref.numeric.counts is None else 0.0)
        return f"approximate: CDFs at the bin edges within {error:.2g} (sketch)"
    if ref.numeric.counts is None:
        return f"approximate: reference bin shares within {ref.numeric.ks_error:.2g} (sketch)"
    return ""
