"""The statistical tests: drift when the p-value is below the threshold (default 0.05).

What each computes and which tool's numbers it reproduces: the method table in
:mod:`nbmlops.drift` (one table, so it cannot disagree with itself).

Each p-value comes with an effect size that does not grow with the sample size: KS D,
Cramér's V (chi-square), Cohen's h (z-test). scipy is imported where a test runs, so importing
the package does not load it.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from nbmlops.drift import _stats
from nbmlops.drift._base import BaseDetector, Outcome, _aligned, _Current, _numeric_summary
from nbmlops.drift._profile import DEFAULT_SKETCH_SIZE, ColumnProfile, NumericSummary
from nbmlops.errors import DriftInputError

# scipy.stats.ks_2samp uses the exact distribution up to this sample size (method='auto').
KS_EXACT_MAX_N = 10_000


def _sort_keys(keys: list[Any]) -> list[Any]:
    try:
        return sorted(keys)
    except TypeError:
        return sorted(keys, key=lambda k: (type(k).__name__, str(k)))


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
    ) -> None:
        self.method = method
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size)

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.method not in ("auto", "exact", "asymp"):
            raise DriftInputError(f"KS method must be auto, exact or asymp, not {self.method!r}.")

    def _statistic(self, ref: ColumnProfile, cur: _Current) -> Outcome:
        s = _numeric_summary(ref, "ks")
        if cur.summary is not None:
            return self._against_summary(s, cur.summary)
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

    def _against_summary(self, s: NumericSummary, c: NumericSummary) -> Outcome:
        """A profile of the current data: scipy on both samples when both are exact and the
        exact distribution is asked for (then the samples are small, or wanted); else D from
        the two CDFs (see ``_stats.ks_limits``) and the asymptotic p-value."""
        n, m = s.n, c.n
        exact = s.counts is not None and c.counts is not None
        small = max(n, m) <= KS_EXACT_MAX_N
        if exact and (self.method == "exact" or (self.method == "auto" and small)):
            from scipy.stats import ks_2samp

            result = ks_2samp(s.sample(), c.sample(), method=self.method)
            d = float(result.statistic)
            return d, float(result.pvalue), d, ""
        # Between breakpoints of the step CDF(s) the other one is monotone, so the supremum is
        # reached at the exact side's values; two sketches: at the knots of either.
        at = s.values if s.counts is not None else c.values if c.counts is not None else None
        grid = np.union1d(s.values, c.values) if at is None else at
        d = _stats.ks_limits(*s.limits(grid), s.n, *c.limits(grid), c.n)
        note = ""
        if not exact:
            note = f"approximate: |D - exact D| <= {s.ks_error + c.ks_error:.2g} (sketch)"
            if self.method == "exact":
                note += "; asymptotic p-value (the exact one needs the rows)"
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
    ) -> None:
        self.correction = correction
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size)

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
