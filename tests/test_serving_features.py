"""A model trained from a feature store training set, served (issue #17 items 3-4): requests may
carry entity keys instead of features (fetched online, TTL enforced), and every request is
checked against the training set's data contract (reject, log or off). Real uvicorn servers on
127.0.0.1, models trained in tracked cells of a real IPython shell."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbmlops as nbm
from nbmlops.feature_store.model_features import model_features
from nbmlops.registry.model_version import resolve
from nbmlops.serving import server as serving_server
from nbmlops.serving.service import Settings
from nbmlops.store import Store, close_stores
from nbmlops.store.online import online_store

NOW = pd.Timestamp.now(tz="UTC").floor("s")
FEATURES = ["conv_rate", "trips"]
REFS = ["driver_stats:conv_rate", "driver_stats:trips"]


def _stats() -> pd.DataFrame:
    """Every 30 minutes: drivers 1001-1004 up to 10 minutes ago, 1005 until 5 hours ago (its
    values have expired under the 2 h TTL)."""
    rng = np.random.default_rng(0)
    rows = []
    for driver in range(1001, 1006):
        last = pd.Timedelta("5h") if driver == 1005 else pd.Timedelta("10min")
        for step in range(12):
            rows.append((driver, NOW - last - step * pd.Timedelta("30min")))
    frame = pd.DataFrame(rows, columns=["driver_id", "event_ts"])
    return frame.assign(conv_rate=rng.random(len(frame)), trips=rng.integers(0, 50, len(frame)))


def _orders() -> pd.DataFrame:
    """Orders that each see a feature row inside the TTL (so training had no nulls), the last
    of every driver after its latest feature row."""
    stats = _stats()
    orders = stats[["driver_id"]].assign(event_timestamp=stats["event_ts"] + pd.Timedelta("5min"))
    return orders.assign(label=np.arange(len(orders)) % 7 * 1.5)


CELLS = [
    "nbm.entity('driver', keys='driver_id')\n"
    "@nbm.feature_view(entity='driver', timestamp='event_ts', ttl='2h')\n"
    "def driver_stats():\n"
    "    return STATS\n",
    f"%%track\ntrain = nbm.training_set(orders, {REFS!r})\n",
    "%%track eta_fit\n"
    "from sklearn.ensemble import HistGradientBoostingRegressor\n"  # takes NaN: expired values
    "model = HistGradientBoostingRegressor(max_iter=20).fit(train[['conv_rate', 'trips']], "
    "train['label'])\n",
    "%%track eta_one\n"  # built and fitted in one cell: linked by the run, not the fingerprint
    "from sklearn.linear_model import LinearRegression\n"
    "ts = nbm.training_set(orders, ['driver_stats:trips'], name='trips_only')\n"
    "one = LinearRegression().fit(ts[['trips']], ts['label'])\n",
    "%%track plain_fit\n"
    "X = pd.DataFrame({'conv_rate': [0.1, 0.5, 0.9], 'trips': [1, 5, 9]})\n"
    "plain = LinearRegression().fit(X, [1.0, 2.0, 3.0])\n",
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """eta/1 (trained from a training set of driver_stats), eta_one/1 (a training set built in
    its own cell), plain/1 (no training set); driver_stats materialised now."""
    folder = tmp_path_factory.mktemp("serving_features") / ".nbmlops"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NBMLOPS_HOME", str(folder))
        patch.chdir(folder.parent)
        nbm.set_store(None)
        InteractiveShell.clear_instance()
        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "nbmlops")
        shell.user_ns.update(nbm=nbm, pd=pd, STATS=_stats(), orders=_orders())
        for cell in CELLS:
            shell.run_cell(cell).raise_error()
        for run, name in (("eta_fit", "eta"), ("eta_one", "eta_one"), ("plain_fit", "plain")):
            nbm.register_model(nbm.runs(f"name = '{run}'")["run_id"][0], name)
        nbm.materialize("driver_stats")
        shell.run_line_magic("unload_ext", "nbmlops")
        InteractiveShell.clear_instance()
    yield folder
    online_store(folder).close()
    close_stores()


@pytest.fixture(scope="module")
def served(home: Path) -> Iterator[dict[str, httpx.Client]]:
    """A server per (model, contract policy), each with an HTTP client."""
    store = Store(home)
    handles, clients = [], {}
    for key, ref, contract in (("log", "eta/1", "log"), ("reject", "eta/1", "reject"),
                               ("plain", "plain/1", "log")):  # fmt: skip
        handle = serving_server.start(
            store, ref, host="127.0.0.1", port=0, settings=Settings(contract=contract)
        )
        handles.append(handle)
        clients[key] = httpx.Client(base_url=handle.url, timeout=10)
    yield clients
    for client in clients.values():
        client.close()
    for handle in handles:
        handle.stop()
    store.close()


def _records(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"dataframe_records": rows}


def _logged(home: Path, request_id: str) -> dict[str, Any]:
    """The prediction log's row of ``request_id`` (the writer flushes every 0.2 s)."""
    for _ in range(100):
        frame = nbm.predictions("eta", store=home)
        found = frame[frame["request_id"] == request_id]
        if len(found):
            return dict(found.iloc[0])
        time.sleep(0.05)
    raise AssertionError(f"request {request_id} was never logged")


def test_the_features_and_contract_of_a_version_come_from_its_training_set(home: Path) -> None:
    store = Store(home)
    eta = model_features(store, resolve(store, "eta/1"))
    assert eta is not None
    assert eta.refs == ("driver_stats@1:conv_rate", "driver_stats@1:trips")
    assert (eta.columns, eta.keys) == (("conv_rate", "trips"), ("driver_id",))
    assert eta.contract["columns"]["conv_rate"]["nullable"] is False
    one = model_features(store, resolve(store, "eta_one/1"))
    assert one is not None and one.refs == ("driver_stats@1:trips",)
    assert model_features(store, resolve(store, "plain/1")) is None
    store.close()


def test_entity_keys_alone_give_the_prediction_of_the_features_fetched_online(
    home: Path, served: dict[str, httpx.Client]
) -> None:
    keys = [{"driver_id": 1001}, {"driver_id": 1003}]
    by_key = served["log"].post("/invocations", json=_records(keys))
    assert by_key.status_code == 200, by_key.text
    online = nbm.online_features(REFS, keys, store=home).to_pandas()
    explicit = served["log"].post("/invocations", json=_records(online.to_dict("records")))
    model = nbm.load_model("eta/1", store=home)
    assert by_key.json()["predictions"] == explicit.json()["predictions"]
    assert by_key.json()["predictions"] == pytest.approx(model.predict(online[FEATURES]).tolist())
    assert by_key.json()["feature_status"] == [{"conv_rate": "present", "trips": "present"}] * 2
    assert "feature_status" not in explicit.json()
    assert "x-nbmlops-contract-violations" not in by_key.headers


def test_v2_infer_fetches_by_a_key_tensor(served: dict[str, httpx.Client]) -> None:
    tensor = {"name": "driver_id", "shape": [1], "datatype": "INT64", "data": [1002]}
    response = served["log"].post("/v2/models/eta/infer", json={"inputs": [tensor]})
    assert response.status_code == 200, response.text
    assert response.json()["parameters"] == {
        "feature_status": [{"conv_rate": "present", "trips": "present"}]
    }


def test_an_expired_or_unknown_entity_is_served_null_and_flagged(
    home: Path, served: dict[str, httpx.Client]
) -> None:
    response = served["log"].post(
        "/invocations", json=_records([{"driver_id": 1005}, {"driver_id": 9999}])
    )
    assert response.status_code == 200, response.text
    assert response.json()["feature_status"] == [
        {"conv_rate": "expired", "trips": "expired"},
        {"conv_rate": "missing", "trips": "missing"},
    ]
    assert response.headers["x-nbmlops-contract-violations"] == "conv_rate,trips"
    row = _logged(home, response.headers["x-request-id"])
    noted = row["error"]
    assert "row 0 (driver_id=1005): conv_rate expired, trips expired, served as null" in noted
    assert "row 1 (driver_id=9999): conv_rate missing" in noted
    assert "contract: conv_rate: null in row 0, never null in training" in noted
    assert row["inputs"]["columns"] == ["driver_id", "conv_rate", "trips"]
    assert [r[0] for r in row["inputs"]["data"]] == [1005, 9999]


@pytest.mark.parametrize(
    ("rows", "message", "column"),
    [
        (
            [{"driver_id": 1001, "conv_rate": 0.5}],
            "carries feature column(s) conv_rate of eta/1 but not trips: send every feature "
            "column (conv_rate, trips), or only the entity key column(s) (driver_id)",
            "trips",
        ),
        (
            [{"speed": 3}],
            "neither the feature columns of eta/1 (conv_rate, trips) nor the entity key column(s) "
            "to fetch them by: driver_id missing",
            "driver_id",
        ),
        (
            [{"driver_id": 1001}, {"other": 1}],
            "Row 1 has no value for the entity key column 'driver_id'",
            "driver_id",
        ),
    ],
    ids=["partial", "neither", "row-without-key"],
)
def test_a_request_with_part_of_the_features_is_refused_naming_what_is_missing(
    served: dict[str, httpx.Client], rows: list[dict[str, Any]], message: str, column: str
) -> None:
    response = served["log"].post("/invocations", json=_records(rows))
    assert response.status_code == 400
    assert message in response.json()["message"]
    assert response.json()["column"] == column


def test_contract_reject_answers_400_naming_column_row_and_value(
    served: dict[str, httpx.Client],
) -> None:
    bad = [{"conv_rate": 0.5, "trips": 3}, {"conv_rate": 5.0, "trips": 3}]
    response = served["reject"].post("/invocations", json=_records(bad))
    assert response.status_code == 400
    body = response.json()
    assert body["column"] == "conv_rate"
    assert "breaks the data contract of eta/1 (its training set): conv_rate: 5.0 in row 1 is " \
        "outside the training range [" in body["message"]  # fmt: skip
    assert "--contract log" in body["message"]
    assert served["reject"].post("/invocations", json=_records([{"driver_id": 1001}])).is_success


def test_contract_log_serves_and_records_the_violation(
    home: Path, served: dict[str, httpx.Client]
) -> None:
    response = served["log"].post("/invocations", json=_records([{"conv_rate": 5.0, "trips": 3}]))
    assert response.status_code == 200, response.text
    assert response.headers["x-nbmlops-contract-violations"] == "conv_rate"
    row = _logged(home, response.headers["x-request-id"])
    assert row["status"] == 200
    assert row["error"].startswith("contract: conv_rate: 5.0 in row 0 is outside the training")


def test_a_model_without_training_set_is_served_as_before(served: dict[str, httpx.Client]) -> None:
    by_key = served["plain"].post("/invocations", json=_records([{"driver_id": 1001}]))
    assert by_key.status_code == 400
    assert "Missing column(s) 'conv_rate', 'trips' for plain/1" in by_key.json()["message"]
    out_of_range = served["plain"].post(
        "/invocations", json=_records([{"conv_rate": 5.0, "trips": 3}])
    )
    assert out_of_range.status_code == 200
    assert "feature_status" not in out_of_range.json()
    assert "x-nbmlops-contract-violations" not in out_of_range.headers


def test_contract_policies_are_checked() -> None:
    with pytest.raises(ValueError, match=r"contract='strict' is not a policy; choose one of rej"):
        Settings(contract="strict")
