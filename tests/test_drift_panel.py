from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import nbmlops as nbm
from nbmlops.errors import DriftInputError


@pytest.fixture
def wine() -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame.drop(columns="target")
    reference = frame.sample(frac=0.5, random_state=0)
    current = frame.drop(reference.index)
    current = current.assign(alcohol=current["alcohol"] + 2 * frame["alcohol"].std())
    return reference, current


def test_check_drift_flags_the_shifted_wine_feature_and_saves_the_report(home: Path, wine):
    reference, current = wine
    with nbm.start_run("monitor") as run:
        report = nbm.check_drift(reference, current)
    table = report.to_frame().set_index("column")
    assert bool(table.loc["alcohol", "drifted"])
    assert table["drifted"].sum() <= 2  # the other columns are the same wine
    saved = nbm.sql("SELECT run_id, dataset_drift, drift_share FROM drift_reports")
    assert saved["run_id"].tolist() == [run.run_id]
    assert saved["drift_share"].item() == pytest.approx(report.drift_share)


def test_drift_panel_shows_verdict_sorts_and_plots_a_column(home: Path, wine):
    panel = nbm.drift_panel(*wine)
    assert "of 13 columns drifted" in panel.verdict.value
    assert panel.column.value == "alcohol"  # the first drifted column is plotted
    assert "data:image/png" in panel.plot.value and panel.figure.axes
    panel.sort.value = "column"
    assert list(panel.sorted_frame()["column"]) == sorted(panel.frame["column"])
    panel.column.value = "ash"
    assert any("ash" in ax.get_title() for ax in panel.figure.axes)
    assert "alcohol" in panel._repr_mimebundle_()["text/html"]


def test_drift_magic_takes_variable_names(home: Path, wine):
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbmlops")
    try:
        shell.user_ns.update(ref=wine[0], cur=wine[1])
        panel = shell.run_line_magic("drift", "ref cur --columns alcohol ash")
        assert list(panel.frame["column"]) in (["alcohol", "ash"], ["ash", "alcohol"])
    finally:
        shell.run_line_magic("unload_ext", "nbmlops")
        InteractiveShell.clear_instance()


def test_registered_model_uses_its_training_data_reference(home: Path, wine):
    from sklearn.linear_model import LinearRegression

    reference, current = wine
    X_train = reference.drop(columns="proline")
    with nbm.start_run() as run:
        run.log_dataset(X_train, name="X_train")
        run.log_model(LinearRegression().fit(X_train, reference["proline"]), "model")
    version = nbm.register_model(run.run_id, "wine")
    with pytest.raises(DriftInputError, match=r"nbm.save_reference\(X_train\)"):
        nbm.check_drift("wine/1", current)
    nbm.save_reference(X_train)
    report = nbm.check_drift(f"wine/{version.version}", current.drop(columns="proline"))
    assert "alcohol" in report.drifted_columns
    linked = nbm.sql("SELECT model_name, model_version FROM drift_reports")
    assert linked.values.tolist() == [["wine", version.version]]
