"""Values the store cannot hold are refused when logged, and never cost the run's other values."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbmlops as nbm

SURROGATE = "\ud800"


@pytest.mark.parametrize(
    ("log", "message"),
    [
        (lambda: nbm.log_metric("h", 10**400), "Metric 'h' cannot be stored: a 1329-bit integer"),
        (lambda: nbm.log_metric("h", 1.0, step=2**63), "Metric 'h' at step 9223372036854775808"),
        (lambda: nbm.log_metrics({"ok": 1, "h": 10**400}), "Metric 'h' cannot be stored"),
        (lambda: nbm.log_param("p", SURROGATE), r"Param 'p' value '\\ud800' cannot be stored"),
        (lambda: nbm.log_param(SURROGATE, 1), r"Param key '\\ud800' cannot be stored: it holds"),
        (lambda: nbm.log_param("n", 10**400), "Param 'n' cannot be stored: a 1329-bit integer"),
        (lambda: nbm.log_params({"ok": 1, "p": SURROGATE}), "Param 'p' value"),
        (lambda: nbm.set_tag("t", SURROGATE), "Tag 't' value '\\\\ud800' cannot be stored"),
        (lambda: nbm.set_tag(SURROGATE, "x"), "Tag key"),
        (lambda: nbm.log_dataset([1, 2], name=SURROGATE), "Dataset name"),
        (lambda: nbm.log_model(object(), SURROGATE), "Model name"),
    ],
)
def test_an_unstorable_value_is_refused_at_log_time_and_the_run_keeps_the_rest(
    home: Path, db: sqlite3.Connection, log: Callable[[], None], message: str
):
    with nbm.start_run("r") as run:
        nbm.log_param("kept", 1)
        nbm.log_metric("kept", 0.5)
        with pytest.raises(nbm.InvalidValueError, match=message) as caught:
            log()
        assert "Nothing was logged for it" in str(caught.value)
    assert db.execute("SELECT status FROM runs").fetchall() == [("finished",)]
    assert db.execute("SELECT key FROM params").fetchall() == [("kept",)]
    assert db.execute("SELECT key, value FROM metrics").fetchall() == [("kept", 0.5)]
    assert run.tags == {}


def test_a_step_that_is_not_an_integer_is_a_type_error(home: Path):
    with nbm.start_run(), pytest.raises(TypeError, match="step must be an integer, got str"):
        nbm.log_metric("h", 1.0, step="3")


def test_track_skips_an_unstorable_value_with_one_warning_and_records_the_rest(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
):
    huge = "1" + "0" * 400
    cell = f'%%track --metrics big\nlr = 0.1\nname = "a\\ud800"\nn = {huge}\nbig = {huge}\nk = 3'
    assert shell.run_cell(cell, store_history=True, cell_id="c").success
    run = nbm.get_run(nbm.runs()["run_id"][0])
    assert run.status == "finished"
    assert run.params == {"lr": 0.1, "k": 3}
    [warning] = [line for line in capsys.readouterr().err.splitlines() if "nbmlops" in line]
    assert r"Param 'name' value 'a\ud800' cannot be stored" in warning
    assert "Param 'n' cannot be stored: a 1329-bit integer" in warning
    assert "Metric 'big' cannot be stored" in warning
