"""Retraining from an alert (issue #15 items 5, 6): papermill's parameters, the example retrain
notebook run in real kernels, its candidates promoted by the rules, models that cannot improve."""

from __future__ import annotations

import datetime as dt
import math
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_notebook
from sklearn.dummy import DummyRegressor

import nbmlops as nbm
from nbmlops.cli import main
from nbmlops.headless import parameter_value, parameterize, parameters_source
from nbmlops.monitoring.retrain import retrain
from nbmlops.store import Store
from nbmlops.store import monitor_events as events_sql

EXAMPLE = Path(__file__).parents[1] / "example_notebooks" / "retrain_diabetes.ipynb"
RULES = """[rules.diabetes]
promote_to = "champion"
require = [{}]
"""
BETTER_THAN_CHAMPION = (
    '"metrics.mae < champion.metrics.mae", "dataset.X_test == champion.dataset.X_test"'
)


def cell(source: str, *tags: str) -> nbformat.NotebookNode:
    made = new_code_cell(source)
    if tags:
        made.metadata["tags"] = list(tags)
    return made


def write(path: Path, *cells: nbformat.NotebookNode) -> Path:
    nbformat.write(new_notebook(cells=list(cells)), path)
    return path


def fire(store: Store) -> int:
    event = {"name": "diabetes", "alert": "drift", "kind": "fired", "at": time.time()}
    firing = events_sql.fire_unless_cooling(store, event, cooldown_s=0)
    assert firing is not None
    return firing


def kinds(store: Store, firing: int) -> list[str]:
    return [e.kind for e in events_sql.events_of(store, "diabetes", firing_id=firing)]


def champion_in_process(strategy: str = "mean") -> int:
    """A champion registered by hand (no kernel): a dummy regressor, diabetes@champion."""
    version = nbm.register_model(DummyRegressor(strategy=strategy).fit([[0]], [1]), "diabetes")
    nbm.set_alias("diabetes", "champion", version.version)
    return version.version


# -- parameters, papermill's conventions ----------------------------------------------------


def test_parameters_are_written_as_papermill_writes_them():
    parameters = {"s": 'say "hi"\né', "n": None, "i": 3, "f": 0.5, "b": True}
    parameters |= {"nan": math.nan, "inf": -math.inf, "l": [1, "a"], "d": {"k": [2.5, None]}}
    # The expected text is papermill 2.7's PythonTranslator.codify of the same dict.
    assert parameters_source(parameters) == (
        '# Parameters\ns = "say \\"hi\\"\\n\\xe9"\nn = None\ni = 3\nf = 0.5\nb = True\n'
        "nan = float('nan')\ninf = float('-inf')\nl = [1, \"a\"]\nd = {\"k\": [2.5, None]}\n"
    )


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"when": dt.date(2026, 5, 1)}, r"when = datetime.date\(2026, 5, 1\) \(date\)"),
        ({"paths": [Path("a")]}, r"paths\[0\] = PosixPath\('a'\).*a path as a str"),
        ({"d": {1: "x"}}, r"Parameter d has the key 1 \(int\).*str keys"),
        ({"1x": 1}, "Parameter name '1x' is not a Python variable name"),
        ({"class": 1}, "Parameter name 'class' is not a Python variable name"),
    ],
)
def test_a_parameter_that_cannot_be_written_as_python_is_refused(parameters, message):
    with pytest.raises(ValueError, match=message):
        parameters_source(parameters)


def test_parameters_go_after_the_parameters_cell_or_replace_an_earlier_injection():
    nb = new_notebook(cells=[cell("import os"), cell("a = 1", "parameters"), cell("print(a)")])
    out = parameterize(nb, {"a": 2}, "in.ipynb", "out.ipynb")
    tags = [c.metadata.get("tags", []) for c in out.cells]
    assert tags == [[], ["parameters"], ["injected-parameters"], []]
    assert out.cells[2].source == "# Parameters\na = 2\n"
    assert out.metadata.papermill == {
        "parameters": {"a": 2},
        "input_path": "in.ipynb",
        "output_path": "out.ipynb",
    }
    again = parameterize(out, {"a": 3})
    assert [c.source for c in again.cells][1:3] == ["a = 1", "# Parameters\na = 3\n"]


def test_without_a_parameters_cell_they_go_on_top_with_a_warning():
    nb = new_notebook(cells=[cell("a = 1"), cell("print(a)")])
    with pytest.warns(UserWarning, match="t.ipynb has no cell tagged 'parameters'.*top"):
        out = parameterize(nb, {"a": 2}, "t.ipynb")
    assert [c.source for c in out.cells] == ["# Parameters\na = 2\n", "a = 1", "print(a)"]


# -- retraining in real kernels -------------------------------------------------------------


@pytest.mark.kernel
def test_a_failing_retrain_is_recorded_and_the_champion_is_untouched(home: Path, tmp_path: Path):
    (tmp_path / "nbmlops.toml").write_text(RULES.format(BETTER_THAN_CHAMPION))
    champion = champion_in_process()
    notebook = write(
        tmp_path / "broken.ipynb",
        cell("model = None\nwindow_start = None", "parameters"),
        cell("print(repr((model, champion, window_start)))"),
        cell("raise ValueError(f'no labelled rows for {model} in the window')"),
    )
    store, firing = nbm.get_store(), fire(nbm.get_store())
    outcome = retrain(
        store, name="diabetes", alert="drift", firing_id=firing, notebook=notebook,
        parameters={"window_start": 60.0},
    )  # fmt: skip
    assert outcome.status == "failed" and outcome.promoted is None
    assert "ValueError: no labelled rows for diabetes in the window" in repr(outcome)
    assert nbm.get_model_version("diabetes@champion").version == champion
    assert kinds(store, firing) == ["fired", "retrain_started", "retrain_failed"]
    executed = nbformat.read(outcome.output, as_version=4)  # written although a cell failed
    tags = [c.metadata.get("tags") for c in executed.cells]
    assert tags == [["parameters"], ["injected-parameters"], None, None]
    assert executed.cells[2].outputs[0].text == f"('diabetes', {champion}, 60.0)\n"
    assert executed.metadata.papermill.parameters["firing_id"] == firing
    assert executed.cells[3].outputs[0].ename == "ValueError"


@pytest.mark.kernel
def test_a_better_candidate_is_promoted_and_a_worse_one_rejected(home: Path, tmp_path: Path):
    (tmp_path / "nbmlops.toml").write_text(RULES.format(BETTER_THAN_CHAMPION))
    notebook = Path(shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name))
    store = nbm.get_store()
    first_firing, second_firing = fire(store), fire(store)

    def run(firing: int, **parameters: object):
        return retrain(
            store, name="diabetes", alert="drift", firing_id=firing, notebook=notebook,
            parameters={"n_estimators": 20, **parameters},
        )  # fmt: skip

    first = run(first_firing, data_window=300)
    assert repr(first).endswith(
        "promoted - version 1 promoted to @champion (was none); candidates 1>"
    )
    assert nbm.get_model_version("diabetes@champion").version == 1
    steps = events_sql.events_of(store, "diabetes", firing_id=first_firing)
    assert [e.kind for e in steps][1:] == [
        "retrain_started",
        "retrain_finished",
        "candidate_promoted",
    ]
    assert (
        steps[2].payload == {"runs": list(first.runs), "candidates": [1]} and len(first.runs) == 1
    )
    second = run(second_firing, data_window=40)
    assert second.status == "rejected" and second.candidates == (2,)
    assert "version 1 kept" in second.reason and "metrics.mae" in second.reason
    assert nbm.get_model_version("diabetes@champion").version == 1
    assert kinds(store, second_firing)[-1] == "candidate_rejected"


@pytest.mark.kernel
def test_a_model_that_cannot_improve_stops_retraining_until_the_alias_moves(
    home: Path, tmp_path: Path
):
    (tmp_path / "nbmlops.toml").write_text(RULES.format('"metrics.mae < 30"'))  # out of reach
    champion = champion_in_process()
    notebook = Path(shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name))
    store = nbm.get_store()

    def run(notebook: Path, seed: int):
        return retrain(
            store, name="diabetes", alert="drift", firing_id=fire(store), notebook=notebook,
            parameters={"n_estimators": 10, "data_window": 80, "seed": seed}, stop_after=2,
        )  # fmt: skip

    assert (run(notebook, 1).failed_retrains, run(notebook, 2).deprecated) == (1, (2, 3))
    stopped = events_sql.events_of(store, "diabetes", alert="drift")[-1]
    assert stopped.kind == "retraining_stopped" and stopped.payload["deprecated"] == [2, 3]
    assert "needs a new approach: 2 retrains in a row" in stopped.payload["reason"]
    assert [nbm.get_model_version(f"diabetes/{v}").status for v in (2, 3)] == ["deprecated"] * 2
    skipped = run(notebook, 3)
    assert (
        skipped.status == "stopped" and "resumes once diabetes@champion is moved" in skipped.reason
    )
    assert kinds(store, skipped.firing_id) == ["fired"]  # nothing ran for it
    nbm.set_alias("diabetes", "champion", champion_in_process("median"))  # a person's new model
    broken = write(tmp_path / "broken.ipynb", cell("seed = 0", "parameters"), cell("1 / 0"))
    resumed = run(broken, 4)
    assert (resumed.status, resumed.failed_retrains, resumed.stopped) == ("failed", 1, False)
    assert nbm.get_model_version(f"diabetes/{champion}").status != "deprecated"


@pytest.mark.parametrize(
    ("notebook", "parameters", "error", "message"),
    [
        ("missing.ipynb", {}, FileNotFoundError, r"missing.ipynb of alert 'drift' does not exist"),
        ("retrain.ipynb", {"model": "x"}, ValueError, "Parameters model are set by retrain"),
        ("retrain.ipynb", {"at": dt.datetime(2026, 1, 1)}, ValueError, "cannot be written as"),
    ],
)
def test_a_retrain_that_cannot_start_raises_and_records_nothing(
    home: Path, tmp_path: Path, notebook, parameters, error, message
):
    (tmp_path / "nbmlops.toml").write_text(RULES.format('"metrics.mae < 30"'))
    write(tmp_path / "retrain.ipynb", cell("x = 1", "parameters"))
    store = nbm.get_store()
    firing = fire(store)
    with pytest.raises(error, match=message):
        retrain(
            store, name="diabetes", alert="drift", firing_id=firing,
            notebook=tmp_path / notebook, parameters=parameters,
        )  # fmt: skip
    assert kinds(store, firing) == ["fired"]


@pytest.mark.parametrize(
    ("text", "value"),
    [("True", True), ("None", None), ("12", 12), ("-1e3", -1000.0), ("0.5", 0.5), ("true", "true")],
)
def test_a_command_line_parameter_is_read_as_papermill_reads_it(text, value):
    assert parameter_value(text) == value and type(parameter_value(text)) is type(value)


@pytest.mark.parametrize(
    ("source", "args", "message"),
    [
        (None, ["-p", "1x", "2"], "Parameter name '1x' is not a Python variable name"),
        ("not json", [], "Notebook does not appear to be JSON"),
    ],
)
def test_execute_refuses_a_bad_parameter_or_notebook_in_one_line(tmp_path, source, args, message):
    notebook = write(tmp_path / "nb.ipynb", cell("x = 1", "parameters"))
    if source is not None:
        notebook.write_text(source)
    result = CliRunner().invoke(main, ["execute", str(notebook), *args])
    assert result.exit_code == 1 and result.output.startswith(f"Error: {notebook}: {message}")


@pytest.mark.kernel
def test_execute_says_which_cell_timed_out(home: Path, tmp_path: Path):
    notebook = write(tmp_path / "slow.ipynb", cell("import time\ntime.sleep(20)"))
    result = CliRunner().invoke(main, ["execute", str(notebook), "--timeout", "1"])
    assert result.exit_code == 1 and result.output.startswith(
        f"Error: {notebook}: a cell timed out."
    )
    assert "time.sleep(20)" in result.output
