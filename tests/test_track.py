from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbmlops as nbm


def run(ip: InteractiveShell, source: str, cell_id: str | None = "cell-1") -> Any:
    return ip.run_cell(source, store_history=True, cell_id=cell_id)


def last_run() -> nbm.Run:
    return nbm.get_run(nbm.runs()["run_id"][0])


def test_literal_params_are_captured_with_their_line(shell):
    run(shell, "%%track\nlr = 0.01\nlayers = [64, 32]\nshape = (3, 4)\nopts = {'a': 1}\nm = -2")
    record = last_run()
    assert record.params == {
        "lr": 0.01,
        "layers": "[64, 32]",
        "shape": "[3, 4]",
        "opts": '{"a": 1}',
        "m": -2,
    }
    sources = dict(nbm.sql("SELECT key, source FROM params").values.tolist())
    assert sources["lr"] == "literal:2" and sources["m"] == "literal:6"


def test_sklearn_fit_gives_params_metrics_model_and_data(shell):
    run(
        shell,
        "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import accuracy_score\n"
        "X = pd.DataFrame({'a': [0, 1, 0, 1, 0, 1], 'b': [1, 1, 0, 0, 1, 0]})\n"
        "y = pd.Series([0, 1, 0, 1, 0, 1])",
        cell_id="setup",
    )
    run(
        shell,
        "%%track fit\nclf = LogisticRegression(C=0.5)\nclf.fit(X, y)\n"
        "acc = accuracy_score(y, clf.predict(X))\nr2 = clf.score(X, y)\npred = X.assign(p=1)",
    )
    record = last_run()
    assert record.params["LogisticRegression.C"] == 0.5
    assert record.metrics == {"acc": 1.0, "r2": 1.0}
    roles = {(d["role"], d["name"]) for d in record.datasets}
    assert {("input", "X"), ("input", "y"), ("output", "pred")} <= roles
    assert [a["name"] for a in record.artifacts if a["kind"] == "model"] == ["clf"]
    sources = dict(nbm.sql("SELECT key, source FROM latest_metrics").values.tolist())
    assert sources == {"acc": "sklearn.metrics:4", "r2": "score:5"}


def test_cell_displays_and_binds_exactly_as_without_the_magic(shell, capsys):
    plain = run(shell, "x = 20\nx * 2 + 2", cell_id="plain")
    tracked = run(shell, "%%track\ny = 20\ny * 2 + 2", cell_id="tracked")
    assert tracked.result == plain.result == 42
    assert shell.user_ns["y"] == 20
    out = capsys.readouterr().out
    assert out.count("Out[") == 2 and "42" in out


def test_trailing_semicolon_still_hides_the_value(shell, capsys):
    result = run(shell, "%%track\n41 + 1;")
    assert result.result is None


def test_exception_is_the_users_with_a_traceback_at_their_line(shell, capsys):
    result = run(shell, "%%track\na = 1\nb = a / 0")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert "----> 3 b = a / 0" in text
    assert "nbmlops" not in text.split("ZeroDivisionError")[0].split("Traceback")[-1]
    record = last_run()
    assert record.status == "failed" and record.info["error_type"] == "ZeroDivisionError"


def test_top_level_await_works_in_a_tracked_cell(shell):
    result = run(shell, "%%track\nimport asyncio\nawait asyncio.sleep(0)\nvalue = 5\nvalue")
    assert result.result == 5 and last_run().status == "finished"


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("%%track --nope", "--nope"),
        ("%%track --tag novalue", "KEY=VALUE"),
        ("%%track a b", "unrecognized arguments: b"),
        ("%%trackit", "%%trackit"),
    ],
)
def test_bad_arguments_name_the_problem_and_run_nothing(shell, capsys, line, named):
    result = run(shell, f"{line}\nside_effect = 1")
    assert result.error_in_exec is not None or result.error_before_exec is not None
    captured = capsys.readouterr()
    assert named in captured.err + captured.out
    assert "side_effect" not in shell.user_ns
    assert nbm.runs().empty


def test_usage_error_text(shell, capsys):
    run(shell, "%%track --nope\nx = 1")
    captured = capsys.readouterr()
    assert "UsageError" in captured.err + captured.out
    assert "--nope" in captured.err + captured.out


def test_help_documents_every_argument(shell):
    doc = shell.find_cell_magic("track").__doc__
    for option in (
        "--experiment",
        "--params",
        "--metrics",
        "--data",
        "--tag",
        "--no-auto",
        "--quiet",
    ):
        assert option in doc


def test_reload_leaves_no_duplicate_hooks(shell):
    before = {e: len(c) for e, c in shell.events.callbacks.items()}
    shell.run_line_magic("reload_ext", "nbmlops")
    shell.run_line_magic("reload_ext", "nbmlops")
    assert {e: len(c) for e, c in shell.events.callbacks.items()} == before
    run(shell, "%%track\nq = 1")
    assert len(nbm.runs()) == 1


def test_explicit_params_metrics_data_tags_and_no_auto(shell):
    run(shell, "import numpy as np\narr = np.arange(5)\nscore = 0.7\nlr = 0.1", cell_id="setup")
    run(
        shell,
        "%%track named -e exp --params lr --metrics score --data arr --tag team=a "
        "--no-auto --quiet\nunused = 3",
    )
    record = last_run()
    assert record.params == {"lr": 0.1}
    assert record.metrics == {"score": 0.7}
    assert [d["name"] for d in record.datasets] == ["arr"]
    assert record.tags == {"team": "a"}
    assert (record.info["experiment"], record.name) == ("exp", "named")


def test_summary_line_after_the_cell(shell, capsys):
    run(shell, "%%track demo\nlr = 0.5")
    out = capsys.readouterr().out
    assert "run " in out and "'demo' finished" in out and "1 params" in out


def test_rerun_links_to_the_previous_run_of_the_cell(shell):
    run(shell, "%%track\nx = 1", cell_id="c")
    first = last_run().run_id
    run(shell, "%%track\nx = 2", cell_id="c")
    assert last_run().info["previous_run_id"] == first
    assert last_run().info["cell_id"] == "c"


def test_every_executed_cell_is_recorded_cheaply(shell, db: sqlite3.Connection):
    run(shell, "a = 1", cell_id="u1")
    run(shell, "a = 2", cell_id="u1")
    run(shell, "1 / 0", cell_id="u2")
    rows = db.execute(
        "SELECT cell_id, status, run_id FROM cell_executions ORDER BY execution_id"
    ).fetchall()
    assert rows == [("u1", "ok", None), ("u1", "ok", None), ("u2", "error", None)]
    history = nbm.cell_history("u1")
    assert history["version"].tolist() == [1, 2]
    assert history["source"].tolist() == ["a = 1", "a = 2"]


def test_cell_diff_between_two_runs(shell):
    run(shell, "%%track\nx = 1\ny = 2", cell_id="c")
    first = last_run().run_id
    run(shell, "%%track\nx = 1\ny = 3", cell_id="c")
    diff = nbm.cell_diff(first, last_run().run_id)
    assert "-y = 2" in str(diff) and "+y = 3" in str(diff)
    assert "#ffebe9" in diff._repr_html_()
    assert nbm.cell_history(first)["runs"].map(len).tolist() == [1, 1]


def test_variable_from_a_cell_changed_since_is_flagged_stale(shell, capsys):
    run(shell, "x = 1\nold = 5", cell_id="defs")
    run(shell, "x = 1", cell_id="defs")  # 'old' now comes from a version that is gone
    run(shell, "%%track\ntotal = old + x", cell_id="use")
    assert last_run().tags["stale_inputs"] == "old"
    assert "old (from cell defs)" in capsys.readouterr().err


def test_cell_edited_in_the_saved_notebook_flags_stale(shell, tmp_path, monkeypatch):
    notebook = tmp_path / "nb.ipynb"
    monkeypatch.setenv("NBMLOPS_NOTEBOOK", str(notebook))
    run(shell, "base = 10", cell_id="defs")
    cells = [
        {
            "cell_type": "code",
            "id": "defs",
            "source": "base = 99",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
        }
    ]
    notebook.write_text(
        json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    run(shell, "%%track\ny = base * 2", cell_id="use")
    assert last_run().tags["stale_inputs"] == "base"


def test_cell_id_falls_back_to_the_saved_notebook(shell, tmp_path, monkeypatch):
    notebook = tmp_path / "nb.ipynb"
    cells = [
        {
            "cell_type": "code",
            "id": "saved-id",
            "source": ["%%track\n", "z = 1"],
            "metadata": {},
            "outputs": [],
            "execution_count": None,
        }
    ]
    notebook.write_text(
        json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    monkeypatch.setenv("NBMLOPS_NOTEBOOK", str(notebook))
    run(shell, "%%track\nz = 1", cell_id=None)
    info = last_run().info
    assert (info["cell_id"], info["notebook"]) == ("saved-id", str(notebook))
    assert info["experiment"] == "nb"


def test_files_read_are_recorded_with_how(shell, tmp_path):
    import numpy as np

    (tmp_path / "t.csv").write_text("a\n1\n")
    (tmp_path / "notes.txt").write_text("hi")
    np.save(tmp_path / "arr.npy", np.arange(3))
    run(shell, "import pandas as pd, numpy as np", cell_id="imports")
    run(
        shell,
        f"%%track\nt = pd.read_csv({str(tmp_path / 't.csv')!r})\n"
        f"text = open({str(tmp_path / 'notes.txt')!r}).read()\n"
        f"arr = np.load({str(tmp_path / 'arr.npy')!r})\n"
        f"with open({str(tmp_path / 'out.txt')!r}, 'w') as f:\n    f.write('x')",
    )
    files = {Path(d["name"]).name: d["source"] for d in last_run().datasets if d["kind"] == "file"}
    assert files == {"t.csv": "pandas.read_csv", "notes.txt": "open", "arr.npy": "numpy.load"}


def test_figures_made_in_the_cell_are_saved(shell):
    run(
        shell,
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt",
        cell_id="imports",
    )
    run(shell, "untouched = plt.figure()", cell_id="earlier")  # open, never drawn
    run(shell, "%%track\nfig, ax = plt.subplots()\nax.plot([1, 2, 3]);")
    figures = [a for a in last_run().artifacts if a["kind"] == "figure"]
    assert len(figures) == 1 and figures[0]["media_type"] == "image/png"
    shell.run_cell("plt.close('all')")


def test_odd_object_costs_only_that_item(shell, capsys):
    run(
        shell,
        "import pandas as pd\nodd = pd.DataFrame({'a': [object()]})\nlr = 0.1",
        cell_id="setup",
    )
    result = run(shell, "%%track\nn = len(odd)\nn")
    assert result.result == 1
    record = last_run()
    assert record.status == "finished"
    assert "input odd" in capsys.readouterr().err


def test_locked_store_still_runs_the_cell_with_one_warning(shell, home, capsys):
    nbm.get_store().busy_timeout = 0.2
    nbm.get_store().close()
    blocker = sqlite3.connect(home / "nbmlops.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        result = run(shell, "%%track\nv = 6 * 7\nv")
    finally:
        blocker.execute("ROLLBACK")
    assert result.result == 42 and result.error_in_exec is None
    err = capsys.readouterr().err
    assert err.count("nbmlops warning") == 1 and "not tracked" in err


def test_nbmlops_line_magic_shows_store_and_last_run(shell, capsys):
    run(shell, "%%track first\nk = 1")
    capsys.readouterr()
    shell.run_line_magic("nbmlops", "--experiment other")
    out = capsys.readouterr().out
    assert "nbmlops.db" in out and "experiment  other" in out and "'first' finished" in out


def test_cells_before_a_run_answer_which_code_ran_first(shell):
    run(shell, "import math", cell_id="imports")
    run(shell, "radius = 2", cell_id="setup")
    run(shell, "%%track area\narea = math.pi * radius ** 2", cell_id="area")
    before = nbm.cells_before(last_run().run_id)
    assert before["cell_id"].tolist() == ["setup", "imports"]
    assert before["source"].tolist() == ["radius = 2", "import math"]
    assert before["status"].tolist() == ["ok", "ok"]


def test_a_model_trained_under_track_is_checked_against_its_training_data(shell):
    """No save_reference: the training cell keeps a profile of what it read, registering pins it,
    and check_drift("name/1", new_data) uses it."""
    run(
        shell,
        "import numpy as np, pandas as pd\nfrom sklearn.linear_model import LinearRegression\n"
        "rng = np.random.default_rng(0)\n"
        "X_train = pd.DataFrame({'a': rng.normal(size=2000), 'b': rng.normal(size=2000)})\n"
        "y_train = X_train['a'] * 2 + X_train['b']",
        cell_id="setup",
    )
    run(shell, "%%track fit\nmodel = LinearRegression().fit(X_train, y_train)", cell_id="fit")
    trained = last_run()
    assert trained.status == "finished"
    nbm.register_model(trained.run_id, "lin")
    ns = shell.user_ns
    same = ns["X_train"].sample(frac=0.5, random_state=1)
    shifted = same.assign(a=same["a"] + 3)
    assert not nbm.check_drift("lin/1", same).dataset_drift
    report = nbm.check_drift("lin/1", shifted)
    drifted = report.to_frame().set_index("column")["drifted"]
    assert drifted["a"] and not drifted["b"]


def test_training_data_with_nothing_to_profile_leaves_the_cell_as_it_is(shell):
    run(
        shell,
        "import pandas as pd\nfrom sklearn.dummy import DummyRegressor\n"
        "X = pd.DataFrame({'when': pd.to_datetime(['2026-01-01', '2026-01-02'])})\n"
        "y = pd.Series([1.0, 2.0])",
        cell_id="setup",
    )
    result = run(shell, "%%track\nm = DummyRegressor().fit(X, y)\nm.predict(X)[0]", cell_id="fit")
    assert result.result == 1.5
    assert last_run().status == "finished"


def test_a_tracked_cell_writes_its_outcome_and_execution_in_one_transaction(shell, db):
    run(shell, "%%track\nx = 1", cell_id="warm")  # the experiment and environment now exist
    statements: list[str] = []
    nbm.get_store().connection().set_trace_callback(statements.append)
    run(shell, "%%track\nlr = 0.1\nacc = 0.9", cell_id="c")
    nbm.get_store().connection().set_trace_callback(None)
    assert [s for s in statements if s.startswith(("BEGIN", "SAVEPOINT"))] == [
        "BEGIN IMMEDIATE"
    ] * 2
    row = db.execute("SELECT status, run_id FROM cell_executions WHERE cell_id = 'c'").fetchone()
    assert row == ("ok", last_run().run_id)
