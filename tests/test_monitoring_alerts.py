"""Alert rules (issue #15 items 4, 8): the [alerts.*] tables of nbmlops.toml with their line
numbers, conditions evaluated on a real store's prediction log and labels (written by a real
server, or by the server's own log writer), firings deduplicated within the cooldown and across
two monitor processes, webhooks against a real HTTP server on 127.0.0.1, and the CLI's exit
codes."""

from __future__ import annotations

import http.server
import json
import math
import re
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LinearRegression

import nbmlops as nbm
from nbmlops.api._alerts import alert_events, check_alerts, monitor
from nbmlops.cli import main
from nbmlops.errors import RegistryError, RulesFileError
from nbmlops.monitoring.alerts import load_alerts
from nbmlops.monitoring.monitor import evaluate
from nbmlops.store import Store, close_stores, open_store
from nbmlops.store.predictions import COLUMNS, insert_predictions

MAE = 0.4  # the offline MAE m/1 is registered with
SD = MAE / math.sqrt(2 / math.pi)  # normal noise of that mean absolute value


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """m/1 = 2a (offline mae 0.4, trained on X_train) as m@champion; the project is tmp_path."""
    home = tmp_path / ".nbmlops"
    X = pd.DataFrame({"a": np.random.default_rng(0).normal(size=300)})
    with nbm.start_run(store=home) as run:
        nbm.log_dataset(X, "X_train")
        nbm.log_metrics({"mae": MAE})
        nbm.log_model(LinearRegression().fit(X, 2 * X.a), "model")
    nbm.register_model(run.run_id, "m", store=home)
    nbm.set_alias("m", "champion", 1, store=home)
    yield home
    close_stores()


def rules(home: Path, text: str) -> Path:
    path = home.parent / "nbmlops.toml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def log(home: Path, outputs: list[float], *, status: int = 200, at: float | None = None) -> None:
    """Requests answered by m/1, written by the server's log writer (one row each)."""
    rows = []
    for i, y in enumerate(outputs):
        row = dict.fromkeys(COLUMNS)
        row.update(request_id=f"r{at}-{i}", name="m", version=1, status=status, n_rows=1)
        row.update(at=time.time() if at is None else at, latency_ms=1.0, outputs=json.dumps([y]))
        rows.append(row)
    insert_predictions(Store.open(home / "nbmlops.db"), rows)


SKEW = """
    [alerts.skewed]
    model = "m"
    when = ["skew.mae > offline.mae * 1.2", "labels.count >= 30"]
    window = "1d"
    cooldown = "6h"
"""


def test_an_alerts_table_parses_with_defaults_and_the_line_of_each_condition(home: Path):
    path = rules(home, "[rules.m]\nrequire = ['metrics.mae < 1']\n" + SKEW)
    alert = load_alerts(path).alerts["skewed"]
    assert (alert.model_ref, alert.window, alert.cooldown, alert.action) == (
        "m@champion",
        86400,
        21600,
        "notify",
    )
    assert [(r.text, r.line) for r in alert.when] == [
        ("skew.mae > offline.mae * 1.2", 6),
        ("labels.count >= 30", 6),
    ]
    assert (
        load_alerts(rules(home, "[alerts.m]\nwhen = ['errors.rate > 5%']\n")).alerts["m"].cooldown
        == 3600
    )  # the window's


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("when = ['drift_share >= 0.3']\nwhen_all = 1\n", 3, "unknown key 'when_all'"),
        ("window = '1h'\n", 1, "needs when = "),
        (
            "when = [\n  'labels.count >= 1',\n  'skew.auc > 1',\n]\n",
            4,
            "unknown operand 'skew.auc'",
        ),
        ("when = ['drift.age >= 1']\n", 2, "compare true/false values with == or !="),
        ("when = ['labels > 1']\n", 2, "'labels' needs a key"),
        ("when = ['volume > 1']\n", 2, "use drift_share, drift.<column>, drift_score.<column>"),
        ("when = ['1 < 2']\n", 2, "name a monitored value like drift_share"),
        ("when = ['errors.rate > 1']\nwindow = 'soon'\n", 3, "window='soon' is not a duration"),
        ("when = ['errors.rate > 1']\nref = 'prod/1'\n", 3, "Alias 'prod/1' is not valid"),
        (
            "when = ['errors.rate > 1']\naction = 'page'\n",
            3,
            'action must be "notify" or "retrain"',
        ),
        ("when = ['errors.rate > 1']\naction = 'retrain'\n", 1, "needs notebook = "),
        (
            "when = ['errors.rate > 1']\naction = 'retrain'\nnotebook = 'gone.ipynb'\n",
            4,
            "notebook 'gone.ipynb' not found at",
        ),
        ("when = ['errors.rate > 1']\nstop_after = 2\n", 3, 'stop_after is for action = "retrain"'),
        ("when = ['errors.rate > 1']\ntimeout = '1m'\n", 3, 'timeout is for action = "retrain"'),
        ("when = ['errors.rate > 1']\nwebhook = 'ftp://x'\n", 3, "an http:// or https:// URL"),
        ("when = ['errors.rate > 1']\nmetric = 'auc'\n", 3, "metric must be one of mae"),
        (
            "when = ['errors.rate > 1']\nwebhook = 'http://h/'\nwebhook_env = 'H'\n",
            4,
            "give webhook or webhook_env, not both",
        ),
        ("when = ['errors.rate > 1']\nwebhook_env = 'http://h/'\n", 3, "webhook_env is the name"),
    ],
)
def test_a_malformed_alert_names_its_file_and_line(home: Path, body, line, message):
    path = rules(home, "[alerts.m]\n" + body)
    with pytest.raises(RulesFileError, match=message) as info:
        load_alerts(path)
    assert info.value.line == line and str(info.value).startswith(f"{path}:{line}: ")


RETRAIN = "when = ['requests.count >= 0']\naction = 'retrain'\nnotebook = 'retrain.ipynb'\n"
M_RULES = "[rules.m]\nrequire = ['metrics.mae < 1']\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[alerts.m]\n" + RETRAIN, 3, r"promoted by \[rules.m\], and this file has no such"),
        (
            M_RULES + "[alerts.m]\n" + RETRAIN + "parameters = { since = 2024-01-01 }\n",
            7,
            r"Parameter since = datetime.date\(2024, 1, 1\) \(date\) cannot be written as",
        ),
    ],
)
def test_a_retrain_alert_that_could_only_fail_is_refused_with_its_line(home, text, line, message):
    (home.parent / "retrain.ipynb").write_text("{}")
    with pytest.raises(RulesFileError, match=message) as info:
        load_alerts(rules(home, text))
    assert info.value.line == line


def test_a_retrain_notebook_in_a_symlink_loop_is_refused_with_its_line(home: Path):
    (home.parent / "retrain.ipynb").symlink_to(home.parent / "retrain.ipynb")
    with pytest.raises(
        RulesFileError, match=r"notebook 'retrain\.ipynb' cannot be resolved"
    ) as info:
        load_alerts(rules(home, M_RULES + "[alerts.m]\n" + RETRAIN))
    assert info.value.line == 6


def test_a_retrain_that_raises_after_the_firing_is_a_failed_retrain_and_an_error(home: Path):
    notebook = home.parent / "retrain.ipynb"
    notebook.write_text("{}")
    alerts = load_alerts(rules(home, M_RULES + "[alerts.m]\n" + RETRAIN + "stop_after = 1\n"))
    notebook.unlink()  # gone between reading the rules and the firing
    result = evaluate(open_store(home), alerts)
    assert result.exit_code == 3 and result.outcomes[0].status == "fired"
    assert result.lines()[0].startswith(
        "FIRED  m m/1: retrain failed: the retrain could not start (FileNotFoundError: "
    )
    kinds = list(alert_events("m", store=home)["kind"])
    assert kinds == ["fired", "notified", "retrain_failed", "retraining_stopped", "notified"]


def test_the_promotion_rules_of_the_same_file_are_checked_too(home: Path):
    path = rules(home, "[rules.m]\nrequire = ['metrics.mae <']\n" + SKEW)
    with pytest.raises(RulesFileError, match="expected an operand") as info:
        check_alerts(path)
    assert info.value.line == 2


def test_an_alert_fires_once_within_its_cooldown_with_its_values_and_rules(home: Path):
    path = rules(home, SKEW)
    outputs = list(np.random.default_rng(0).normal(size=60))
    log(home, outputs)
    request_ids = [f"rNone-{i}" for i in range(60)]
    nbm.log_labels(request_ids, [y + 1.0 for y in outputs], store=home)  # served mae 1.0
    first = monitor(rules=path, store=home)
    assert [o.status for o in first.outcomes] == ["fired"] and first.exit_code == 1
    assert "skew.mae = 1 > offline.mae * 1.2 = 0.48" in first.lines()[0]
    assert [o.status for o in monitor(rules=path, store=home).outcomes] == ["held"]
    later = evaluate(open_store(home), load_alerts(path), now=time.time() + 6 * 3600 + 1)
    assert [o.status for o in later.outcomes] == ["fired"]
    events = alert_events("m", store=home)
    assert list(events["kind"]) == ["fired", "notified", "fired", "notified"]
    fired = events.payload[0]
    assert fired["rules"]["path"] == str(path) and fired["rules"]["git_status"] == "not in git"
    assert fired["conditions"][1]["values"] == {"labels.count": 60}


def test_values_that_cannot_be_computed_keep_the_alert_quiet_with_a_reason(home: Path):
    when = "['skew.mae > 0', 'errors.rate >= 0', 'labels.coverage >= 0', 'offline.rmse > 0']"
    path = rules(home, f"[alerts.m]\nwhen = {when}\nwindow = '1h'\n")
    outcome = monitor(rules=path, store=home).outcomes[0]
    assert outcome.status == "quiet" and not any(r.passed for r in outcome.conditions)
    assert [r.reason for r in outcome.conditions] == [
        "skew.mae: no labelled requests of m/1 in the last 1 h 00 min",
        "errors.rate: no requests to m in the last 1 h 00 min",
        "labels.coverage: m/1 answered no requests in the last 1 h 00 min",
        "offline.rmse: m/1 recorded no metric 'rmse' (metrics: mae)",
    ]
    assert outcome.line().startswith("QUIET  m m/1: skew.mae: no labelled requests")


def test_errors_rate_counts_4xx_and_5xx_of_the_model(home: Path):
    log(home, [1.0] * 9)
    log(home, [1.0], status=503, at=time.time())
    path = rules(home, "[alerts.m]\nwhen = ['errors.rate >= 10%', 'requests.count == 10']\n")
    outcome = monitor(rules=path, store=home).outcomes[0]
    assert outcome.status == "fired", outcome.line()
    assert outcome.conditions[0].values == {"errors.rate": 0.1}


def test_an_unknown_model_is_an_error_of_that_alert_only(home: Path):
    when = "when = ['requests.count >= 0']\n"
    body = f"[alerts.ghost]\n{when}[alerts.m]\n{when}"
    result = monitor(rules=rules(home, body), store=home)
    assert [o.status for o in result.outcomes] == ["error", "fired"]
    assert "Model 'ghost@champion' not found" in result.outcomes[0].error
    assert result.exit_code == 3


class _Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []
    status: ClassVar[int] = 204

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[http.server.ThreadingHTTPServer]:
    _Hook.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.mark.parametrize("status", [204, 500])
def test_a_webhook_gets_the_firing_and_a_failing_one_is_recorded_not_fatal(home, hook, status):
    _Hook.status = status
    url = f"http://127.0.0.1:{hook.server_port}/hooks/s3cret"
    path = rules(home, f"[alerts.m]\nwhen = ['requests.count >= 0']\nwebhook = '{url}'\n")
    outcome = monitor(rules=path, store=home).outcomes[0]
    assert outcome.status == "fired"
    (posted,) = _Hook.received
    assert (posted["alert"], posted["version"], posted["firing_id"]) == ("m", 1, outcome.firing_id)
    events = alert_events(store=home)
    assert list(events["kind"]) == [
        "fired",
        "notified",
        "notified" if status == 204 else "notify_failed",
    ]
    note = events.payload.iloc[-1]
    assert note["url"] == f"http://127.0.0.1:{hook.server_port}"  # the path (a secret) is not kept
    assert status == 204 or note["reason"] == "HTTP 500 Internal Server Error"


def test_a_webhook_from_the_environment_is_posted_to_and_kept_out_of_the_store(
    home, hook, monkeypatch
):
    _Hook.status = 204
    secret = uuid.uuid4().hex  # not in this file's text, which a run's git diff keeps
    hook_url = f"http://127.0.0.1:{hook.server_port}/hooks/{secret}"
    monkeypatch.setenv("M_HOOK", hook_url)
    path = rules(home, "[alerts.m]\nwhen = ['requests.count >= 0']\nwebhook_env = 'M_HOOK'\n")
    outcome = monitor(rules=path, store=home).outcomes[0]
    assert len(_Hook.received) == 1 and outcome.notifications[-1] == {
        "channel": "webhook",
        "env": "M_HOOK",
        "url": f"http://127.0.0.1:{hook.server_port}",
        "status": 204,
    }
    stored = b"".join(f.read_bytes() for f in home.rglob("*") if f.is_file())
    assert secret.encode() not in stored


def test_a_webhook_variable_not_set_fails_the_notice_and_the_check_warns(home, monkeypatch):
    monkeypatch.delenv("M_HOOK", raising=False)
    path = rules(home, "[alerts.m]\nwhen = ['requests.count >= 0']\nwebhook_env = 'M_HOOK'\n")
    unset = "the environment variable M_HOOK (webhook_env of [alerts.m]) is not set where"
    assert unset in monitor(rules=path, store=home).outcomes[0].notifications[-1]["reason"]
    args = ["--store", str(home), "monitor", "--rules", str(path), "--check"]
    checked = CliRunner().invoke(main, args)
    assert checked.exit_code == 0 and checked.stderr.startswith(f"Warning: [alerts.m]: {unset}")


def test_an_unreachable_webhook_is_recorded_with_the_reason(home: Path):
    path = rules(
        home, "[alerts.m]\nwhen = ['requests.count >= 0']\nwebhook = 'http://127.0.0.1:9/'\n"
    )
    outcome = monitor(rules=path, store=home).outcomes[0]
    assert outcome.status == "fired"
    assert "Connection refused" in outcome.notifications[-1]["reason"]


@pytest.fixture
def not_http() -> Iterator[int]:
    """A port on 127.0.0.1 whose server answers every connection with a line that is not HTTP."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    threading.Thread(target=answer, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def test_a_webhook_that_answers_no_http_is_a_failed_notification(home: Path, not_http: int):
    url = f"http://127.0.0.1:{not_http}/hook"
    path = rules(home, f"[alerts.m]\nwhen = ['requests.count >= 0']\nwebhook = '{url}'\n")
    outcome = monitor(rules=path, store=home).outcomes[0]
    assert (outcome.status, outcome.error) == ("fired", None)
    assert outcome.notifications[-1]["reason"] == "BadStatusLine: SSH-2.0-OpenSSH_9.6\r\n"
    assert list(alert_events("m", store=home)["kind"])[-1] == "notify_failed"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h:abc/x", "webhook 'http://h:abc/x' has no usable port (Port could not be cast"),
        ("https:///x", "an http:// or https:// URL with a host, not 'https:///x'"),
        ("http://h:99999/", "has no usable port (Port out of range 0-65535)"),
        ("https://u:pw@h/", "webhook cannot carry a user:password@; put the secret in the path"),
    ],
)
def test_a_webhook_url_that_cannot_be_posted_to_is_refused_with_its_line(home, url, message):
    path = rules(home, f"[alerts.m]\nwhen = ['requests.count >= 0']\nwebhook = '{url}'\n")
    with pytest.raises(RulesFileError, match=re.escape(message)) as info:
        load_alerts(path)
    assert info.value.line == 3


def test_the_cli_exit_codes_and_the_check(home: Path):
    runner = CliRunner()
    path = rules(home, "[alerts.m]\nwhen = ['requests.count >= 0']\ncooldown = '1h'\n")
    args = ["--store", str(home), "monitor", "--rules", str(path)]
    fired = runner.invoke(main, [*args, "--once"])
    assert fired.exit_code == 1 and fired.output.startswith("FIRED  m m/1: requests.count = 0")
    assert runner.invoke(main, args).exit_code == 0  # held by the cooldown
    checked = runner.invoke(main, [*args, "--check"])
    assert checked.exit_code == 0 and "0 [rules.*] and 1 [alerts.*] tables" in checked.output
    rules(home, "[alerts.m]\nwhen = ['requests.count >= ']\n")
    broken = runner.invoke(main, args)
    assert broken.exit_code == 2 and f"{path}:2: " in broken.output
    assert runner.invoke(main, [*args, "--once", "--every", "5m"]).exit_code == 2


TOO_DEEP = "a = " + "[" * 3000 + "]" * 3000 + "\n"  # tomllib recurses past Python's limit


def test_a_monitoring_loop_goes_on_after_a_round_it_cannot_run(home: Path):
    path, seen = rules(home, TOO_DEEP), []

    def on_round(result):
        seen.append(result)
        if len(seen) == 2:
            raise KeyboardInterrupt  # Ctrl-C
        rules(home, "[alerts.m]\nwhen = ['requests.count >= 0']\n")

    last = monitor(once=False, every=0.01, rules=path, on_round=on_round, store=home)
    assert "invalid TOML: arrays or tables nested too deeply" in seen[0].error
    assert [o.status for o in last.outcomes] == ["fired"]
    once = CliRunner().invoke(
        main, ["--store", str(home), "monitor", "--rules", str(rules(home, TOO_DEEP))]
    )
    assert once.exit_code == 2 and "nested too deeply" in once.output


def test_giving_every_means_a_loop(home: Path):
    path, rounds = rules(home, "[alerts.m]\nwhen = ['requests.count >= 0']\n"), []

    def on_round(result):
        rounds.append(result)
        if len(rounds) == 2:
            raise KeyboardInterrupt

    monitor(every=0.01, rules=path, on_round=on_round, store=home)
    assert [[o.status for o in r.outcomes] for r in rounds] == [["fired"], ["held"]]


def test_an_alert_on_real_served_traffic_fires_from_the_cli(home: Path):
    path = rules(home, SKEW)
    X = np.random.default_rng(1).normal(size=40)
    with nbm.serve("m@champion", port=0, store=home) as server, httpx.Client() as http:
        ids = []
        for a in X:
            body = {"dataframe_split": {"columns": ["a"], "data": [[float(a)]]}}
            response = http.post(f"{server.url}/invocations", json=body)
            ids.append(response.headers["x-request-id"])
    nbm.log_labels(ids, [2 * a + 1.0 for a in X], store=home)  # every prediction off by 1
    result = CliRunner().invoke(main, ["--store", str(home), "monitor", "--rules", str(path)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("FIRED  skewed m/1: skew.mae = 1 > offline.mae")


@pytest.mark.slow
def test_two_monitor_processes_at_once_record_one_firing(home: Path):
    path = rules(home, "[alerts.m]\nwhen = ['requests.count >= 0']\ncooldown = '1h'\n")
    command = [sys.executable, "-m", "nbmlops.cli", "--store", str(home), "monitor"]
    procs = [subprocess.Popen([*command, "--rules", str(path)]) for _ in range(2)]
    codes = sorted(p.wait(timeout=120) for p in procs)
    assert codes == [0, 1]
    with sqlite3.connect(home / "nbmlops.db") as conn:
        kinds = conn.execute("SELECT kind FROM monitor_events ORDER BY event_id").fetchall()
    assert kinds == [("fired",), ("notified",)]


@pytest.mark.slow
def test_the_skew_alert_false_alarm_rate_on_unshifted_traffic_is_near_nominal(home: Path):
    """1000 windows of 200 labelled requests whose errors have the offline MAE: the alert on
    skew.significant (a 95% interval) fires in at most 5% of them, plus two binomial standard
    errors (1.4%) for the finite number of windows. At 200 labels the delta method's interval
    (monitoring/skew.py) measured 5.1% over 40,000 simulated windows.
    """
    path = rules(
        home, "[alerts.m]\nwhen = ['skew.significant == true']\nwindow = 60\ncooldown = 1\n"
    )
    alerts, store = load_alerts(path), open_store(home)
    rng = np.random.default_rng(2026)
    windows, start, fired = 1000, time.time() - 1000 * 100, 0
    for seed in range(windows):
        at = start + seed * 100
        outputs = list(rng.normal(size=200))
        log(home, outputs, at=at)
        ids = [f"r{at}-{i}" for i in range(200)]
        nbm.log_labels(ids, list(np.add(outputs, rng.normal(scale=SD, size=200))), store=home)
        fired += evaluate(store, alerts, now=at + 30).outcomes[0].status == "fired"
    assert fired / windows <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / windows), fired


def test_a_drift_alert_fires_on_shifted_served_inputs(home: Path):
    when = "['drift_share >= 0.5', 'drift.a == true', 'drift_score.a >= 0']"
    path = rules(home, f"[alerts.m]\nwhen = {when}\nwindow = '1h'\n")
    X_train = pd.DataFrame({"a": np.random.default_rng(0).normal(size=300)})  # the fixture's
    nbm.save_reference(X_train, store=home)  # its profile: the version's drift reference
    shifted = np.random.default_rng(3).normal(loc=3.0, size=(200, 1)).tolist()
    with nbm.serve("m@champion", port=0, store=home) as server:
        body = {"dataframe_split": {"columns": ["a"], "data": shifted}}
        assert httpx.post(f"{server.url}/invocations", json=body).status_code == 200
    at = time.time() + 5  # the window judged ends when the monitor says, not when it runs
    outcome = evaluate(open_store(home), load_alerts(path), now=at).outcomes[0]
    assert outcome.status == "fired", outcome.line()
    assert outcome.conditions[0].values == {"drift_share": 1.0}
    assert outcome.conditions[1].reason == "drift.a = true == true"
    with sqlite3.connect(home / "nbmlops.db") as conn:
        saved = conn.execute("SELECT model_name, window_start, window_end FROM drift_reports")
        assert saved.fetchall() == [("m", at - 3600.0, at)]
        (payload,) = conn.execute("SELECT payload FROM monitor_events WHERE kind = 'fired'")
        assert json.loads(payload[0])["cooldown"] == 3600.0


@pytest.mark.kernel
def test_a_retrain_alert_runs_its_notebook_with_the_window(home: Path):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("window_start = None")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell("raise ValueError(window_start)")]
    nbformat.write(notebook, home.parent / "retrain.ipynb")
    body = "when = ['requests.count >= 0']\naction = 'retrain'\nnotebook = 'retrain.ipynb'\n"
    body += "timeout = '7s'\n"
    path = rules(home, "[rules.m]\nrequire = ['metrics.mae < 1']\n[alerts.m]\n" + body)
    outcome = monitor(rules=path, store=home).outcomes[0]
    assert (outcome.status, outcome.retrain.status) == ("fired", "failed")
    assert outcome.line().startswith("FIRED  m m/1: retrain failed: requests.count = 0")
    kinds = list(alert_events("m", store=home)["kind"])
    assert kinds == ["fired", "notified", "retrain_started", "retrain_failed"]
    events = alert_events("m", store=home)
    started = events.payload[2]
    assert started["parameters"]["window_end"] - started["parameters"]["window_start"] == 3600
    assert started["timeout"] == 7
    assert events.summary[0] == "retrain: requests.count = 0 >= 0"
    assert events.summary[1] == "log logged"
    assert events.summary[2].startswith("retrain.ipynb(alert='m', champion=1, firing_id=1")
    assert events.summary[3].startswith("ValueError: ")


@pytest.mark.kernel
def test_a_rules_file_broken_while_the_retrain_ran_is_told_as_such(home: Path):
    import nbformat

    path = rules(home, M_RULES + "[alerts.m]\n" + RETRAIN)
    parameters = nbformat.v4.new_code_cell("rules = None")
    parameters.metadata["tags"] = ["parameters"]
    register = "from sklearn.dummy import DummyRegressor\nimport nbmlops as nbm\n" + (
        "nbm.register_model(DummyRegressor().fit([[0]], [1]), 'm')\n"
        "open(rules, 'w').write('[rules.m\\n')  # a checkout under way"
    )
    cells = [parameters, nbformat.v4.new_code_cell(register)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), home.parent / "retrain.ipynb")
    path.write_text(path.read_text() + f"parameters = {{ rules = '{path}' }}\n")
    result = monitor(rules=path, store=home)
    assert result.exit_code == 3
    stage = "promoting the candidates failed after the notebook ran (RulesFileError: "
    assert stage in result.outcomes[0].error
    kinds = list(alert_events("m", store=home)["kind"])
    assert kinds == ["fired", "notified", "retrain_started", "retrain_finished", "retrain_failed"]


def test_the_alerts_file_reads_as_its_alerts(home: Path):
    path = rules(home, "[alerts.m]\nwhen = ['labels.count >= 5', 'errors.rate > 0.1']\nref = '1'\n")
    assert repr(load_alerts(path)).splitlines()[1:] == [
        "  [alerts.m] m/1: notify when labels.count >= 5 and errors.rate > 0.1"
    ]


def test_no_rules_file_says_what_to_write_in_one(home: Path):
    with pytest.raises(
        RegistryError,
        match=r"No nbmlops.toml found from .* with \[alerts.<name>\] "
        r"tables \(when, window...\), commit it, or pass rules=\.",
    ):
        monitor(store=home)
