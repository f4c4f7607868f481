"""Sample-size awareness: on same-distribution data the tests' false-alarm rate stays at or
below the nominal 5% for n from 10 to 1,000,000, and effect sizes do not grow with n."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

import nbmlops.drift as drift

pytestmark = pytest.mark.slow

ALPHA = 0.05
# Repetitions per sample size: many where a check is cheap, few where it costs a sort of 1e6.
REPEATS = {10: 300, 100: 300, 1_000: 150, 10_000: 60, 100_000: 20, 1_000_000: 6}


def _allowed(repeats: int) -> int:
    """Most false alarms still consistent with a true rate of ALPHA (one-sided, 0.1% level)."""
    return int(binom.ppf(0.999, repeats, ALPHA))


def _samples(method: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if method == "ks":
        return rng.normal(size=n)
    if method == "z":
        return (rng.random(n) < 0.3).astype(np.int64)
    return rng.choice(np.array([0, 1, 2, 3]), n, p=[0.4, 0.3, 0.2, 0.1])


@pytest.mark.parametrize("method", ["ks", "chi2_contingency", "z"])
@pytest.mark.parametrize("n", list(REPEATS))
def test_false_alarm_rate_is_at_most_nominal(method, n):
    rng = np.random.default_rng(n + len(method))
    detector = drift.METHODS[method](ALPHA)
    alarms = 0
    for _ in range(REPEATS[n]):
        reference = pd.DataFrame({"x": _samples(method, n, rng)})
        current = pd.DataFrame({"x": _samples(method, n, rng)})
        alarms += detector.fit(reference).check(current)["x"].drifted
    assert alarms <= _allowed(REPEATS[n]), f"{alarms}/{REPEATS[n]} false alarms"


def test_chi2_gof_is_anti_conservative_when_the_reference_is_a_sample():
    # Evidently's chi-square treats the reference proportions as exact: with a reference as
    # small as the current sample its false-alarm rate is several times the nominal level.
    rng = np.random.default_rng(1)
    detector = drift.Chi2GOF(ALPHA)
    alarms = sum(
        detector.fit(pd.DataFrame({"x": _samples("chi2", 500, rng)}))
        .check(pd.DataFrame({"x": _samples("chi2", 500, rng)}))["x"]
        .drifted
        for _ in range(200)
    )
    assert alarms > 2 * _allowed(200)


@pytest.mark.parametrize("method", ["ks", "chi2_contingency", "z"])
def test_effect_size_stays_put_while_the_p_value_shrinks_with_n(method):
    rng = np.random.default_rng(2)
    effects, pvalues = [], []
    for n in (5_000, 200_000):
        ref = pd.DataFrame({"x": _samples(method, n, rng)})
        if method == "ks":
            cur = pd.DataFrame({"x": rng.normal(0.3, 1.0, n)})
        else:
            cur = pd.DataFrame({"x": np.where(rng.random(n) < 0.15, 1, _samples(method, n, rng))})
        result = drift.METHODS[method]().fit(ref).check(cur)["x"]
        effects.append(result.effect_size)
        pvalues.append(result.p_value)
    assert effects[1] == pytest.approx(effects[0], rel=0.3)
    assert pvalues[1] < pvalues[0] * 1e-6 or pvalues[1] == 0.0
