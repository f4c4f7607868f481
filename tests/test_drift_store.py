"""Profiles and reports in a real store file; profile merges."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

import nbmlops as nbm
import nbmlops.drift as drift
from nbmlops.errors import DriftInputError, NotFoundError, RunNotFoundError
from nbmlops.fingerprint import fingerprint
from nbmlops.store import Store
from nbmlops.store import drift as drift_sql


def _data(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1, n),
            "i": rng.integers(0, 40, n),
            "k": rng.choice(["a", "b", "c"], n),
        }
    )


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / ".nbmlops")
    yield s
    s.close()


def test_a_saved_profile_is_keyed_by_the_reference_fingerprint(store):
    reference = _data(20_000, 1)
    detector = drift.DriftDetector().fit(reference)
    drift.save_profile(store, detector.profile_)
    with sqlite3.connect(store.db_path) as conn:  # a second connection: what really committed
        rows = conn.execute("SELECT profile_id, dataset_id, n_rows, profile FROM drift_profiles")
        profile_id, dataset_id, n_rows, text = rows.fetchone()
    assert profile_id == detector.profile_.profile_id
    assert dataset_id == fingerprint(reference).digest and n_rows == 20_000
    assert json.loads(text)["format"] == "nbmlops-drift-profile-v1"
    assert len(text) < 1_000_000  # compact: ~10k knots per numeric column at most


@pytest.mark.parametrize("n", [300, 20_000])
def test_a_stored_profile_gives_the_same_report_as_the_reference(store, n):
    reference, current = _data(n, 1), _data(n // 2, 2, shift=0.1)
    profile_id = drift.save_profile(store, drift.DriftDetector().fit(reference).profile_)
    loaded = drift.load_profile(store, profile_id[:10])  # a prefix will do
    expected = drift.DriftDetector().fit(reference).check(current).to_frame()
    again = drift.check_drift(loaded, current).to_frame()
    pd.testing.assert_frame_equal(again, expected)


def test_a_report_against_a_stored_profile_is_saved_linked_to_run_and_model(store, tmp_path):
    reference = _data(500, 1)
    profile_id = drift.save_profile(store, drift.build_profile(reference))
    with nbm.start_run("train", store=tmp_path / ".nbmlops") as run:
        pass
    checked = drift.check_drift(drift.load_profile(store, profile_id), _data(400, 3))
    report = drift.save_report(
        store, checked, current=_data(400, 3), run_id=run.run_id[:6], model_name="churn",
        model_version=2,
    )  # fmt: skip
    with sqlite3.connect(store.db_path) as conn:
        row = conn.execute(
            "SELECT profile_id, current_id, run_id, model_name, model_version, columns "
            "FROM drift_reports WHERE report_id = ?",
            (report.report_id,),
        ).fetchone()
    assert row[:5] == (profile_id, fingerprint(_data(400, 3)).digest, run.run_id, "churn", 2)
    assert set(json.loads(row[5])[0]) >= {"column", "method", "statistic", "p_value", "drifted"}
    nbm.get_store(tmp_path / ".nbmlops").close()


def test_reports_filter_and_load_round_trip(store):
    ref = _data(300, 1)
    first = drift.save_report(
        store, drift.check_drift(ref, _data(300, 2), fingerprint=True), current=_data(300, 2),
        model_name="m", model_version=1,
    )  # fmt: skip
    shifted = drift.check_drift(ref, _data(300, 3, shift=1.0), fingerprint=True)
    drift.save_report(store, shifted, model_name="m", model_version=2)
    frame = drift.drift_reports(store, model_name="m")
    assert list(frame.model_version) == [2, 1] and list(frame.dataset_drift) == [True, False]
    assert len(drift.drift_reports(store, model_name="m", model_version=1)) == 1
    loaded = drift.load_report(store, first.report_id)
    pd.testing.assert_frame_equal(loaded.to_frame(), first.to_frame())
    assert loaded.dataset_drift == first.dataset_drift and loaded.current_id is not None


def test_a_served_traffic_window_is_written_with_the_report_and_listed(store):
    checked = drift.check_drift(_data(300, 1), _data(300, 2), fingerprint=True)
    saved = drift.save_report(
        store, checked, model_name="m", model_version=1, window_start=60.0, window_end=3660.0
    )
    drift.save_report(store, drift.check_drift(_data(300, 1), _data(50, 3), fingerprint=True))
    with sqlite3.connect(store.db_path) as conn:  # one INSERT: no row without its window
        row = conn.execute(
            "SELECT window_start, window_end FROM drift_reports WHERE report_id = ?",
            (saved.report_id,),
        ).fetchone()
    assert row == (60.0, 3660.0)
    frame = drift.drift_reports(store).set_index("report_id")
    assert frame.loc[saved.report_id, "window_end"] == pd.Timestamp(3660, unit="s", tz="UTC")
    assert frame["window_start"].isna().sum() == 1
    assert isinstance(frame["window_start"].dtype, pd.DatetimeTZDtype)


def test_profiles_for_dataset_newest_first(store):
    reference = _data(300, 1)
    a = drift.DriftDetector(columns=["x"]).fit(reference).profile_
    b = drift.DriftDetector(columns=["x", "k"]).fit(reference).profile_
    drift.save_profile(store, a)
    drift.save_profile(store, b)
    found = drift.profiles_for_dataset(store, fingerprint(reference).digest)
    assert [p.profile_id for p in found] == [b.profile_id, a.profile_id]
    assert len(drift_sql.profiles_for_dataset(store, "no-such-dataset")) == 0


def test_unknown_profile_report_and_run_are_named(store):
    with pytest.raises(NotFoundError, match="Drift profile 'nope' not found in store"):
        drift.load_profile(store, "nope")
    with pytest.raises(NotFoundError, match="Drift report 'nope' not found in store"):
        drift.load_report(store, "nope")
    report = drift.check_drift(_data(50, 1), _data(50, 2))
    with pytest.raises(RunNotFoundError, match="Run 'feedbeef' not found"):
        drift.save_report(store, report, run_id="feedbeef")
    with pytest.raises(NotFoundError, match="pass profile= or check with fingerprint=True"):
        drift.save_report(store, report)


def test_an_infinite_statistic_is_stored_as_null(store):
    ref, cur = pd.DataFrame({"k": ["a"] * 20}), pd.DataFrame({"k": ["b"] * 20})
    report = drift.save_report(
        store, drift.check_drift(ref, cur, method="chi2_gof", fingerprint=True)
    )
    assert drift.load_report(store, report.report_id)["k"].statistic != report["k"].statistic


def _rows(path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:  # a second connection: what really committed
        return tuple(
            conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("drift_profiles", "drift_reports")
        )


@pytest.mark.parametrize(
    "detector", [drift.DriftDetector(), drift.KS(columns=["x"]), drift.PSI(bins=10)]
)
def test_fit_and_check_write_nothing(store, detector):
    fitted = detector.fit(_data(300, 1))
    fitted.check(_data(300, 2, shift=0.5))
    drift.check_drift(fitted.profile_, _data(300, 2))
    assert _rows(store.db_path) == (0, 0)
    assert "store" not in fitted.get_params()


def test_the_api_saves_only_when_asked(store):
    ref, cur = _data(300, 1), _data(300, 2)
    unsaved = nbm.check_drift(ref, cur, save=False, store=store)
    assert _rows(store.db_path) == (0, 0)
    saved = nbm.check_drift(ref, cur, store=store.db_path.parent)  # a path means the same store
    assert _rows(store.db_path) == (1, 1)
    assert drift.load_report(store, saved.report_id).to_frame().equals(unsaved.to_frame())


# --- merging -----------------------------------------------------------------------------------


def test_merged_exact_profiles_equal_the_profile_of_the_concatenation():
    a, b = _data(400, 1), _data(700, 2, shift=0.3)
    merged = drift.merge_profiles(drift.build_profile(a), drift.build_profile(b))
    whole = drift.build_profile(pd.concat([a, b], ignore_index=True))
    mj, wj = merged.to_json(), whole.to_json()
    for m_col, w_col in zip(mj["columns"], wj["columns"], strict=True):
        for key in ("m2", "m3", "mean"):
            assert m_col.pop(key, 0.0) == pytest.approx(w_col.pop(key, 0.0), rel=1e-9, abs=1e-9)
    assert mj == wj


def test_merged_sketches_stay_within_their_error_bounds():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=30_000), rng.normal(1.0, 2.0, size=50_000)
    merged = drift.merge_profiles(
        drift.build_profile(pd.DataFrame({"x": a})), drift.build_profile(pd.DataFrame({"x": b}))
    )
    whole = np.sort(np.concatenate([a, b]))
    s = merged.columns["x"].numeric
    ecdf = np.arange(1, len(whole) + 1) / len(whole)
    assert np.max(np.abs(s.cdf_at_or_below(whole) / s.n - ecdf)) <= s.ks_error + 1 / len(whole)
    assert s.n == 80_000 and s.std() == pytest.approx(np.std(whole), rel=1e-9)


def test_checking_against_merged_windows_equals_checking_against_all_of_them():
    windows = [_data(300, seed) for seed in range(3)]
    merged = drift.merge_profiles(*[drift.build_profile(w) for w in windows])
    whole = pd.concat(windows, ignore_index=True)
    current = _data(500, 9, shift=0.2)
    pd.testing.assert_frame_equal(
        drift.check_drift(merged, current).to_frame(),
        drift.check_drift(whole, current).to_frame(),
    )


# --- stored reports: settings and plots ----------------------------------------------------


def _checked(store):
    ref = _data(400, 1).assign(z=1.5)
    cur = _data(300, 2, shift=0.4).assign(z=np.nan)  # z: untested, with a warning
    method = {"x": drift.JensenShannon(base=2, bins="doane"), "k": "chi2_contingency"}
    report = drift.check_drift(
        ref, cur, method=method, threshold={"i": 0.2}, drift_share=0.3,
        multiple_testing="bh", fingerprint=True,
    )  # fmt: skip
    return drift.save_report(store, report)


def test_a_stored_report_keeps_its_verdict_rule_methods_and_warnings(store):
    report = _checked(store)
    loaded = drift.load_report(store, report.report_id)
    assert (loaded.drift_share_threshold, loaded.multiple_testing) == (0.3, "bh")
    assert loaded.dataset_drift == report.dataset_drift and repr(loaded) == repr(report)
    assert loaded.warnings == report.warnings and "'z'" in loaded.warnings[0]
    assert loaded.column_settings == report.column_settings
    settings = {s["column"]: s for s in loaded.column_settings}
    assert settings["x"]["params"] == {"base": 2, "squared": False, "bins": "doane"}
    assert (settings["k"]["method"], settings["i"]["threshold"]) == ("chi2_contingency", 0.2)
    pd.testing.assert_frame_equal(loaded.to_frame(), report.to_frame())


def test_settings_are_plain_json_in_the_table(store):
    report = _checked(store)
    with sqlite3.connect(store.db_path) as conn:
        (text,) = conn.execute(
            "SELECT settings FROM drift_reports WHERE report_id = ?", (report.report_id,)
        ).fetchone()
    settings = json.loads(text)
    assert settings["drift_share_threshold"] == 0.3 and settings["multiple_testing"] == "bh"
    assert [s["column"] for s in settings["columns"]] == ["x", "i", "k", "z"]


@pytest.mark.parametrize("column", ["x", "i", "k"])
def test_a_stored_report_plots_what_the_check_plotted(store, column):
    report = _checked(store)
    live = report.plot(columns=[column]).axes[0]
    stored = drift.load_report(store, report.report_id).plot(columns=[column]).axes[0]
    assert stored.get_title() == live.get_title()
    for a, b in zip(live.lines + live.patches, stored.lines + stored.patches, strict=True):
        if hasattr(a, "get_xydata"):
            np.testing.assert_array_equal(a.get_xydata(), b.get_xydata())
        else:
            assert (a.get_x(), a.get_height()) == (b.get_x(), b.get_height())
    assert len(live.lines + live.patches) > 1


def test_a_report_saved_before_settings_existed_reads_back_and_says_why_it_cannot_plot(store):
    report = _checked(store)
    with sqlite3.connect(store.db_path) as conn:  # as migration 0007 leaves older reports
        conn.execute("UPDATE drift_reports SET settings = NULL, curves = NULL")
    loaded = drift.load_report(store, report.report_id)
    assert loaded.dataset_drift == report.dataset_drift and loaded.column_settings == ()
    with pytest.raises(DriftInputError, match=r"saved before nbmlops stored them"):
        loaded.plot(columns=["x"])
