from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import nbmlops as nbm
from nbmlops.cli import main
from nbmlops.store import open_store


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        found.append((f"{prefix}{name}", command))
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix}{name} ")
    return found


@pytest.mark.parametrize(("name", "command"), _commands(main))
def test_every_command_and_option_has_help(name: str, command: click.Command):
    assert command.help, f"`nbmlops {name}` has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"`nbmlops {name} {param.opts[0]}` has no help text"


def _two_runs() -> tuple[str, str]:
    ids = []
    for lr in (0.1, 0.2):
        with nbm.start_run(f"lr{lr}") as run:
            run.log_params({"lr": lr, "opt": "adam"})
            run.log_metric("auc", lr + 0.7)
        ids.append(run.run_id)
    return ids[0], ids[1]


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_runs_table_csv_and_json(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "150")  # a terminal wide enough for whole run ids
    first, second = _two_runs()
    table = invoke("runs")
    assert first in table and "metrics.auc" in table
    assert invoke("runs", "--format", "csv").splitlines()[0].startswith("run_id,experiment")
    records = json.loads(invoke("runs", "--format", "json", "--filter", "params.lr > 0.15"))
    assert [r["run_id"] for r in records] == [second]


def test_show_lists_params_and_metrics(home: Path):
    first, _ = _two_runs()
    out = invoke("show", first[:5])
    assert f"run        {first}" in out
    assert "lr   0.1" in out and "auc  0.8" in out


def test_diff_shows_only_what_changed(home: Path):
    first, second = _two_runs()
    out = invoke("diff", first, second)
    assert "lr: 0.1 -> 0.2" in out
    assert "opt" not in out
    assert "environment: same" in out


def test_sql_command(home: Path):
    _two_runs()
    out = invoke("sql", "SELECT count(*) AS n FROM runs", "--format", "json")
    assert json.loads(out) == [{"n": 2}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "zzzz"], "Run 'zzzz' not found"),
        (["runs", "--filter", "params.lr >"], "position"),
        (["sql", "DELETE FROM runs"], "only reads the store"),
    ],
)
def test_errors_are_one_clean_line_not_a_traceback(home: Path, args: list[str], message: str):
    open_store(home)  # an empty store: reading one that does not exist is another error
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_store_option_points_at_another_store(tmp_path: Path, home: Path):
    other = tmp_path / "elsewhere" / ".nbmlops"
    with nbm.start_run("far", store=other):
        pass
    assert "far" in invoke("--store", str(other), "runs")
    open_store(home)  # empty
    assert "No runs" in invoke("runs")


def test_model_commands_deprecate_then_delete_a_version(home: Path):
    nbm.register_model({"weights": [1.0, 2.0]}, "tiny", format="pickle")
    assert "tiny/1 deprecated: replaced" in invoke(
        "model", "deprecate", "tiny", "1", "--reason", "replaced"
    )
    assert "tiny/1 deleted" in invoke("model", "delete", "tiny", "1", "--window-days", "0")
    versions = json.loads(invoke("model", "versions", "tiny", "--format", "json"))
    assert [v["status"] for v in versions] == ["deleted"]


def _wide_runs() -> list[str]:
    """Runs of two experiments with long keys: more columns than 80 characters hold."""
    ids = []
    for i, experiment in enumerate(["vision", "vision", "text"]):
        with nbm.start_run(f"run{i}", experiment=experiment) as run:
            run.log_params({"RandomForestClassifier.n_estimators": 100 + i, "early_stop": i == 1})
            run.log_params({f"vision_only_{k}": k for k in range(6)} if i < 2 else {"tok": "bpe"})
            run.log_metric("accuracy", 0.9 + i / 100)
            run.log_metric("f1", 0.8 + i / 100)
        ids.append(run.run_id)
    return ids


def test_runs_fit_an_80_column_terminal(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "80")
    ids = _wide_runs()
    lines = invoke("runs").splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0] == "all 3 runs: status finished"
    assert lines[2].split()[:5] == ["id", "experiment", "name", "start", "duration"]
    assert lines[3].startswith(ids[-1][:8] + "  text ")
    assert "accuracy" in lines[2] and "metrics." in lines[1]  # the metrics come first
    assert "more columns: " in lines[-2] and lines[-1].endswith("--wide or --columns)")


def test_runs_columns_take_names_and_globs_and_wide_shows_everything(
    home: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COLUMNS", "80")
    _wide_runs()
    chosen = invoke("runs", "--columns", "name,metrics.*").splitlines()
    assert chosen[0].split() == ["name", "metrics.accuracy", "metrics.f1"]
    assert chosen[1].split() == ["run2", "0.92", "0.82"]
    wide = invoke("runs", "--wide").splitlines()
    assert "params.vision_only_5" in wide[0] and "notebook" in wide[0]
    assert max(len(line) for line in wide) > 80


def test_an_unknown_column_is_one_line_with_the_nearest_names(home: Path):
    _wide_runs()
    result = CliRunner().invoke(main, ["runs", "--columns", "metrics.acuracy"])
    assert result.exit_code == 1
    assert "No column 'metrics.acuracy' here; did you mean metrics.accuracy" in result.output


def test_booleans_read_true_and_false_in_show_and_diff(home: Path):
    first, second, _ = _wide_runs()
    assert "early_stop                           false" in invoke("show", first)
    assert "params.early_stop: false -> true" in invoke("diff", first, second).replace(
        "  early_stop", "params.early_stop"
    )


def test_booleans_in_a_frame_are_true_and_false_in_csv_and_tables(
    capsys: pytest.CaptureFixture[str],
):
    import pandas as pd

    from nbmlops.cli import _echo_frame

    frame = pd.DataFrame({"name": ["a", "b"], "flag": pd.array([True, None], dtype="boolean")})
    _echo_frame(frame, "csv", "")
    _echo_frame(frame, "table", "")
    assert capsys.readouterr().out.splitlines() == [
        "name,flag",
        "a,true",
        "b,",
        "name  flag",
        "a     true",
        "b",
    ]


def test_model_show_and_history_are_readable_in_80_columns(
    home: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COLUMNS", "80")
    nbm.register_model({"weights": [1.0, 2.0]}, "tiny", format="pickle")
    nbm.deprecate_model_version("tiny", 1, "replaced by a much better model after a long review")
    shown = invoke("model", "show", "tiny")
    assert "created_at   20" in shown and " UTC\n" in shown  # a time, not epoch seconds
    assert "libraries\n  python" in shown  # a block, not one line of JSON
    history = invoke("model", "history", "tiny").splitlines()
    assert max(len(line) for line in history) <= 80
    assert history[1].split()[:3] == ["at", "kind", "version"]


def test_boolean_params_print_as_true_and_false_in_csv(home: Path):
    with nbm.start_run("flags") as run:
        nbm.log_param("flag", True)
    with nbm.start_run("other"):
        nbm.log_param("flag", False)
    result = CliRunner().invoke(main, ["runs", "--format", "csv", "--columns", "name,params.flag"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == ["other,false", "flags,true"]
    assert nbm.runs()["params.flag"].dtype == "boolean" and run.params["flag"] is True


def test_a_long_show_field_folds_to_a_terminal_and_stays_one_line_in_a_pipe(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from nbmlops.cli import _wrapped_field

    text = "diabetes/3 reviewed 2026-12-06 against diabetes/1: " + "mae down; " * 12 + "/a/b.html"
    _wrapped_field("review", text)
    assert capsys.readouterr().out == f"review     {text}\n"  # a pipe: one line for grep
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "80")
    _wrapped_field("review", text)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 1 and all(len(line) <= 80 for line in lines)
    assert lines[0].startswith("review     diabetes/3") and lines[1].startswith(" " * 11 + "down")
