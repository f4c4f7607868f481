"""Golden values: each detector's numbers on fixed vectors equal scipy's reference definitions.

The literals were computed once with scipy 1.17 (the call is next to each one); the same test
also recomputes them with the installed scipy, so a user can reproduce Evidently's, alibi-detect's,
NannyML's or TFDV's numbers by picking the matching convention.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

import nbmlops.drift as drift

R = np.round((np.arange(25) * 0.618) % 5.3, 3)
C = np.round((np.arange(30) * 0.414) % 7.7 + 0.4, 3)
RC = list("aaaabbbccd") * 3
CC = list("aabbbbcccce") * 3
CG = list("aaabbbbccd") * 4


def _one(detector: drift.BaseDetector, ref: object, cur: object) -> drift.ColumnDrift:
    report = detector.fit(pd.DataFrame({"x": ref})).check(pd.DataFrame({"x": cur}))
    return report["x"]


def _sturges(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), "sturges")
    return np.histogram(ref, edges)[0] / len(ref), np.histogram(cur, edges)[0] / len(cur)


def _evidently_fill(p: np.ndarray) -> np.ndarray:
    p = p.copy()
    smallest = p[p != 0].min()
    p[p == 0] = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    return p


def _psi(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.sum((p - q) * np.log(p / q)))


P, Q = _sturges(R, C)
PF, QF = _evidently_fill(P), _evidently_fill(Q)

NUMERIC_CASES = [
    # (detector, golden literal, the scipy computation it came from)
    (drift.KS(), 0.3848251823313092, lambda: stats.ks_2samp(R, C).pvalue),
    (
        drift.KS(method="asymp"),
        0.37257846619431423,
        lambda: stats.ks_2samp(R, C, "two-sided", "asymp").pvalue,
    ),
    (drift.Wasserstein(), 0.6880003627717041, lambda: stats.wasserstein_distance(R, C) / np.std(R)),
    (
        drift.Wasserstein(ddof=1),
        0.6740999326561579,
        lambda: stats.wasserstein_distance(R, C) / np.std(R, ddof=1),
    ),
    (drift.JensenShannon(), 0.2789969396308032, lambda: jensenshannon(P, Q)),
    (drift.JensenShannon(base=2), 0.33510947617339804, lambda: jensenshannon(P, Q, base=2)),
    (
        drift.JensenShannon(base=2, squared=True),
        0.11229836102120923,
        lambda: jensenshannon(P, Q, base=2) ** 2,
    ),
    (drift.PSI(), 1.4487160613179497, lambda: _psi(PF, QF)),
    (
        drift.Hellinger(),
        0.3294637591156238,
        lambda: np.sqrt(np.sum((np.sqrt(P) - np.sqrt(Q)) ** 2) / 2),
    ),
    (drift.LInfinity(), 0.1, lambda: np.max(np.abs(P - Q))),
]


def _case_id(value: object) -> str:
    """Stable test ids (a lambda's repr holds its address, which differs between workers)."""
    if callable(value) and getattr(value, "__name__", "") == "<lambda>":
        return "scipy"
    return repr(value)


@pytest.mark.parametrize(("detector", "golden", "scipy_value"), NUMERIC_CASES, ids=_case_id)
def test_numeric_golden_values(detector, golden, scipy_value):
    result = _one(detector, R, C)
    value = result.p_value if detector.is_test else result.statistic
    assert value == pytest.approx(golden, rel=1e-12)
    assert value == pytest.approx(float(scipy_value()), rel=1e-12)


def test_ks_statistic_and_effect_size_are_d():
    result = _one(drift.KS(), R, C)
    assert result.statistic == pytest.approx(0.23333333333333334, rel=1e-12)
    assert result.effect_size == result.statistic


r4 = np.array([12.0, 9.0, 6.0, 3.0])
cg = np.array([CG.count(k) for k in "abcd"], dtype=float)
r5 = np.array([12.0, 9.0, 6.0, 3.0, 0.0])
c5 = np.array([6.0, 12.0, 12.0, 0.0, 3.0])
p5, q5 = r5 / r5.sum(), c5 / c5.sum()

CATEGORICAL_CASES = [
    (
        drift.Chi2GOF(),
        CG,
        0.5061652190939085,
        lambda: stats.chisquare(cg, r4 * cg.sum() / r4.sum()).pvalue,
    ),
    (
        drift.Chi2Contingency(),
        CC,
        0.03553082862339605,
        lambda: stats.chi2_contingency(np.vstack([r5, c5])).pvalue,
    ),
    (drift.JensenShannon(), CC, 0.31733994180614283, lambda: jensenshannon(p5, q5)),
    (drift.PSI(), CC, 1.5908134797027065, lambda: _psi(_evidently_fill(p5), _evidently_fill(q5))),
    (drift.Hellinger(), CC, 0.36104152183855276, lambda: np.sqrt(1 - np.sum(np.sqrt(p5 * q5)))),
    (drift.LInfinity(), CC, 0.2181818181818182, lambda: np.max(np.abs(p5 - q5))),
]


@pytest.mark.parametrize(
    ("detector", "current", "golden", "scipy_value"), CATEGORICAL_CASES, ids=_case_id
)
def test_categorical_golden_values(detector, current, golden, scipy_value):
    result = _one(detector, RC, current)
    value = result.p_value if detector.is_test else result.statistic
    assert value == pytest.approx(golden, rel=1e-12)
    assert value == pytest.approx(float(scipy_value()), rel=1e-12)


def test_z_test_golden_value_and_cohens_h():
    result = _one(drift.ZTest(), [0] * 30 + [1] * 10, [0] * 20 + [1] * 25)
    assert result.statistic == pytest.approx(-2.857043649071259, rel=1e-12)
    assert result.p_value == pytest.approx(0.00427607030360156, rel=1e-12)
    assert result.effect_size == pytest.approx(0.6349397899392626, rel=1e-12)


@pytest.mark.parametrize("correction", [True, False])
def test_chi2_contingency_yates_correction_is_explicit(correction):
    ref, cur = ["a"] * 30 + ["b"] * 10, ["a"] * 20 + ["b"] * 25
    result = _one(drift.Chi2Contingency(correction=correction), ref, cur)
    expected = stats.chi2_contingency([[30, 10], [20, 25]], correction=correction)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)


def test_the_two_chi_square_forms_disagree_as_documented():
    gof = _one(drift.Chi2GOF(), RC, CG)
    contingency = _one(drift.Chi2Contingency(), RC, CG)
    assert gof.p_value == pytest.approx(stats.chisquare(cg, r4 * cg.sum() / r4.sum()).pvalue)
    assert contingency.p_value == pytest.approx(stats.chi2_contingency([r4, cg]).pvalue)
    assert gof.p_value < contingency.p_value  # GOF ignores the reference's sampling noise
    assert gof.effect_size == pytest.approx(contingency.effect_size)  # both Cramér's V


def test_nannyml_convention_doane_bins_base_2_with_a_leftover_bin():
    rng = np.random.default_rng(7)
    ref, cur = rng.gamma(2.0, size=500), rng.gamma(2.3, size=400) + 0.5
    edges = np.histogram_bin_edges(ref, bins="doane")
    p = np.histogram(ref, edges)[0] / len(ref)
    q = np.histogram(cur, edges)[0] / len(cur)
    p, q = np.append(p, 0.0), np.append(q, 1 - q.sum())  # NannyML's bin for unseen values
    result = _one(drift.JensenShannon(base=2, bins="doane"), ref, cur)
    assert result.statistic == pytest.approx(jensenshannon(p, q, base=2), rel=1e-9)
    hellinger = _one(drift.Hellinger(bins="doane"), ref, cur)
    expected = np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)) / np.sqrt(2)
    assert hellinger.statistic == pytest.approx(expected, rel=1e-9)


def test_psi_quantile_bins_and_fixed_epsilon():
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=1000), rng.normal(0.3, size=800)
    inner = np.quantile(ref, np.arange(1, 10) / 10)
    p = np.bincount(np.searchsorted(inner, ref, side="right"), minlength=10) / len(ref)
    q = np.bincount(np.searchsorted(inner, cur, side="right"), minlength=10) / len(cur)
    p, q = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
    result = _one(drift.PSI(bins=10, epsilon=1e-4), ref, cur)
    assert result.statistic == pytest.approx(np.sum((p - q) * np.log(p / q)), rel=1e-12)


@pytest.mark.parametrize(("n", "m"), [(10, 1000), (1000, 10), (3000, 12000), (20000, 30000)])
def test_ks_matches_scipy_at_every_size(n, m):
    rng = np.random.default_rng(n + m)
    ref, cur = np.round(rng.normal(size=n), 3), rng.normal(0.05, size=m)
    result = _one(drift.KS(), ref, cur)
    expected = stats.ks_2samp(ref, cur)
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize(("n", "m"), [(50, 40), (5000, 2507), (50_000, 25_007), (50_000, 500)])
def test_wasserstein_matches_scipy_or_stays_within_the_sketch_bound(n, m):
    rng = np.random.default_rng(n + m)
    ref, cur = rng.lognormal(size=n), rng.lognormal(0.1, size=m)
    result = _one(drift.Wasserstein(), ref, cur)
    expected = stats.wasserstein_distance(ref, cur) / np.std(ref)
    profile = drift.build_profile(pd.DataFrame({"x": ref}))
    bound = profile.columns["x"].numeric.w1_error / np.std(ref)
    assert abs(result.statistic - expected) <= bound + 1e-12
    assert (bound == 0) == (n <= drift.DriftDetector().sketch_size)


def test_ks_against_a_sketch_stays_within_the_recorded_error():
    rng = np.random.default_rng(11)
    ref, cur = rng.normal(size=200_000), rng.normal(0.01, size=50_000)
    result = _one(drift.KS(), ref, cur)
    error = drift.build_profile(pd.DataFrame({"x": ref})).columns["x"].numeric.ks_error
    assert abs(result.statistic - stats.ks_2samp(ref, cur).statistic) <= error
    assert 0 < error < 1e-4
    assert "approximate" in result.note
