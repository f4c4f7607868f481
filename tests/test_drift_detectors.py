"""The scikit-learn contract over every detector, method selection, edge cases, bad input and
the DriftReport."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pandas as pd
import pytest

import nbmlops.drift as drift
from nbmlops.errors import DriftInputError, NotFittedError

NUMERIC_ONLY = {"ks", "wasserstein"}
PER_VALUE = {"chi2_gof", "chi2_contingency", "z"}  # one bin per value: for categorical columns
ALL = [
    *[cls() for cls in drift.METHODS.values()],
    drift.DriftDetector(),
    drift.DriftDetector("jensenshannon", multiple_testing="bh"),
]


def _frames(n: int = 300, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, n),
            "k": rng.choice(["a", "b", "c"], n, p=[0.5 - shift / 2, 0.3, 0.2 + shift / 2]),
        }
    )


def _columns(detector: drift.BaseDetector) -> list[str]:
    if detector.method_name in NUMERIC_ONLY:
        return ["x"]
    return ["k"] if detector.method_name in PER_VALUE else ["x", "k"]


# --- the contract, for every detector ----------------------------------------------------------


@pytest.mark.parametrize("detector", ALL, ids=repr)
def test_init_only_stores_parameters(detector):
    params = inspect.signature(type(detector).__init__).parameters
    names = [p for p in params if p != "self"]
    assert sorted(detector.get_params()) == sorted(names)
    assert not any(k.endswith("_") for k in vars(detector))


@pytest.mark.parametrize("detector", ALL, ids=repr)
def test_check_before_fit_raises_not_fitted(detector):
    fresh = type(detector)(**detector.get_params())
    with pytest.raises(NotFittedError, match="not fitted yet; call fit\\(reference\\)"):
        fresh.check(_frames())


@pytest.mark.parametrize("detector", ALL, ids=repr)
def test_fit_returns_self_and_learned_state_ends_in_underscore(detector):
    d = type(detector)(**{**detector.get_params(), "columns": _columns(detector)})
    assert d.fit(_frames()) is d
    assert d.profile_.n_rows == 300 and d.columns_ == _columns(d)


@pytest.mark.parametrize("detector", ALL, ids=repr)
def test_same_data_no_drift_and_shifted_data_drifts(detector):
    d = type(detector)(**{**detector.get_params(), "columns": _columns(detector)})
    d.fit(_frames(2000, seed=1))
    assert not d.check(_frames(2000, seed=2)).dataset_drift
    assert d.check(_frames(2000, shift=0.4, seed=3)).dataset_drift


@pytest.mark.parametrize("detector", ALL, ids=repr)
def test_every_result_has_an_effect_size_and_a_consistent_verdict(detector):
    d = type(detector)(**{**detector.get_params(), "columns": _columns(detector)})
    report = d.fit(_frames(500, seed=4)).check(_frames(400, shift=0.2, seed=5))
    for c in report.columns:
        assert math.isfinite(c.effect_size) and c.effect_size >= 0
        if c.p_value is None:
            assert c.drifted == (c.statistic >= c.threshold)
        else:
            assert 0 <= c.p_value <= 1 and c.drifted == (c.p_value < c.threshold)


@pytest.mark.parametrize("detector", ALL, ids=repr)
def test_fit_is_repeatable_and_check_does_not_change_the_detector(detector):
    d = type(detector)(**{**detector.get_params(), "columns": _columns(detector)})
    first = d.fit(_frames(seed=6)).check(_frames(seed=7)).to_frame()
    again = d.check(_frames(seed=7)).to_frame()
    pd.testing.assert_frame_equal(first, again)


# --- method selection (Evidently 0.7's rule) ---------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "n", "n_unique", "method"),
    [
        ("numeric", 1000, 6, "ks"),
        ("numeric", 1001, 6, "wasserstein"),
        ("numeric", 1000, 5, "chi2_gof"),
        ("numeric", 1000, 2, "z"),
        ("numeric", 5000, 5, "jensenshannon"),
        ("categorical", 10, 3, "chi2_gof"),
        ("categorical", 10, 2, "z"),
        ("categorical", 1001, 2, "jensenshannon"),
        ("categorical", 1001, 50, "jensenshannon"),
    ],
)
def test_select_method_reproduces_evidently(kind, n, n_unique, method):
    assert drift.select_method(kind, n, n_unique) == method


def test_default_choice_per_column_by_dtype_cardinality_and_size():
    rng = np.random.default_rng(0)
    small = pd.DataFrame(
        {
            "f": rng.normal(size=500),
            "i_many": rng.integers(0, 100, 500),
            "i_few": rng.integers(0, 4, 500),  # <= 10 distinct ints: categorical
            "flag": rng.random(500) < 0.3,
            "s": rng.choice(["x", "y", "z"], 500),
        }
    )
    methods = dict(drift.check_drift(small, small).to_frame()[["column", "method"]].values)
    assert methods == {"f": "ks", "i_many": "ks", "i_few": "chi2_gof", "flag": "z", "s": "chi2_gof"}
    big = pd.concat([small] * 3, ignore_index=True)
    methods = dict(drift.check_drift(big, big).to_frame()[["column", "method"]].values)
    assert set(methods.values()) == {"wasserstein", "jensenshannon"}
    assert methods["f"] == "wasserstein" and methods["s"] == "jensenshannon"


def test_per_column_override_by_name_or_configured_detector():
    ref, cur = _frames(seed=1), _frames(seed=2)
    report = drift.check_drift(
        ref, cur, method={"x": drift.JensenShannon(base=2), "k": "chi2_contingency"}
    )
    assert list(report.to_frame().method) == ["jensenshannon", "chi2_contingency"]
    report = drift.check_drift(ref, cur, method="psi", threshold={"k": 0.5})
    assert list(report.to_frame().threshold) == [0.1, 0.5]


def test_small_cardinality_numeric_is_binned_per_value_like_evidently():
    ref = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0] * 10
    cur = [1.0, 1.0, 2.0, 3.0, 4.0] * 10
    result = drift.JensenShannon().fit(pd.DataFrame({"x": ref})).check(pd.DataFrame({"x": cur}))
    from scipy.spatial.distance import jensenshannon

    p = np.array([10, 20, 30, 0]) / 60
    q = np.array([20, 10, 10, 10]) / 50
    assert result["x"].statistic == pytest.approx(jensenshannon(p, q), rel=1e-12)


# --- dataset verdict ---------------------------------------------------------------------------


def _report_with_pvalues(pvalues, **kwargs):
    rng = np.random.default_rng(0)
    cols = {f"c{i}": rng.normal(size=50) for i in range(len(pvalues))}
    report = drift.check_drift(pd.DataFrame(cols), pd.DataFrame(cols), method="ks", **kwargs)
    fake = [
        drift.ColumnDrift(c.column, "ks", 0.1, p, 0.05, p < 0.05, 0.1)
        for c, p in zip(report.columns, pvalues, strict=True)
    ]
    from nbmlops.drift.report import apply_verdict

    return apply_verdict(fake, kwargs.get("drift_share", 0.5), kwargs.get("multiple_testing"))


@pytest.mark.parametrize(
    ("pvalues", "kwargs", "drifted", "dataset"),
    [
        ([0.01, 0.2, 0.3, 0.04], {}, [True, False, False, True], True),  # share 0.5 >= 0.5
        ([0.01, 0.2, 0.3, 0.4], {}, [True, False, False, False], False),
        ([0.01, 0.2, 0.3, 0.4], {"drift_share": 0.25}, [True, False, False, False], True),
        ([0.01, 0.2, 0.3, 0.04], {"multiple_testing": "bonferroni"}, [True] + [False] * 3, True),
        ([0.02, 0.2, 0.3, 0.04], {"multiple_testing": "bonferroni"}, [False] * 4, False),
        ([0.02, 0.2, 0.3, 0.024], {"multiple_testing": "bh"}, [True, False, False, True], True),
        ([0.02, 0.2, 0.3, 0.04], {"multiple_testing": "bh"}, [False] * 4, False),
    ],
)  # fmt: skip
def test_dataset_verdict_share_bonferroni_and_benjamini_hochberg(pvalues, kwargs, drifted, dataset):
    columns, dataset_drift, share = _report_with_pvalues(pvalues, **kwargs)
    assert [c.drifted for c in columns] == drifted
    assert dataset_drift is dataset and share == sum(drifted) / 4


def test_bonferroni_reports_the_corrected_threshold():
    columns, _, _ = _report_with_pvalues([0.01, 0.2], multiple_testing="bonferroni")
    assert [c.threshold for c in columns] == [0.025, 0.025]


# --- edge cases --------------------------------------------------------------------------------


def test_single_value_on_both_sides_is_not_drift():
    ref = pd.DataFrame({"x": [5.0] * 20, "k": ["a"] * 20})
    report = drift.check_drift(ref, ref.iloc[:7])
    assert not report.dataset_drift
    assert [c.p_value for c in report.columns] == [1.0, 1.0]


@pytest.mark.parametrize("method", [m for m in drift.METHODS if m != "chi2_gof"])
def test_constant_reference_against_shifted_constant(method):
    # chi2_gof gets a value never seen in the reference: see test_category_only_in_current
    ref, cur = pd.DataFrame({"x": [1.0] * 30}), pd.DataFrame({"x": [2.0] * 30})
    assert drift.check_drift(ref, cur, method=method)["x"].drifted


def test_all_nan_column_is_reported_untested_with_a_warning():
    ref = pd.DataFrame({"x": np.arange(50.0), "y": np.arange(50.0)})
    cur = pd.DataFrame({"x": np.arange(50.0), "y": [np.nan] * 50})
    report = drift.check_drift(ref, cur)
    assert report["y"].method == "untested" and not report["y"].drifted
    assert report["y"].missing_current == 50
    assert report.warnings == ("column 'y': no non-missing values in the current data; not tested",)
    assert report.drift_share == 0.0


def test_missing_and_infinite_values_are_left_out_and_counted():
    ref = pd.DataFrame({"x": [1.0, 2.0, np.nan, np.inf, 3.0] * 10})
    report = drift.check_drift(ref, ref)
    assert report["x"].n_reference == 30 and report["x"].missing_reference == 20


def test_category_only_in_current():
    ref = pd.DataFrame({"k": ["a", "b"] * 30})
    cur = pd.DataFrame({"k": ["a", "b", "c"] * 20})
    gof = drift.check_drift(ref, cur, method="chi2_gof")["k"]
    assert gof.statistic == math.inf and gof.p_value == 0.0 and gof.drifted
    assert "never seen in the reference" in gof.note
    contingency = drift.check_drift(ref, cur, method="chi2_contingency")["k"]
    assert contingency.drifted and math.isfinite(contingency.statistic)
    assert drift.check_drift(ref, cur, method="l_infinity")["k"].statistic == pytest.approx(1 / 3)


def test_ten_against_a_thousand_rows():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=10), "k": rng.choice(["a", "b"], 10)})
    cur = pd.DataFrame({"x": rng.normal(size=1000), "k": rng.choice(["a", "b"], 1000)})
    report = drift.check_drift(ref, cur)
    assert list(report.to_frame().method) == ["ks", "z"]
    assert report.columns[0].n_reference == 10 and report.columns[0].n_current == 1000


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "current", "message", "columns"),
    [
        (
            pd.DataFrame({"a": [1.0], "b": [2.0]}),
            pd.DataFrame({"a": [1.0], "c": [2.0]}),
            r"only in the reference \['b'\], only in the current \['c'\]",
            ["b", "c"],
        ),
        (
            pd.DataFrame({"a": [1.5, 2.5]}),
            pd.DataFrame({"a": ["1.5", "oops"]}),
            "Column 'a' is numeric in the reference but the current data holds text \\('oops'\\)",
            ["a"],
        ),
        (
            pd.DataFrame({"a": pd.Series([], dtype=float)}),
            pd.DataFrame({"a": [1.0]}),
            "The reference data has no rows",
            ["a"],
        ),
        (
            pd.DataFrame({"a": [1.0]}),
            pd.DataFrame({"a": pd.Series([], dtype=float)}),
            "The current data has no rows",
            ["a"],
        ),
        (
            pd.DataFrame({"a": [[1], [2]]}),
            pd.DataFrame({"a": [[1], [2]]}),
            "Column 'a' holds unhashable values",
            ["a"],
        ),
        (
            pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3)}),
            pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3)}),
            "Column 't' has dtype datetime64",
            ["t"],
        ),
        (
            pd.DataFrame({"k": ["a", "b"]}),
            pd.DataFrame({"k": [1, 2]}),
            "Column 'k' holds text in the reference but numbers in the current data",
            ["k"],
        ),
    ],
)
def test_bad_input_gets_a_clear_error_naming_the_columns(reference, current, message, columns):
    with pytest.raises(DriftInputError, match=message) as info:
        drift.check_drift(reference, current)
    assert info.value.columns == columns


def test_numeric_method_on_a_categorical_column_names_it():
    frame = pd.DataFrame({"k": ["a", "b"] * 5})
    with pytest.raises(DriftInputError, match="Method 'ks' needs a numeric column, but 'k'"):
        drift.check_drift(frame, frame, method="ks")


def test_columns_missing_from_current_are_named():
    detector = drift.DriftDetector().fit(_frames())
    with pytest.raises(DriftInputError, match="Column\\(s\\) 'k' not found in the current data"):
        detector.check(_frames()[["x"]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "chisquare"}, "Unknown drift method 'chisquare'; choose from ks, chi2_gof"),
        ({"multiple_testing": "holm"}, "multiple_testing must be None, 'bonferroni' or 'bh'"),
        ({"drift_share": 0}, "drift_share must be in \\(0, 1\\]"),
    ],
)
def test_bad_parameters_are_refused_at_fit(kwargs, message):
    with pytest.raises(DriftInputError, match=message):
        drift.DriftDetector(**kwargs).fit(_frames())


# --- the report --------------------------------------------------------------------------------


def test_report_frame_dict_repr_and_html():
    report = drift.check_drift(_frames(seed=1), _frames(shift=0.5, seed=2))
    frame = report.to_frame()
    assert list(frame.columns) == [
        "column", "method", "statistic", "p_value", "threshold", "drifted", "effect_size"
    ]  # fmt: skip
    assert report.dataset_drift and report.drift_share == 1.0
    assert report.to_dict()["columns"][0]["column"] == "x"
    assert repr(report).startswith("DriftReport(drift: 2/2 columns drifted, share 1.00")
    html = report._repr_html_()
    assert "Dataset drift detected" in html and html.count("#fde0e0") == 2


def test_plot_returns_a_figure_for_the_drifted_columns():
    from matplotlib.figure import Figure

    report = drift.check_drift(_frames(seed=1), _frames(shift=0.5, seed=2))
    fig = report.plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert "x: ks" in fig.axes[0].get_title()
    with pytest.raises(DriftInputError, match="Column\\(s\\) \\['nope'\\] are not in this report"):
        report.plot(columns=["nope"])


@pytest.mark.parametrize("entry", ["check_drift", "DriftDetector"])
def test_a_bad_kind_is_named(entry):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(DriftInputError, match="not 'weird'"):
        if entry == "check_drift":
            drift.check_drift(frame, frame, kinds={"a": "weird"})
        else:
            drift.DriftDetector(kinds={"a": "weird"}).fit(frame)
