"""Checks of a profile against a profile: the current side summarised (pooled windows of a
stream) gives the rows' statistics exactly when both profiles are exact, and stays within the
recorded error bounds of a sketch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import nbmlops.drift as drift
from nbmlops.errors import DriftInputError


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": np.round(rng.normal(shift, 1.0, n), 2),  # a few hundred distinct values
            "i": rng.integers(0, 8 + int(shift > 0), n),
            "k": rng.choice(list("abcd")[: 3 + int(shift > 0)], n),
        }
    )


def _detectors() -> list[drift.BaseDetector]:
    out: list[drift.BaseDetector] = [drift.KS(), drift.KS(method="asymp"), drift.Wasserstein()]
    out += [drift.Chi2GOF(), drift.Chi2Contingency(), drift.ZTest()]
    for cls in (drift.JensenShannon, drift.PSI, drift.Hellinger, drift.LInfinity):
        out += [cls(), cls(bins="doane"), cls(bins=10)]
    return out


@pytest.mark.parametrize("current_rows", [400, 30_000])
@pytest.mark.parametrize("detector", _detectors(), ids=repr)
def test_exact_profiles_give_the_rows_statistics(detector, current_rows):
    reference = drift.build_profile(_frame(3000, 1), fingerprint=False)
    rows = _frame(current_rows, 2, shift=0.3)
    columns = ["x"] if detector.method_name in ("ks", "wasserstein") else ["x", "i", "k"]
    detector.columns = columns
    on_rows = detector.fit(reference).check(rows)
    on_profile = detector.fit(reference).check(drift.build_profile(rows, fingerprint=False))
    for a, b in zip(on_rows.columns, on_profile.columns, strict=True):
        if a.method == "wasserstein":  # summed over distinct values instead of rows
            assert b.statistic == pytest.approx(a.statistic, rel=1e-12, abs=0)
        else:
            assert (b.statistic, b.p_value, b.note) == (a.statistic, a.p_value, a.note), a.column
        assert (b.n_current, b.drifted) == (a.n_current, a.drifted)


@pytest.mark.parametrize("reference_size", [200, 100_000])  # a sketched or an exact reference
def test_a_sketched_current_stays_within_its_recorded_bounds(reference_size):
    rng = np.random.default_rng(5)
    reference = drift.build_profile(
        pd.DataFrame({"x": rng.normal(0, 1, 20_000)}), sketch_size=reference_size
    )
    rows = pd.DataFrame({"x": rng.gamma(2.0, 1.0, 50_000)})
    current = drift.build_profile(rows, sketch_size=300, fingerprint=False)
    c, s = current.columns["x"].numeric, reference.columns["x"].numeric
    assert c is not None and s is not None and not c.exact
    for detector, bound in [
        (drift.KS(), c.ks_error),
        (drift.Wasserstein(), c.w1_error / s.std()),
        (drift.LInfinity(), 2 * c.ks_error),  # a bin share is a difference of two CDF values
    ]:
        on_rows = detector.fit(reference).check(rows)["x"]
        on_profile = detector.fit(reference).check(current)["x"]
        assert abs(on_profile.statistic - on_rows.statistic) <= bound
        assert on_profile.note.startswith("approximate")


def test_pooled_exact_windows_are_the_profile_of_all_their_rows():
    windows = [_frame(700, seed) for seed in range(7)]
    pooled = drift.pool_profiles([drift.build_profile(w, fingerprint=False) for w in windows])
    whole = drift.build_profile(pd.concat(windows, ignore_index=True), fingerprint=False)
    assert pooled.n_rows == whole.n_rows == 4900
    p, w = pooled.columns["x"].numeric, whole.columns["x"].numeric
    assert p is not None and w is not None and p.exact
    np.testing.assert_array_equal(p.values, w.values)
    np.testing.assert_array_equal(p.counts, w.counts)
    assert p.std() == pytest.approx(w.std(), rel=1e-12)
    assert pooled.columns["k"].categories == whole.columns["k"].categories


def test_pooling_many_sketched_windows_keeps_one_windows_error():
    rng = np.random.default_rng(8)
    parts = [pd.DataFrame({"x": rng.normal(w / 64, 1, 3000)}) for w in range(64)]
    parts[3] = pd.DataFrame({"x": np.round(rng.normal(0, 1, 3000), 1)})  # exact, with atoms
    windows = [drift.build_profile(p, sketch_size=500, fingerprint=False) for p in parts]
    pooled = drift.pool_profiles(windows).columns["x"].numeric
    merged = drift.merge_profiles(*windows).columns["x"].numeric
    worst = max(w.columns["x"].numeric.ks_error for w in windows)  # type: ignore[union-attr]
    assert pooled is not None and merged is not None
    assert pooled.ks_error <= worst + 1e-4 < merged.ks_error
    x = np.sort(pd.concat(parts)["x"].to_numpy())
    grid = np.unique(x)
    below, at = pooled.limits(grid)
    ecdf_at = np.searchsorted(x, grid, side="right")
    ecdf_below = np.searchsorted(x, grid, side="left")
    gap = max(np.max(np.abs(at - ecdf_at)), np.max(np.abs(below - ecdf_below))) / len(x)
    assert gap <= pooled.ks_error


def test_a_sketched_current_has_no_per_value_frequencies():
    reference = drift.build_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0] * 100}))
    wide = pd.DataFrame({"x": np.arange(5000, dtype=float)})
    current = drift.build_profile(wide, sketch_size=100, fingerprint=False)
    with pytest.raises(DriftInputError) as info:
        drift.JensenShannon().fit(reference).check(current)
    assert "Column 'x' has more than the profile's sketch size of distinct" in str(info.value)
    assert info.value.columns == ["x"]


def test_current_profile_must_have_the_columns_and_kinds():
    reference = drift.build_profile(_frame(500, 1))
    with pytest.raises(DriftInputError, match=r"Column\(s\) 'i' not found in the current profile"):
        drift.DriftDetector().fit(reference).check(drift.build_profile(_frame(50, 2)[["x", "k"]]))
    text = drift.build_profile(pd.DataFrame({"x": list("ab") * 50}))
    with pytest.raises(DriftInputError, match=r"'x' is numeric in the reference but the current"):
        drift.check_drift(reference, text, ["x"])


def test_kind_is_public():
    assert "Kind" in drift.__all__ and "pool_profiles" in drift.__all__
    assert drift.Kind.__args__ == ("numeric", "categorical")  # type: ignore[attr-defined]
