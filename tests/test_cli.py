from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import nbmlops as nbm
from nbmlops.cli import main


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


def test_runs_table_csv_and_json(home: Path):
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
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_store_option_points_at_another_store(tmp_path: Path, home: Path):
    other = tmp_path / "elsewhere" / ".nbmlops"
    with nbm.start_run("far", store=other):
        pass
    assert "far" in invoke("--store", str(other), "runs")
    assert "No runs" in invoke("runs")


def test_model_commands_deprecate_then_delete_a_version(home: Path):
    nbm.register_model({"weights": [1.0, 2.0]}, "tiny", format="pickle")
    assert "tiny/1 deprecated: replaced" in invoke(
        "model", "deprecate", "tiny", "1", "--reason", "replaced"
    )
    assert "tiny/1 deleted" in invoke("model", "delete", "tiny", "1", "--window-days", "0")
    versions = json.loads(invoke("model", "versions", "tiny", "--format", "json"))
    assert [v["status"] for v in versions] == ["deleted"]
