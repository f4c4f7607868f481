# ruff: noqa: F811  (the store fixtures are imported from test_serving and requested by name)
"""The registry sees its servers: swaps in the model's history, the endpoints that served it at
a moment, ``nbmlops model show`` listing where a version is served, and the models panel's
endpoints with their traffic, all against real servers on 127.0.0.1."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import numpy as np
from click.testing import CliRunner

import nbmlops as nbm
from nbmlops import serve
from nbmlops.cli import main
from nbmlops.widgets._html import fmt
from test_serving import ROW, _split, model_store, store  # noqa: F401


def _wait_for(handle: nbm.ServerHandle, version: int) -> None:
    deadline = time.monotonic() + 10
    while handle.version != version and time.monotonic() < deadline:
        time.sleep(0.05)
    assert handle.version == version


def test_a_swap_is_an_event_of_the_model_history(store: Path) -> None:
    with serve("m@champion", port=0, poll_interval=0.1, store=store) as handle:
        nbm.set_alias("m", "champion", 2, store=store)
        _wait_for(handle, 2)
    history = nbm.model_history("m", store=store)
    kinds = [k for k in history.kind if k.startswith("served:")]
    assert kinds == ["served:loaded", "served:swapped", "served:stopped"]
    swap = history[history.kind == "served:swapped"].iloc[0]
    assert swap.version == 2 and swap.alias == "champion" and swap.payload["url"] == handle.url
    assert swap.summary == f"{handle.url} swapped 1 -> 2 following @champion"
    assert list(history.kind).index("alias_set") < list(history.kind).index("served:swapped")
    assert history["at"].is_monotonic_increasing


def test_endpoints_at_a_moment_give_the_version_each_served(store: Path) -> None:
    with serve("m@champion", port=0, poll_interval=0.1, store=store) as handle:
        before = time.time()
        nbm.set_alias("m", "champion", 2, store=store)
        _wait_for(handle, 2)
    swapped = nbm.endpoint_events("m", store=store).query("kind == 'swapped'")["at"].iloc[0]
    after = swapped.timestamp() + 0.001  # the frame's times are rounded to microseconds
    assert nbm.who_served("m", "champion", before, store=store).version == 1
    then = nbm.endpoints("m", at=before, store=store)
    assert then.url.tolist() == [handle.url] and then.version.tolist() == [1]
    assert nbm.endpoints("m", at=after, store=store).version.tolist() == [2]
    assert nbm.endpoints("m", at=time.time() + 1, store=store).empty  # stopped since


def test_model_show_lists_where_the_version_is_served(store: Path) -> None:
    runner = CliRunner()
    with serve("m@champion", port=0, store=store) as handle:
        text = runner.invoke(main, ["--store", str(store), "model", "show", "m@champion"])
        raw = runner.invoke(
            main, ["--store", str(store), "model", "show", "m/1", "--format", "json"]
        )
        other = runner.invoke(main, ["--store", str(store), "model", "show", "m/2"])
    assert text.exit_code == 0, text.output
    assert handle.url in text.output and "serving" in text.output
    served = json.loads(raw.output)["served_at"]
    assert [(e["url"], e["state"]) for e in served] == [(handle.url, "serving")]
    assert served[0]["since"] <= time.time()
    assert handle.url not in other.output


def test_panel_endpoints_show_requests_errors_and_percentiles(store: Path) -> None:
    with serve("m@champion", port=0, store=store) as handle:
        for n in range(1, 21):
            httpx.post(f"{handle.url}/invocations", json=_split([ROW] * n))
        httpx.post(f"{handle.url}/invocations", json={"nope": 1})
    log = nbm.predictions("m", store=store)
    answered = log[log.status < 400].latency_ms.to_numpy()
    expected = np.percentile(answered, [50, 95, 99], method="inverted_cdf")
    row = nbm.endpoints("m", store=store).iloc[0]
    assert (row.requests, row.errors_4xx, row.errors_5xx) == (21, 1, 0)
    got = [row.latency_p50_ms, row.latency_p95_ms, row.latency_p99_ms]
    assert got == expected.tolist()
    static = nbm.models_panel("m", store=store).to_html()
    assert "<b>Endpoints</b>" in static and handle.url in static
    assert all(fmt(float(v)) in static for v in expected)
