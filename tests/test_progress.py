"""The live progress line of a long ``%%track`` cell (issue #20 item 2): its text, and what a
real Jupyter kernel sends for it on iopub."""

from __future__ import annotations

import threading
import time
from typing import Any

import nbformat
import numpy as np
import pytest
import torch

import nbmlops as nbm
from nbmlops.capture import progress
from nbmlops.capture.cell import TrackOptions
from nbmlops.capture.progress import THREAD_NAME, last_points, progress_line
from nbmlops.capture.session import CaptureSession, CellStart
from nbmlops.headless import execute_notebook
from test_kernel import kernel  # noqa: F401


def test_the_line_names_the_run_its_time_and_each_metric_at_its_step():
    points = [("losses", 4512, 0.0123), ("val_rmse", 80, 3.2109), ("bad", 3, None)]
    line = progress_line("3f2a1c", "mlp", 12.3, points)
    assert line == (
        "run 3f2a1c 'mlp' running 12 s · losses 0.0123 (step 4,512) · val_rmse 3.211 (step 80)"
        " · bad nan (step 3)"
    )
    many = [(f"m{i}", i, 1.0) for i in range(6)]
    assert progress_line("ab", None, 2, many).endswith("· m3 1 (step 3) +2")


@pytest.mark.parametrize(
    ("obj", "points"),
    [
        ([0.5, np.float32(0.25)], [("x", 1, 0.25)]),
        ([], []),
        ([1.0, True], []),  # a flag, not a number
        ([1.0, torch.tensor(0.5)], []),  # a tensor is never read from the thread
        ({0: 0.9, 1: np.int64(7)}, [("x", 1, 7.0)]),
        (
            {"loss": [3.0, 2.0], "acc": [0.1], "note": "text"},
            [("x.loss", 1, 2.0), ("x.acc", 0, 0.1)],
        ),
        ("a string", []),
    ],
)
def test_the_latest_point_of_each_curve_the_cell_fills(obj: object, points: list[Any]):
    assert last_points("x", obj) == points


def test_the_run_keeps_each_metrics_last_point_as_it_is_logged(home):
    with nbm.start_run() as run:
        nbm.log_metric("loss", 0.5)
        nbm.log_metric("loss", 0.25)
        nbm.log_metrics({"acc": 0.7, "loss": 0.2}, step=10)
        with pytest.raises(TypeError, match="Metric 'b' must be a real number"):
            nbm.log_metrics({"acc": 0.9, "b": "x"}, step=11)  # none of them logged
        nbm.log_metric("acc", float("nan"), step=12)
        assert run.latest_points() == {"loss": (10, 0.2), "acc": (12, None)}


class BrokenBoard:
    def write(self, text: str) -> None:
        raise OSError("the front end is gone")


def test_a_failing_display_is_one_note_and_the_run_goes_on(home, monkeypatch):
    monkeypatch.setattr(progress, "GRACE_S", 0.0)
    session = CaptureSession()
    source = "%%track\nx = 1"
    start = CellStart(source, None, None, 1, TrackOptions(), "Default", board=BrokenBoard())
    session.begin(start, {})
    time.sleep(0.2)
    report = session.finish(None)
    assert report.summary is not None and report.summary.status == "finished"
    assert report.notes == ("the live progress line stopped (OSError: the front end is gone)",)
    assert THREAD_NAME not in [t.name for t in threading.enumerate()]


def test_outside_a_kernel_no_thread_and_the_summary_is_printed(shell, capsys, monkeypatch):
    monkeypatch.setattr(progress, "GRACE_S", 0.0)
    shell.run_cell(
        "%%track\nimport threading, time\ntime.sleep(0.2)\n"
        "names = [t.name for t in threading.enumerate()]"
    )
    assert THREAD_NAME not in shell.user_ns["names"]
    assert "finished in" in capsys.readouterr().out


# -- a real kernel ------------------------------------------------------------------------------

LOOP = """%%track mlp
import time
import nbmlops as nbm
losses = []
for epoch in range(35):
    time.sleep(0.1)
    losses.append(1 / (epoch + 1))
    nbm.log_metric("val_rmse", 10.0 - epoch, step=epoch)
"""


def iopub(client: Any, code: str) -> tuple[str, list[dict[str, Any]]]:
    """Execute ``code``; its msg_id and every iopub message sent for it, up to idle."""
    msg_id = client.execute(code)
    messages = []
    while True:
        message = client.get_iopub_msg(timeout=60)
        if message["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(message)
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            return msg_id, messages


def lines(messages: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(type, display id, text) of the display messages."""
    kinds = ("display_data", "update_display_data")
    return [
        (
            m["msg_type"],
            m["content"]["transient"]["display_id"],
            m["content"]["data"].get("text/plain", ""),
        )
        for m in messages
        if m["msg_type"] in kinds
    ]


def printed(messages: list[dict[str, Any]]) -> str:
    return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")


def threads(client: Any) -> str:
    code = "import threading; print([t.name for t in threading.enumerate()])"
    return printed(iopub(client, code)[1])


@pytest.mark.kernel
def test_a_long_cell_shows_one_line_updated_in_place_then_its_summary(kernel):  # noqa: F811
    iopub(kernel, "%load_ext nbmlops")
    _, messages = iopub(kernel, LOOP)
    shown = lines(messages)
    assert [kind for kind, _, _ in shown[:2]] == ["display_data", "update_display_data"]
    assert len({display_id for _, display_id, _ in shown}) == 1
    first, *_, last = [text for _, _, text in shown]
    assert first.startswith("run ") and " 'mlp' running " in first
    assert "val_rmse " in first and "losses " in first and "(step " in first
    assert " 'mlp' finished in " in last and "val_rmse=-24" in last
    assert "finished in" not in printed(messages)
    assert THREAD_NAME not in threads(kernel)


@pytest.mark.kernel
def test_a_short_cell_shows_only_its_printed_summary(kernel):  # noqa: F811
    iopub(kernel, "%load_ext nbmlops")
    _, messages = iopub(kernel, "%%track\nx = 1")
    assert lines(messages) == []
    assert "finished in" in printed(messages)


@pytest.mark.kernel
def test_a_cell_failing_in_its_loop_keeps_its_traceback_and_the_thread_ends(kernel):  # noqa: F811
    iopub(kernel, "%load_ext nbmlops")
    failing = LOOP.replace("    time.sleep(0.1)\n", "    time.sleep(0.1)\n    1 / (epoch - 30)\n")
    _, messages = iopub(kernel, failing)
    [error] = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert error["ename"] == "ZeroDivisionError"
    assert " 'mlp' failed in " in lines(messages)[-1][2]
    assert THREAD_NAME not in threads(kernel)


@pytest.mark.kernel
def test_a_quiet_long_cell_clears_its_line(kernel):  # noqa: F811
    iopub(kernel, "%load_ext nbmlops")
    _, messages = iopub(kernel, LOOP.replace("%%track mlp", "%%track --quiet mlp"))
    shown = lines(messages)
    assert "running" in shown[0][2]
    assert shown[-1][0] == "update_display_data" and shown[-1][2] == ""
    assert "finished in" not in printed(messages)


@pytest.mark.kernel
def test_an_executed_notebook_keeps_only_the_summary(home, tmp_path):
    path = tmp_path / "loop.ipynb"
    cells = [nbformat.v4.new_code_cell("%load_ext nbmlops"), nbformat.v4.new_code_cell(LOOP)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    executed = execute_notebook(path, store=home)
    [summary] = [o for o in executed.cells[1].outputs if o["output_type"] == "display_data"]
    assert " 'mlp' finished in " in summary["data"]["text/plain"]
    assert "running" not in str(executed.cells[1].outputs)
