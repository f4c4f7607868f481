from __future__ import annotations

from html import unescape
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


# --- choosing the reference in the panel -----------------------------------------------------


def _trained(home: Path, wine, profile: bool = True) -> str:
    """A run that read X_train (profiled, as %%track will) and logged a model; its id."""
    from sklearn.linear_model import LinearRegression

    from nbmlops.drift import profile_dataset

    reference, _ = wine
    X_train = reference.drop(columns="proline")
    with nbm.start_run() as run:
        run.log_dataset(X_train, name="X_train")
        if profile:
            profile_dataset(nbm.get_store(), X_train)
        run.log_model(LinearRegression().fit(X_train, reference["proline"]), "model")
    return run.run_id


def test_panel_checks_dataframe_variables_chosen_in_it(home: Path, wine):
    namespace = {"ref": wine[0], "cur": wine[1], "n": 3, "_hidden": wine[0]}
    panel = nbm.drift_panel(namespace=namespace)
    assert panel.report is None and "press check drift" in panel._repr_mimebundle_()["text/html"]
    assert panel.reference_frame.options == ("cur", "ref") and panel.current.options == (
        "cur",
        "ref",
    )
    panel.reference_frame.value, panel.current.value = "ref", "cur"
    panel.only_columns.value = "alcohol ash"
    panel.check_button.click()
    assert "of 2 columns drifted" in panel.verdict.get_state()["value"]
    assert sorted(panel.frame["column"]) == ["alcohol", "ash"] and panel.column.value == "alcohol"
    assert "data:image/png" in panel.plot.value and panel.message.value == ""


def test_panel_checks_against_a_registered_models_training_data(home: Path, wine):
    nbm.register_model(_trained(home, wine), "wine")
    nbm.set_alias("wine", "champion", 1)
    panel = nbm.drift_panel(namespace={"cur": wine[1].drop(columns="proline")})
    panel.reference_kind.value = "model"
    assert panel.reference_box.children == (panel.model,)
    assert panel.model.options == ("wine@champion", "wine/1")
    panel.model.value = "wine@champion"
    panel.check_button.click()
    assert panel.report is not None and "alcohol" in panel.report.drifted_columns
    assert "wine@champion vs cur" in panel.verdict.value
    linked = nbm.sql("SELECT model_name, model_version FROM drift_reports")
    assert linked.values.tolist() == [["wine", 1]]


def test_panel_checks_against_a_runs_input_dataset(home: Path, wine):
    run_id = _trained(home, wine)
    panel = nbm.drift_panel(namespace={"cur": wine[1]})
    panel.reference_kind.value = "run input"
    assert panel.reference_box.children == (panel.run_id, panel.run_input)
    panel.run_id.value = run_id[:6]
    assert [label for label, _ in panel.run_input.options] == ["X_train · 89 rows"]
    panel.check_button.click()
    assert panel.message.value == "" and "alcohol" in panel.report.drifted_columns
    fingerprint = panel.run_input.value
    assert nbm.sql("SELECT dataset_id FROM drift_profiles")["dataset_id"].tolist() == [fingerprint]


def test_panel_says_when_a_run_input_has_no_profile(home: Path, wine):
    run_id = _trained(home, wine, profile=False)
    panel = nbm.drift_panel(namespace={"cur": wine[1]})
    panel.reference_kind.value = "run input"
    panel.run_id.value = run_id
    assert panel.run_input.options == ()
    assert "nbm.save_reference(X_train)" in panel.message.value
    panel.check_button.click()
    assert "no input dataset with a saved profile is chosen" in panel.message.value
    panel.run_id.value = "ffffff"
    assert "Run 'ffffff' not found" in unescape(panel.message.value)


@pytest.mark.parametrize(
    ("namespace", "columns", "message"),
    [
        ({}, "", "Reference: no DataFrame variable is chosen"),
        ({"ref": "wine"}, "", "Reference: no DataFrame variable is chosen"),
        ("wine", "alcohol nope", "Column(s) 'nope' not found in the reference data"),
    ],
)
def test_panel_shows_bad_choices_as_messages(home: Path, wine, namespace, columns, message):
    if namespace == "wine":
        namespace = {"ref": wine[0], "cur": wine[1]}
    panel = nbm.drift_panel(namespace=namespace)
    panel.only_columns.value = columns
    panel.check_button.click()
    assert message in unescape(panel.message.value) and panel.report is None


def test_panel_presets_its_choosers_and_lists_new_variables_on_refresh(home: Path, wine):
    namespace = {"ref": wine[0], "cur": wine[1]}
    panel = nbm.drift_panel(wine[0], wine[1], namespace=namespace)
    assert (panel.reference_kind.value, panel.reference_frame.value) == ("DataFrame", "ref")
    assert panel.current.value == "cur" and panel.report is not None
    namespace["later"] = wine[1].copy()
    panel.refresh_button.click()
    assert "later" in panel.current.options and panel.current.value == "cur"


def test_drift_magic_without_arguments_opens_the_choosers(home: Path, wine):
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbmlops")
    try:
        shell.user_ns.update(ref=wine[0], cur=wine[1])
        panel = shell.run_line_magic("drift", "")
        assert panel.report is None and set(panel.current.options) >= {"ref", "cur"}
        with pytest.raises(UsageError, match="give both the reference and the current data"):
            shell.run_line_magic("drift", "ref")
    finally:
        shell.run_line_magic("unload_ext", "nbmlops")
        InteractiveShell.clear_instance()
