"""nbmlops.sql reads and only reads, within a time budget (issue #13, item 14)."""

from __future__ import annotations

import time

import pytest

import nbmlops as nbm
from nbmlops.errors import ReadOnlyQueryError, StoreError
from nbmlops.store import Store

ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n"


def test_a_query_that_never_ends_stops_at_the_time_limit(empty_store: Store):
    started = time.monotonic()
    with pytest.raises(
        StoreError, match=r"stopped the query after 0\.3 s, its time limit"
    ) as caught:
        nbm.sql(ENDLESS, timeout=0.3)
    assert time.monotonic() - started < 3
    assert "timeout=60" in str(caught.value) and "timeout=None" in str(caught.value)


def test_the_time_limit_leaves_a_finite_recursion_alone(empty_store: Store):
    query = ENDLESS.replace("FROM n)", "FROM n WHERE i < 1000)")
    assert nbm.sql(query, timeout=None).iloc[0, 0] == 1000


@pytest.mark.parametrize("query", ["VACUUM", "VACUUM INTO '/tmp/copy.db'", "ANALYZE", "REINDEX"])
def test_maintenance_statements_are_refused_as_writes(empty_store: Store, query: str):
    with pytest.raises(ReadOnlyQueryError, match="only SELECT statements are allowed"):
        nbm.sql(query)


@pytest.mark.parametrize(
    "call", ["load_extension('/tmp/x.so')", "fts3_tokenizer('simple')", "sqlite_log(1, 'x')"]
)
def test_functions_outside_the_documented_read_set_are_refused(empty_store: Store, call: str):
    name = call.split("(")[0]
    with pytest.raises(ReadOnlyQueryError, match=rf"the function {name}\(\) is not one it allows"):
        nbm.sql(f"SELECT {call}")


def test_the_documented_read_functions_work(empty_store: Store):
    frame = nbm.sql(
        "SELECT abs(-2) AS a, upper('x') AS u, date(0, 'unixepoch') AS d, sqrt(16) AS r, "
        "json_extract('{\"k\": 3}', '$.k') AS j, '[1,2]' ->> '$[1]' AS p, "
        "row_number() OVER () AS w, count(*) AS c, length(CURRENT_TIMESTAMP) AS t, "
        "(SELECT group_concat(value) FROM json_each('[5,6]')) AS g"
    )
    assert frame.to_dict("records") == [
        {
            "a": 2,
            "u": "X",
            "d": "1970-01-01",
            "r": 4.0,
            "j": 3,
            "p": 2,
            "w": 1,
            "c": 1,
            "t": 19,
            "g": "5,6",
        }
    ]
