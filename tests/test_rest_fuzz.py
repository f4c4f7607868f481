"""Fuzzing every REST route's query parameters (and path arguments) against a real, token-protected
Jupyter server: whatever a client sends, the answer is JSON and never a 5xx (issue #13 item 10).

Hypothesis runs in a worker thread and hands each request to the server's event loop, so it
shrinks a failing request to its smallest form like any other property test.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nbmlops as nbm
from nbmlops.jupyter.handlers import ROUTES
from nbmlops.store import close_stores

pytest_plugins = ["pytest_jupyter.jupyter_server"]

PARAMETERS = [
    "api", "path", "filter", "experiment", "notebook", "limit", "offset", "runs", "a", "b",
    "run_id", "model_name", "model_version",
]  # fmt: skip
NASTY = [
    "", " ", "0", "-1", "1e400", "99999999999999999999", "nan", "a" * 5000, "x/" * 300,
    "../../etc", "/etc/passwd", "~root", "a\x00b", "(" * 300, "NOT " * 50,
    " OR ".join(["params.a = 1"] * 500), "params.lr < 0.1", "%ff", ",,,", "run,run",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.binary(max_size=12),  # percent-encoded as sent: mostly not UTF-8
)


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"nbmlops.jupyter": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
        }
    }


@pytest.fixture
def store_in_root(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A store inside the server's root, found by the location rule (no NBMLOPS_HOME)."""
    monkeypatch.delenv("NBMLOPS_HOME", raising=False)
    with nbm.start_run("fuzzed", store=jp_root_dir / ".nbmlops") as run:
        nbm.log_params({"lr": 0.1, "flag": True})
        nbm.log_metric("auc", 0.9)
    nbm.register_model({"weights": [1.0]}, "tiny", format="pickle", store=jp_root_dir / ".nbmlops")
    yield run.run_id
    close_stores()


_GROUP = re.compile(r"\([^)]*\)")
_ARGS = st.one_of(st.sampled_from(["tiny", "auc", "x" * 300, "..", "%ff"]), st.text(min_size=1))


def _route(pattern: str) -> st.SearchStrategy[list[str]]:
    """The path of a route, its arguments (a run id, a key, a name...) drawn."""
    count = len(_GROUP.findall(pattern))

    def fill(drawn: list[str]) -> list[str]:
        # Each argument is one path segment, percent-encoded as an HTTP client sends it: a raw
        # "/" or "//host" would make a different URL (tornado redirects it), not a bad value.
        args = iter(quote(arg, safe="") for arg in drawn)
        return [_GROUP.sub(lambda _: next(args), pattern)]

    return st.lists(_ARGS, min_size=count, max_size=count).map(fill)


REQUESTS = st.tuples(
    st.sampled_from([pattern for pattern, _ in ROUTES]).flatmap(_route),
    st.dictionaries(st.sampled_from(PARAMETERS), VALUES, max_size=4),
)


async def test_no_query_or_path_value_gets_a_5xx_or_a_body_that_is_not_json(
    jp_fetch: Any, store_in_root: str
):
    loop = asyncio.get_running_loop()
    seen: dict[int, int] = {}

    async def fetch(parts: list[str], params: dict[str, Any]) -> Any:
        return await jp_fetch(
            "nbmlops", "api", *parts, params=params, raise_error=False, follow_redirects=False
        )

    @settings(max_examples=250, deadline=None, database=None, derandomize=True)  # CI: repeatable
    @given(REQUESTS)
    def check(request: tuple[list[str], dict[str, Any]]) -> None:
        parts, params = request
        response = asyncio.run_coroutine_threadsafe(fetch(parts, params), loop).result(30)
        seen[response.code] = seen.get(response.code, 0) + 1
        assert response.code < 500, (parts, params, response.body[:300])
        assert response.headers["Content-Type"] == "application/json"
        body = json.loads(response.body)
        if response.code >= 400:
            assert body["error"] and body["message"] == body["error"]

    await loop.run_in_executor(None, check)
    assert seen.get(200) and seen.get(400)  # both answers were reached


@pytest.mark.parametrize(
    ("parts", "params", "status", "message"),
    [
        (["runs"], {"filter": b"\xff"}, 400, "Invalid unicode in filter"),
        (["version"], {"api": b"\xff"}, 400, "Invalid unicode in api"),
        (["runs"], {"notebook": b"\xff.ipynb"}, 400, "Invalid unicode in notebook"),
        (["compare"], {"runs": b"\xff,\xfe"}, 400, "Invalid unicode in runs"),
        (["runs"], {"notebook": "a" * 5000 + ".ipynb"}, 400, "is not a usable path: File name"),
        (["runs"], {"filter": "(" * 300 + "params.a = 1"}, 400, "nest"),
    ],
)
async def test_the_probed_bad_inputs_are_400_with_a_json_message(
    jp_fetch: Any, store_in_root: str, parts: list[str], params: dict[str, Any], status: int,
    message: str,
):  # fmt: skip
    response = await jp_fetch("nbmlops", "api", *parts, params=params, raise_error=False)
    body = json.loads(response.body)
    assert (response.code, response.headers["Content-Type"]) == (status, "application/json")
    assert message in body["error"]
