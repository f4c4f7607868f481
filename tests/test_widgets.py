from __future__ import annotations

from pathlib import Path

import pytest

import nbmlops as nbm
from nbmlops.widgets import CompareView, RunsPanel


@pytest.fixture
def runs(home: Path) -> list[str]:
    ids = []
    for i, (lr, depth) in enumerate([(0.1, 3), (0.2, 3), (0.3, 5)]):
        with nbm.start_run(f"r{i}", tags={"team": "a"}) as run:
            run.log_params({"lr": lr, "depth": depth, "opt": "adam"})
            for step in range(4):
                run.log_metric("loss", 1 / (step + 1 + i))
            run.log_metric("accuracy", 0.7 + i / 10)
        ids.append(run.run_id)
    return ids


def test_runs_panel_lists_newest_first_with_params_and_metrics(runs):
    panel = nbm.runs_panel()
    assert panel.view["run_id"].tolist() == runs[::-1]
    assert {"params.lr", "metrics.accuracy"} <= set(panel.columns)
    first_row = " | ".join(cell.value for cell in panel._cells[0])
    assert f">{runs[-1]}<" in first_row and ">0.3<" in first_row


def test_header_click_sorts_and_second_click_reverses(runs):
    panel = nbm.runs_panel()
    header = panel._header[panel.columns.index("metrics.accuracy")]
    header.click()
    assert panel.view["run_id"].tolist() == runs
    assert header.description == "metrics.accuracy ▲"
    header.click()
    assert panel.view["run_id"].tolist() == runs[::-1]


def test_filter_box_filters_and_reports_bad_filters(runs):
    panel = nbm.runs_panel()
    panel.filter_box.value = "params.lr >= 0.2"
    assert sorted(panel.view["run_id"]) == sorted(runs[1:])
    panel.filter_box.value = "params.lr >"
    assert "expected" in panel.status.value and "^" in panel.status.value


def test_pagination_keeps_selection_across_pages(runs):
    panel = RunsPanel(page_size=2)
    assert panel.pages == 2
    panel._checks[0].value = True
    panel.next_button.click()
    assert panel.page == 1 and panel._page_ids[0] == runs[0]
    panel._checks[0].value = True
    assert panel.selected == {runs[2], runs[0]}
    assert not panel.compare_button.disabled


def test_compare_button_opens_the_compare_view(runs):
    panel = nbm.runs_panel()
    panel.select(runs[0], runs[2])
    panel.compare_button.click()
    view = panel.compare_view
    assert isinstance(view, CompareView)
    assert panel.compare_area.children == (view.widget,)
    assert "lr" in view.params_html.value and "opt" not in view.params_html.value
    view.all_params.value = True
    assert "opt" in view.params_html.value


def test_compare_view_highlights_the_best_metric_per_direction(runs):
    view = nbm.compare_panel(*runs)
    view.tabs.selected_index = 1
    metrics = view.comparison.metrics()
    assert metrics.loc["accuracy", "best"] == runs[2]  # higher is better
    assert metrics.loc["loss", "best"] == runs[2]  # lower is better: last losses 1/4, 1/5, 1/6
    assert "#c8e6c9" in view.metrics_html.value


def test_compare_view_figures_have_the_right_content(runs):
    view = nbm.compare_panel(*runs)
    assert view.figures == {}  # figures are drawn when their tab is first shown
    view.tabs.selected_index = 1
    bars = view.figures["bars"]
    assert sorted(ax.get_title() for ax in bars.axes if ax.get_visible()) == ["accuracy", "loss"]
    assert len(bars.axes[0].patches) == 3
    view.tabs.selected_index = 2
    lines = view.figures["steps"].axes[0].get_lines()
    assert len(lines) == 3 and len(lines[0].get_xdata()) == 4
    view.tabs.selected_index = 3
    view.parallel_metric.value = "accuracy"
    labels = [t.get_text() for t in view.figures["parallel"].axes[0].get_xticklabels()]
    assert labels == ["depth", "lr", "accuracy"]
    view.tabs.selected_index = 4
    view.scatter_param.value, view.scatter_metric.value = "lr", "accuracy"
    assert view.figures["scatter"].axes[0].get_xlabel() == "lr"


def test_compare_view_code_data_and_environment_tabs(home: Path):
    ids = []
    for source in ("x = 1\ny = 2\n", "x = 1\ny = 3\n"):
        with nbm.start_run() as run:
            run.log_dataset(b"same bytes", name="raw")
        nbm.get_store().connection().execute(
            "INSERT OR IGNORE INTO cell_versions VALUES (?, ?, 0)", (source, source)
        )
        nbm.get_store().connection().execute(
            "UPDATE runs SET cell_version = ? WHERE run_id = ?", (source, run.run_id)
        )
        ids.append(run.run_id)
    view = nbm.compare_panel(*ids)
    for tab in (5, 6, 7):
        view.tabs.selected_index = tab
    assert "-y = 2" in view.code_html.value and "+y = 3" in view.code_html.value
    view.code_mode.value = "side by side"
    assert "diff_chg" in view.code_html.value or "diff_add" in view.code_html.value
    assert "same" in view.data_html.value and "different" not in view.data_html.value
    assert view.env_html.value == "<i>same environment</i>"


def test_static_rendering_and_frames(runs):
    panel = nbm.runs_panel()
    panel.select(*runs[:2])
    panel.compare()
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert runs[0] in bundle["text/html"] and "data:image/png;base64" in bundle["text/html"]
    assert len(panel.to_frame()) == 3
    assert list(panel.compare_view.to_frame().columns) == runs[1::-1]


def test_cell_history_panel_diffs_and_restores(home: Path):
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbmlops")
    try:
        shell.run_cell("%%track\nalpha = 1", store_history=True, cell_id="c")
        shell.run_cell("%%track\nalpha = 2", store_history=True, cell_id="c")
        panel = shell.run_line_magic("cellhistory", "")
        assert len(panel.history) == 2
        assert "-alpha = 1" in panel.diff_html.value and "+alpha = 2" in panel.diff_html.value
        panel.versions.value = 0
        assert "alpha = 1" in panel.detail.value
        panel.restore_button.click()
        assert shell.rl_next_input == "%%track\nalpha = 1"
        static = panel.to_html()
        assert "<table" in static and "-alpha = 1" in static
    finally:
        shell.run_line_magic("unload_ext", "nbmlops")
        InteractiveShell.clear_instance()


def test_runs_magic_takes_a_filter(runs):
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbmlops")
    try:
        panel = shell.run_line_magic("runs", "metrics.accuracy > 0.75")
        assert sorted(panel.view["run_id"]) == sorted(runs[1:])
    finally:
        shell.run_line_magic("unload_ext", "nbmlops")
        InteractiveShell.clear_instance()


def test_lineage_links_producer_and_consumer(home: Path):
    import pandas as pd

    frame = pd.DataFrame({"x": [1, 2]})
    with nbm.start_run("prepare") as prepare:
        prepare.log_dataset(frame, name="clean", role="output")
    with nbm.start_run("train") as train:
        train.log_dataset(frame, name="train_df")
    lineage = nbm.lineage(train.run_id)
    assert lineage.inputs[0]["linked"] == [prepare.run_id]
    assert nbm.lineage(prepare.run_id).outputs[0]["linked"] == [train.run_id]
    fig = lineage.plot()
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert f"run {prepare.run_id[:8]}" in texts and "dataframe\ntrain_df" in texts
    assert prepare.run_id in lineage._repr_html_()


def test_models_panel_registers_evaluates_promotes_and_deprecates(home: Path, tmp_path: Path):
    from sklearn.dummy import DummyRegressor

    (tmp_path / "nbmlops.toml").write_text(
        '[rules.m]\npromote_to = "champion"\nrequire = ["metrics.mae < champion.metrics.mae"]\n'
    )
    ids = []
    for mae, constant in ((5.0, 1.0), (7.0, 2.0)):
        with nbm.start_run() as run:
            model = DummyRegressor(strategy="constant", constant=constant).fit([[0]], [0])
            run.log_model(model, "m")
            run.log_metric("mae", mae)
        ids.append(run.run_id)
    panel = nbm.models_panel()
    assert "no registered models" in panel.versions_html.value
    for run_id in ids:
        panel.run_box.value, panel.name_box.value = run_id, "m"
        panel.register_button.click()
    assert panel.model.value == "m" and panel.version.options[-1] == ("m/2", 2)
    panel.version.value = 1
    panel.evaluate_button.click()
    assert "no champion" in panel.decision_html.value and not panel.confirm_button.disabled
    panel.confirm_button.click()
    assert "champion" in panel.versions_html.value
    panel.version.value = 2
    panel.evaluate_button.click()
    assert panel.confirm_button.disabled  # 7 is not < 5: nothing to confirm
    assert "7" in panel.decision_html.value and "5" in panel.decision_html.value
    panel.reason_box.value = "worse"
    panel.deprecate_button.click()
    assert "deprecated: worse" in panel.message.value
    kinds = [k for k in nbm.model_history("m")["kind"]]
    assert kinds.count("promotion") == 1 and "deprecated" in kinds


def test_notebook_exported_to_html_shows_the_static_comparison(home: Path, runs, tmp_path):
    """A notebook saved without widget state (JupyterLab's default) exports the static HTML."""
    import nbformat
    from nbconvert import HTMLExporter

    with nbm.start_run("no-depth") as run:  # a run lacking a param: nullable ints get NA
        run.log_params({"lr": 0.5})
    panel = nbm.runs_panel()
    panel.select(runs[0], runs[2])
    panel.compare()
    bundle = panel._repr_mimebundle_()
    cell = nbformat.v4.new_code_cell("panel", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("execute_result", data=bundle, execution_count=1)]
    html, _ = HTMLExporter().from_notebook_node(nbformat.v4.new_notebook(cells=[cell]))
    assert "Comparing 2 runs" in html and "Params that differ" in html
    assert "&lt;NA&gt;" not in html and "<NA>" not in html


def test_panels_in_a_folder_with_no_store_create_none_and_show_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("NBMLOPS_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    nbm.set_store(None)
    models = nbm.models_panel()
    drift = nbm.drift_panel(namespace={})
    nbm.runs_panel()
    assert "no registered models yet" in models.versions_html.value
    assert drift.model.options == () and "Could not" not in drift.message.value
    assert list(tmp_path.iterdir()) == []


@pytest.mark.filterwarnings("ignore:Widget.widgets is deprecated")  # the one public count
@pytest.mark.parametrize("n_runs", [1, 25])
def test_runs_panel_makes_widgets_for_the_rows_it_shows_only(home: Path, n_runs: int):
    import ipywidgets

    for i in range(n_runs):
        with nbm.start_run(f"r{i}"):
            nbm.log_params({"lr": i, "depth": 3})
            nbm.log_metric("auc", i / 100)
    before = len(ipywidgets.Widget.widgets)
    panel = RunsPanel(page_size=20)
    made = len(ipywidgets.Widget.widgets) - before  # each one a model a saved notebook keeps
    rows = min(n_runs, 20)
    assert len(panel.grid.children) == (rows + 1) * (len(panel.columns) + 1)
    assert made <= 60 + rows * (len(panel.columns) + 1)  # the frame, then one widget per cell


def test_models_panel_says_when_a_model_is_not_served(home: Path):
    from sklearn.dummy import DummyRegressor

    nbm.register_model(DummyRegressor().fit([[0]], [0]), "quiet")
    panel = nbm.models_panel("quiet")
    assert "not served" in panel.endpoints_html.value
    assert "<b>Endpoints</b><i>not served" in panel.to_html()
