"""The model server end to end: a real uvicorn server on 127.0.0.1 (a free port), real HTTP
clients (httpx), a real store checked from the API and a second connection."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import nbmlops as nbm
from nbmlops import endpoint_events, endpoints, predictions, serve
from nbmlops.serving.server import ServerHandle
from nbmlops.store import Store, close_stores

COLUMNS = ["a", "b", "c"]
ROW = [1.0, -2.0, 0.5]


class FailsSelfTest:
    """A model whose predict raises on the signature's example row (all zeros)."""

    feature_names_in_ = np.array(COLUMNS, dtype=object)
    n_features_in_ = 3

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if (X.to_numpy() == 0).all():
            raise ValueError("all-zero rows are not supported")
        return np.ones(len(X), dtype=int)


def _train(store: Path, flip: bool = False, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=COLUMNS)
    y = ((X.a > 0) ^ flip).astype(int)
    with nbm.start_run(store=store) as run:
        nbm.log_dataset(X, "X_train")
        nbm.log_model(LogisticRegression().fit(X, y), "model")
    return nbm.register_model(run.run_id, "m", store=store).version


@pytest.fixture(scope="module")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A store with m/1 (positive when a > 0) and m/2 (the opposite); m@champion -> 1."""
    home = tmp_path_factory.mktemp("serving") / ".nbmlops"
    _train(home)
    _train(home, flip=True)
    nbm.set_alias("m", "champion", 1, store=home)
    _copy_db(home / "nbmlops.db", home.parent / "pristine.db")
    yield home
    close_stores()


@pytest.fixture
def store(model_store: Path, tmp_path: Path) -> Path:
    """A private copy of the module's store as first made, for tests that move aliases, lock
    it or count its rows (the objects folder is shared: it is content addressed)."""
    copy = tmp_path / ".nbmlops"
    copy.mkdir()
    _copy_db(model_store.parent / "pristine.db", copy / "nbmlops.db")
    (copy / "objects").symlink_to(model_store / "objects")
    return copy


def _copy_db(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


@pytest.fixture(scope="module")
def server(model_store: Path) -> Iterator[ServerHandle]:
    with serve("m@champion", port=0, store=model_store) as handle:
        yield handle


@pytest.fixture
def http(server: ServerHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def _split(rows: list[list[object]], columns: list[str] = COLUMNS) -> dict[str, object]:
    return {"dataframe_split": {"columns": columns, "data": rows}}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": _split([ROW])},
        {"json": {"dataframe_records": [dict(zip(COLUMNS, ROW, strict=True))]}},
        {"json": {"instances": [ROW]}},
        {"json": {"inputs": {c: [v] for c, v in zip(COLUMNS, ROW, strict=True)}}},
        {"json": {"inputs": [ROW], "params": {"threshold": 0.5}}},
        {"content": b"a,b,c\n1.0,-2.0,0.5\n", "headers": {"content-type": "text/csv"}},
    ],
    ids=["split", "records", "instances", "inputs-columns", "inputs-params", "csv"],
)
def test_every_mlflow_format_scores_the_same_row(http: httpx.Client, kwargs: dict) -> None:
    response = http.post("/invocations", **kwargs)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [1]}
    assert response.headers["x-model-name"] == "m"
    assert response.headers["x-model-version"] == "1"
    assert response.headers["x-model-digest"].startswith("sha256:")
    assert len(response.headers["x-request-id"]) == 32


def test_v2_infer_tensor_and_named_columns(http: httpx.Client) -> None:
    tensor = {"name": "x", "shape": [2, 3], "datatype": "FP64", "data": [ROW, [-1, 0, 0]]}
    named = [
        {"name": c, "shape": [1], "datatype": "FP64", "data": [v]}
        for c, v in zip(COLUMNS, ROW, strict=True)
    ]
    for inputs, expected in (([tensor], [1, 0]), (named, [1])):
        body = http.post("/v2/models/m/infer", json={"inputs": inputs}).json()
        assert body["outputs"][0]["data"] == expected
        assert body["model_version"] == "1" and body["outputs"][0]["datatype"] == "INT64"
    assert http.get("/v2/health/ready").json() == {"ready": True}
    assert http.post("/v2/models/other/infer", json={"inputs": [tensor]}).status_code == 404


@pytest.mark.parametrize(
    ("kwargs", "status", "text"),
    [
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "not valid JSON",
        ),
        ({"json": {}}, 400, "Give exactly one of dataframe_split"),
        ({"json": {**_split([ROW]), "instances": [ROW]}}, 400, "got dataframe_split, instances"),
        ({"json": {"instance": [ROW]}}, 400, "Unknown field(s) 'instance'"),
        ({"json": _split([[1.0, 2.0]], ["a", "b"])}, 400, "Missing column(s) 'c'"),
        ({"json": _split([[1.0, "x", 2.0]])}, 400, "Column 'b' of m/1 expects float64; row 0"),
        ({"json": _split([[1.0, 2.0]])}, 400, "data[0] has 2 values for 3 columns"),
        ({"json": {"instances": [[1.0, 2.0]]}}, 400, "must have 3 values"),
        ({"json": {"dataframe_split": {"data": [ROW, [1]]}}}, 400, "different lengths [1, 3]"),
        ({"json": _split([[1.0, None, 2.0]])}, 400, "could not predict these inputs"),
        ({"content": b"1,2,3", "headers": {"content-type": "text/plain"}}, 415, "text/plain"),
        ({"json": _split([ROW]), "headers": {"x-request-id": "bad id!"}}, 400, "X-Request-ID"),
    ],
)
def test_bad_requests_are_json_errors_naming_the_problem(
    http: httpx.Client, kwargs: dict, status: int, text: str
) -> None:
    response = http.post("/invocations", **kwargs)
    assert response.status_code == status
    assert text in response.json()["message"]
    assert "Traceback" not in response.text


def test_wrong_dtype_names_the_column(http: httpx.Client) -> None:
    body = http.post("/invocations", json=_split([[1.0, "x", 2.0]])).json()
    assert body["column"] == "b" and body["error_code"] == "BAD_REQUEST"


def test_unknown_route_and_method_are_json(http: httpx.Client) -> None:
    assert http.get("/nope").json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert http.get("/invocations").status_code == 405


def test_body_over_the_limit_is_413(model_store: Path) -> None:
    with serve("m@champion", port=0, max_body_bytes=100, store=model_store) as handle:
        response = httpx.post(f"{handle.url}/invocations", json=_split([ROW] * 20))
    assert response.status_code == 413
    assert "limit of 100 bytes" in response.json()["message"]


def test_token_needed_on_every_route_but_ping(model_store: Path) -> None:
    with serve("m@champion", port=0, token="s3cret", store=model_store) as handle:
        url = handle.url
        assert httpx.get(f"{url}/ping").status_code == 200
        missing = httpx.get(f"{url}/health")
        wrong = httpx.get(f"{url}/health", headers={"Authorization": "Bearer nope"})
        right = httpx.post(
            f"{url}/invocations", json=_split([ROW]), headers={"Authorization": "Bearer s3cret"}
        )
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["message"]
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 403 and "not valid" in wrong.json()["message"]
    assert right.status_code == 200


@pytest.mark.parametrize(
    ("policy", "status", "header"), [("error", 400, None), ("ignore", 200, None), ("log", 200, "d")]
)
def test_extra_columns_policy(
    model_store: Path, policy: str, status: int, header: str | None
) -> None:
    with serve("m@champion", port=0, extra_columns=policy, store=model_store) as handle:
        response = httpx.post(
            f"{handle.url}/invocations", json=_split([[*ROW, 9]], [*COLUMNS, "d"])
        )
    assert response.status_code == status
    assert response.headers.get("x-nbmlops-extra-columns") == header
    if policy == "error":
        assert "'d' are not in the signature of m/1" in response.json()["message"]


def test_health_version_and_ping(http: httpx.Client) -> None:
    health = http.get("/health").json()
    assert health["status"] == "ok" and health["version"] == 1
    assert health["self_test"] == "passed"
    assert http.get("/ping").status_code == 200
    assert http.get("/version").json()["model"] == "m"


def test_every_request_is_logged_with_its_request_id(store: Path) -> None:
    with serve("m@champion", port=0, store=store) as handle:
        ok = httpx.post(
            f"{handle.url}/invocations",
            json=_split([ROW, [-1, 0, 0]], [*COLUMNS]),
            headers={"X-Request-ID": "req-1"},
        )
        bad = httpx.post(f"{handle.url}/invocations", json={})
    assert ok.headers["x-request-id"] == "req-1"
    log = predictions("m", store=store)
    first = log.set_index("request_id").loc["req-1"]
    assert first.outputs == [1, 0] and first.n_rows == 2 and first.version == 1
    assert first.inputs == {"columns": COLUMNS, "data": [ROW, [-1, 0, 0]]}
    assert log.set_index("request_id").loc[bad.headers["x-request-id"]].status == 400
    assert predictions("m", version=2, store=store).empty


def test_a_locked_store_never_fails_a_request_and_drops_are_counted(store: Path) -> None:
    with serve("m@champion", port=0, store=store) as handle:
        blocker = sqlite3.connect(store / "nbmlops.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        codes, waits = [], []
        for _ in range(20):
            started = time.perf_counter()
            codes.append(httpx.post(f"{handle.url}/invocations", json=_split([ROW])).status_code)
            waits.append(time.perf_counter() - started)
        time.sleep(2.5)  # two write attempts of one busy second each
        blocker.execute("ROLLBACK")
    stats = handle.stats  # after the stop: every queued record written or dropped
    # No request waited for the lock: that would take the writer's busy timeout, 1 s.
    assert codes == [200] * 20 and max(waits) < 0.5, waits
    assert stats["dropped"] >= 1 and stats["logged"] + stats["dropped"] == 20
    assert "locked" in stats["last_error"]
    assert len(predictions("m", store=store)) == stats["logged"]


def _sender(url: str, stop: threading.Event, seen: list[int], failures: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            try:
                r = client.post("/invocations", json=_split([ROW]))
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
                continue
            if r.status_code != 200:
                failures.append(r.text)
            else:
                seen.append(int(r.headers["x-model-version"]))


def test_alias_move_swaps_with_no_failed_request(store: Path) -> None:
    seen: list[list[int]] = [[] for _ in range(4)]  # per client: threads append out of order
    failures: list[str] = []
    stop = threading.Event()
    with serve("m@champion", port=0, poll_interval=0.1, store=store) as handle:
        senders = [
            threading.Thread(target=_sender, args=(handle.url, stop, versions, failures))
            for versions in seen
        ]
        for t in senders:
            t.start()
        time.sleep(0.3)
        nbm.set_alias("m", "champion", 2, store=store)
        deadline = time.monotonic() + 10
        while handle.version != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for t in senders:
            t.join()
    assert failures == []
    assert all(v[0] == 1 and v[-1] == 2 and v == sorted(v) for v in seen)
    events = endpoint_events("m", store=store)
    assert list(events.kind) == ["loaded", "swapped", "stopped"]
    assert events.payload[1]["previous"] == 1


def test_a_version_failing_its_self_test_is_not_swapped_in(store: Path) -> None:
    bad = nbm.register_model(FailsSelfTest(), "m", format="pickle", store=store).version
    with serve("m@champion", port=0, poll_interval=0.1, store=store) as handle:
        nbm.set_alias("m", "champion", bad, store=store)
        deadline = time.monotonic() + 10
        while len(endpoint_events("m", store=store)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        still = httpx.post(f"{handle.url}/invocations", json=_split([ROW]))
    failed = endpoint_events("m", store=store).iloc[1]
    assert failed.kind == "swap_failed" and failed.payload["candidate"] == bad
    assert "failed its self-test" in failed.payload["reason"]
    assert "m/1 keeps serving" in failed.payload["reason"]
    assert still.headers["x-model-version"] == "1"


def test_no_model_loaded_is_503_with_the_reason(store: Path) -> None:
    bad = nbm.register_model(FailsSelfTest(), "m", format="pickle", store=store).version
    nbm.set_alias("m", "champion", bad, store=store)
    with serve("m@champion", port=0, store=store) as handle:
        ping = httpx.get(f"{handle.url}/ping")
        health = httpx.get(f"{handle.url}/health")
        scored = httpx.post(f"{handle.url}/invocations", json=_split([ROW]))
    assert ping.status_code == health.status_code == scored.status_code == 503
    assert "failed its self-test" in scored.json()["message"]
    assert health.json()["status"] == "unavailable"


def test_a_pinned_version_that_cannot_load_does_not_start(store: Path) -> None:
    bad = nbm.register_model(FailsSelfTest(), "m", format="pickle", store=store).version
    with pytest.raises(nbm.ServingError, match="failed its self-test"):
        serve(f"m/{bad}", port=0, store=store)
    assert endpoints("m", store=store).state.tolist() == ["stopped"]


def test_endpoints_record_start_version_and_stop(store: Path) -> None:
    handle = serve("m@champion", port=0, store=store)
    running = endpoints("m", store=store).iloc[0]
    handle.stop()
    stopped = endpoints("m", store=store).iloc[0]
    assert running.state == "serving" and running.url == handle.url and running.version == 1
    assert running.settings["extra_columns"] == "log" and running.settings["auth"] is False
    assert stopped.state == "stopped" and stopped.stopped_at >= stopped.started_at


def test_artifact_etag_304_and_device_recorded_as_consumer(store: Path) -> None:
    with serve("m@champion", port=0, store=store) as handle:
        url = f"{handle.url}/models/m@champion/artifact"
        first = httpx.get(url, headers={"X-Device-ID": "edge-1"})
        again = httpx.get(url, headers={"If-None-Match": first.headers["etag"]})
        pinned = httpx.get(f"{handle.url}/models/m/2/artifact")
        missing = httpx.get(f"{handle.url}/models/nope@champion/artifact")
    sha = nbm.get_model_version("m/1", store=store).sha256
    assert first.status_code == 200 and first.headers["etag"] == f'"{sha}"'
    assert again.status_code == 304 and again.content == b""
    assert pinned.headers["x-model-version"] == "2"
    assert missing.status_code == 404 and "'nope@champion' not found" in missing.json()["message"]
    assert "device edge-1" in nbm.consumers("m", 1, store=store).consumer.tolist()


def test_store_rows_visible_from_a_second_connection(store: Path) -> None:
    with serve("m@champion", port=0, store=store) as handle:
        httpx.post(f"{handle.url}/invocations", json=_split([ROW]))
    conn = sqlite3.connect(store / "nbmlops.db")
    count = conn.execute("SELECT COUNT(*) FROM predictions WHERE status = 200").fetchone()[0]
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE predictions SET status = 500")
    assert count == 1
    Store(store).close()


def test_openapi_document_fuzzed_by_schemathesis_finds_no_5xx(model_store: Path) -> None:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    with serve("m@champion", port=0, token="tok", store=model_store) as handle:
        result = subprocess.run(
            [
                str(schemathesis),
                "run",
                f"{handle.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "25",
                "--seed",
                "1",
                "--header",
                "Authorization: Bearer tok",
                "--phases",
                "examples,coverage,fuzzing",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "generated" in result.stdout and "failed" not in result.stdout.split("SUMMARY")[-1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"dataframe_records": [dict(zip(COLUMNS, ROW, strict=True))]}},
        {"json": {"instances": [ROW]}},
        {"content": b"a,b,c\n1.0,-2.0,0.5\n", "headers": {"content-type": "text/csv"}},
    ],
    ids=["records", "instances", "csv"],
)
def test_logged_inputs_read_back_as_columns_and_rows_whatever_the_format(
    store: Path, kwargs: dict
) -> None:
    with serve("m@champion", port=0, store=store) as handle:
        httpx.post(f"{handle.url}/invocations", **kwargs)
        httpx.post(
            f"{handle.url}/v2/models/m/infer",
            json={"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": ROW}]},
        )
    first, v2 = predictions("m", store=store).inputs
    assert first == {"columns": COLUMNS, "data": [ROW]}
    assert v2 == {"columns": COLUMNS, "data": [ROW]}


def test_log_sample_zero_logs_nothing_and_log_off_too(store: Path) -> None:
    for options in ({"log_sample": 0.0}, {"log_predictions": False}):
        with serve("m@champion", port=0, store=store, **options) as handle:
            assert httpx.post(f"{handle.url}/invocations", json=_split([ROW])).status_code == 200
    assert predictions("m", store=store).empty


def test_serving_api_keeps_the_server_stack_and_pandas_out_of_import() -> None:
    code = (
        "import sys, nbmlops.api._serving\n"
        "print(sorted(m for m in ('starlette', 'uvicorn', 'fastapi', 'pandas', 'sklearn') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_script_that_never_calls_stop_still_records_the_stop(store: Path) -> None:
    code = (
        "import httpx\nfrom nbmlops.api._serving import serve\n"
        f"h = serve('m@champion', port=0, store={str(store)!r})\n"
        "httpx.post(h.url + '/invocations', json={'instances': [[1.0, -2.0, 0.5]]})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert endpoints("m", store=store).state.tolist() == ["stopped"]
    assert len(predictions("m", store=store)) == 1


def test_labels_posted_to_the_server_join_its_logged_requests(store: Path) -> None:
    with serve("m@champion", port=0, token="tok", store=store) as handle:
        auth = {"Authorization": "Bearer tok"}
        scored = [
            httpx.post(f"{handle.url}/invocations", json=_split([ROW]), headers=auth)
            for _ in range(3)
        ]
        ids = [r.headers["x-request-id"] for r in scored]
        deadline = time.monotonic() + 10
        while len(predictions("m", store=store)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)  # the log is written in batches
        posted = httpx.post(
            f"{handle.url}/labels",
            json={"request_ids": [*ids, "never-served"], "labels": [1, 1, 0, 1]},
            headers=auth,
        )
        unauthenticated = httpx.post(f"{handle.url}/labels", json={})
        bad = [
            httpx.post(f"{handle.url}/labels", headers=auth, **kwargs)
            for kwargs in (
                {"content": b"{not json"},
                {"json": {"request_ids": ids}},
                {"json": {"request_ids": ids[:1], "labels": [1], "extra": 1}},
                {"content": f'{{"request_ids": ["{ids[0]}"], "labels": [NaN]}}'.encode()},
                {"json": {"request_ids": ids[:2], "labels": [1]}},
                {"json": {"request_ids": "abc", "labels": [1]}},
                {"json": {"request_ids": ids[:1], "labels": [1], "rows": False}},
            )
        ]
    assert posted.status_code == 200
    assert posted.json() == {
        "matched": 3, "unknown": 1, "unknown_ids": ["never-served"], "unusable": 0
    }  # fmt: skip
    assert unauthenticated.status_code == 401
    messages = [(r.status_code, r.json()["message"]) for r in bad]
    assert [status for status, _ in messages] == [400] * 7
    assert "not JSON" in messages[0][1] and '"labels": [...]' in messages[1][1]
    assert "Unknown keys ['extra']" in messages[2][1]
    assert "finite number or a text" in messages[3][1] and "give one each" in messages[4][1]
    assert "JSON arrays" in messages[5][1] and "JSON arrays" in messages[6][1]
    with sqlite3.connect(store / "nbmlops.db") as conn:  # joined, ready for production skew
        matches = conn.execute("SELECT version, served, label FROM label_matches ORDER BY label")
        assert matches.fetchall() == [(1, 1, 0), (1, 1, 1), (1, 1, 1)]  # ROW scores 1


def test_traffic_profiles_are_written_per_profile_window_while_serving(store: Path) -> None:
    with serve("m@champion", port=0, profile_window="1s", store=store) as handle:
        for _ in range(3):
            assert httpx.post(f"{handle.url}/invocations", json=_split([ROW])).status_code == 200
        deadline = time.monotonic() + 10
        rows: list[tuple[int, float]] = []
        # Windows close on whole seconds: the three requests may straddle two of them.
        while sum(n for n, _ in rows) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
            with sqlite3.connect(store / "nbmlops.db") as conn:
                rows = conn.execute(
                    "SELECT n_rows, window_end - window_start FROM traffic_profiles"
                ).fetchall()
        assert handle.version == 1  # still serving
    assert rows and sum(n for n, _ in rows) == 3 and {w for _, w in rows} == {1.0}
    with pytest.raises(ValueError, match="profile_window='0s' must be a positive"):
        serve("m@champion", port=0, profile_window="0s", store=store)


def test_traffic_windows_close_while_the_log_is_busy(store: Path) -> None:
    """Under sustained load the writer's queue never drains; windows must close all the same."""
    from nbmlops.serving.prediction_log import PredictionLog

    log = PredictionLog(store, batch=1, profile_window=0.1)
    frame = pd.DataFrame([ROW], columns=COLUMNS)
    past = time.time() - 10  # windows long over: due as soon as they are profiled
    for i in range(3000):
        log.submit(
            {"request_id": f"r{i}", "endpoint_id": None, "name": "m", "version": 1,
             "sha256": None, "at": past + i / 3000, "status": 200, "latency_ms": 1.0,
             "format": "dataframe_split", "n_rows": 1, "frame": frame, "body": b"{}",
             "outputs": [1], "extra_columns": None, "error": None}
        )  # fmt: skip
    log.start()
    written, deadline = 0, time.monotonic() + 20
    while not written and log.stats.queued > 500 and time.monotonic() < deadline:
        time.sleep(0.05)
        with sqlite3.connect(store / "nbmlops.db") as conn:
            (written,) = conn.execute("SELECT COUNT(*) FROM traffic_profiles").fetchone()
    queued = log.stats.queued
    log.stop()
    assert written and queued > 500, (written, queued)


def test_a_server_other_machines_can_reach_takes_labels_only_with_a_token(store: Path) -> None:
    body = {"request_ids": ["r"], "labels": [1]}
    with serve("m@champion", host="0.0.0.0", port=0, store=store) as handle:
        port = handle.url.rsplit(":", 1)[1]
        refused = httpx.post(f"http://127.0.0.1:{port}/labels", json=body)
    with serve("m@champion", host="0.0.0.0", port=0, token="t", store=store) as handle:
        port = handle.url.rsplit(":", 1)[1]
        headers = {"Authorization": "Bearer t"}
        taken = httpx.post(f"http://127.0.0.1:{port}/labels", json=body, headers=headers)
    assert (
        refused.status_code == 403
        and "needs one. Start it with --token" in refused.json()["message"]
    )
    assert taken.status_code == 200 and taken.json()["unknown"] == 1


def test_labels_sent_while_the_store_is_locked_are_a_503_to_retry(store: Path) -> None:
    with serve("m@champion", port=0, store=store) as handle:
        blocker = sqlite3.connect(store / "nbmlops.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        body = {"request_ids": ["r"], "labels": [1]}
        locked = httpx.post(f"{handle.url}/labels", json=body, timeout=30)
        blocker.execute("ROLLBACK")
        retried = httpx.post(f"{handle.url}/labels", json=body)
    assert locked.status_code == 503 and locked.headers["retry-after"] == "1"
    assert "locked" in locked.json()["message"] and retried.status_code == 200
