"""Finished runs push themselves to a real MLflow server in the background (issue #19 item 4)."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import nbmlops as nbm
from mlflow_server import MlflowServer, Outage, free_port, running_server
from nbmlops.api._sync import sync_in_background, sync_status
from nbmlops.capture import run as capture_run
from nbmlops.errors import RulesFileError, SyncError
from nbmlops.sync import background, mlflow_rest

ENV = "NBMLOPS_MLFLOW_URI"


@pytest.fixture(scope="session")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with running_server(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(mlflow_rest, "BACKOFF_S", 0.01)  # a down server is seen at once
    yield
    background.stop_all()


def _mlflow_uri(url: str) -> str:
    return url.replace("http://", "mlflow://")


def _on_server(mlflow: MlflowServer, run_id: str) -> dict[str, Any] | None:
    ids = [
        e["experiment_id"]
        for e in mlflow.api("POST", "experiments/search", json={"max_results": 1000})["experiments"]
    ]
    found = mlflow.api(
        "POST",
        "runs/search",
        json={"experiment_ids": ids, "filter": f"tags.`nbmlops.run_id` = '{run_id}'"},
    )
    runs = found.get("runs", [])
    return runs[0] if runs else None


def _finished_on_server(mlflow: MlflowServer, run_id: str) -> dict[str, Any] | None:
    remote = _on_server(mlflow, run_id)  # a push under way shows it created, still RUNNING
    return remote if remote and remote["info"]["status"] == "FINISHED" else None


def _eventually(check: Callable[[], Any], seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.1)
    return result


def _magic_output(shell, name: str) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        shell.run_line_magic(name, "")
    return buffer.getvalue()


def _finished_run(experiment: str) -> str:
    with nbm.start_run("fit", experiment=experiment) as run:
        nbm.log_metric("loss", 0.5)
    return run.run_id


def test_a_tracked_cell_is_on_the_server_within_seconds(shell, home, mlflow, monkeypatch):
    monkeypatch.setenv(ENV, _mlflow_uri(mlflow.url))
    shell.run_line_magic("reload_ext", "nbmlops")
    assert shell.run_cell("%%track fit -e bg-cell\nlr = 0.1\n", cell_id="c-1").success
    [run_id] = nbm.runs()["run_id"]
    remote = _eventually(lambda: _finished_on_server(mlflow, run_id))
    tags = {t["key"]: t["value"] for t in remote["data"]["tags"]}
    assert tags["nbmlops.cell_id"] == "c-1"
    status = _eventually(lambda: (s := sync_status()) and s.pushed and s)
    assert (status.pending, status.last_error, status.catching_up) == (0, None, False)


def test_a_server_that_never_answers_costs_the_cell_nothing(shell, home, monkeypatch):
    with socket.socket() as silent:  # takes connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv(ENV, f"mlflow://127.0.0.1:{silent.getsockname()[1]}")
        shell.run_line_magic("reload_ext", "nbmlops")
        assert shell.run_cell("%%track warm -e slow\nx = 1\n").success
        started = time.perf_counter()
        assert shell.run_cell("%%track fit -e slow\nx = 2\n").success
        assert time.perf_counter() - started < 2.0  # a push in the cell would wait 60 s
        assert sync_status().pending == 2


def test_a_down_server_shows_in_nbmlops_and_the_runs_stay_pending(shell, home, monkeypatch):
    uri = f"mlflow://127.0.0.1:{free_port()}"  # nobody listens there
    monkeypatch.setenv(ENV, uri)
    shell.run_line_magic("reload_ext", "nbmlops")
    assert shell.run_cell("%%track warm -e down\nx = 1\n").success
    assert shell.run_cell("%%track fit -e down\nx = 2\n").success
    status = _eventually(lambda: (s := sync_status()) and s.last_error and s)
    assert status.pending == 2 and status.last_success is None
    assert "did not answer" in status.last_error
    out = _magic_output(shell, "nbmlops")
    assert (
        f"sync        {uri} (2 runs pending, nothing pushed yet, last error, retried by itself: "
        in out
    )
    assert "did not answer GET /api/2.0/mlflow/experiments/get-by-name" in out


def test_a_run_waiting_for_a_server_that_comes_back_is_pushed(home, mlflow, monkeypatch):
    monkeypatch.setattr(background, "BACKOFF_S", 0.5)
    outage = Outage(int(mlflow.url.rsplit(":", 1)[1]))
    outage.cut()
    monkeypatch.setenv(ENV, outage.url)
    run_id = _finished_run("bg-retry")
    _eventually(lambda: (s := sync_status()) and s.last_error)
    assert _on_server(mlflow, run_id) is None
    outage.restore()
    assert _eventually(lambda: _finished_on_server(mlflow, run_id))
    assert _eventually(lambda: sync_status().last_error is None)


def test_runs_of_an_earlier_session_are_caught_up_at_start(home, mlflow, monkeypatch):
    run_id = _finished_run("bg-catch-up")  # no server configured: recorded locally only
    assert sync_status() is None and sync_in_background() is None
    monkeypatch.setenv(ENV, mlflow.url)
    assert sync_in_background().catching_up
    assert _eventually(lambda: _finished_on_server(mlflow, run_id))


def test_the_toml_setting_works_the_same(home, mlflow, tmp_path):
    (tmp_path / "nbmlops.toml").write_text(f'[sync]\nmlflow = "{_mlflow_uri(mlflow.url)}"\n')
    run_id = _finished_run("bg-toml")
    assert _eventually(lambda: _finished_on_server(mlflow, run_id))
    assert sync_status().source == f"{tmp_path / 'nbmlops.toml'}:2"


@pytest.mark.parametrize(
    ("env", "toml", "error", "message"),
    [
        (
            "ftp://host:1",
            None,
            SyncError,
            f"{ENV}: 'ftp://host:1' is not an MLflow tracking server address: give "
            "mlflow://HOST:PORT or http://HOST:PORT. Runs are recorded here only.",
        ),
        (
            None,
            '[sync]\nmlflow = "localhost:5000"\n',
            RulesFileError,
            "nbmlops.toml:2: [sync] mlflow: 'localhost:5000' is not an MLflow tracking server",
        ),
        (
            None,
            '[sync]\nmlflow = "mlflow://h:1"\nserver = "x"\n',
            RulesFileError,
            "nbmlops.toml:3: unknown key 'server' in [sync]; the keys are mlflow",
        ),
        (None, "[sync]\nmlflow = 5000\n", RulesFileError, "[sync] mlflow must be a string"),
    ],
)
def test_a_bad_setting_is_a_clear_message_and_runs_still_record(
    home, tmp_path, monkeypatch, env, toml, error, message
):
    if env:
        monkeypatch.setenv(ENV, env)
    if toml:
        (tmp_path / "nbmlops.toml").write_text(toml)
    with pytest.raises(error) as caught:
        sync_in_background()
    assert message in str(caught.value)
    with pytest.warns(UserWarning, match="nbmlops does not push runs in the background") as w:
        run_id = _finished_run("bad")
    assert message in str(w[0].message)
    assert nbm.get_run(run_id).status == "finished" and sync_status() is None


def test_a_failing_finished_hook_costs_one_warning_not_the_run(home):
    def broken(run: capture_run.Run) -> None:
        raise RuntimeError("hook down")

    capture_run.finished_hooks.append(broken)
    try:
        with pytest.warns(UserWarning, match=r"recorded run \w+, but what runs after its end"):
            run_id = _finished_run("hooked")
    finally:
        capture_run.finished_hooks.remove(broken)
    assert nbm.get_run(run_id).status == "finished"


_SCRIPT = """
import time, nbmlops as nbm
with nbm.start_run("exit", experiment="bg-exit") as run:
    nbm.log_metric("loss", 0.5)
print(run.run_id, time.monotonic(), flush=True)
"""


@pytest.mark.parametrize("up", [True, False])
def test_interpreter_exit_flushes_briefly_then_gives_up_silently(home, mlflow, up):
    uri = mlflow.url if up else f"mlflow://127.0.0.1:{free_port()}"
    process = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env={**os.environ, ENV: uri},
        capture_output=True,
        text=True,
        check=True,
    )
    ended = time.monotonic()
    run_id, printed = process.stdout.split()
    assert ended - float(printed) < background.EXIT_FLUSH_S + 1.5
    assert process.stderr == ""
    assert (_finished_on_server(mlflow, run_id) is not None) is up


def test_start_run_with_no_server_configured_does_not_load_the_http_client(tmp_path: Path):
    code = (
        "import sys, nbmlops as nbm\n"
        "with nbm.start_run('light'):\n"
        "    pass\n"
        "print('httpx' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NBMLOPS_MLFLOW_URI"}
    env["NBMLOPS_HOME"] = str(tmp_path / ".nbmlops")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.stdout.strip() == "False", done.stderr
