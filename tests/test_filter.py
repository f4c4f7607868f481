"""The run filter language: parsing (nbmlops.filter) and compiling to SQL (store.filter_sql)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from nbmlops.errors import FilterSyntaxError
from nbmlops.filter import (
    ATTRIBUTES,
    And,
    Compare,
    Field,
    In,
    IsNull,
    Like,
    Not,
    Or,
    parse_filter,
)
from nbmlops.store.filter_sql import _ATTRIBUTE_COLUMNS, compile_filter
from nbmlops.store.schema import V1_SCHEMA


def P(key):
    return Field("params", key)


def M(key):
    return Field("metrics", key)


def T(key):
    return Field("tags", key)


def A(key):
    return Field("attributes", key)


A1, B2, C3 = Compare(P("a"), "=", 1), Compare(P("b"), "=", 2), Compare(P("c"), "=", 3)


# --------------------------------------------------------------------------------------------
# Parser


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params.lr = 0.01", Compare(P("lr"), "=", 0.01)),
        ("params.lr == 1", Compare(P("lr"), "=", 1)),
        ("metrics.loss <> 1e-3", Compare(M("loss"), "!=", 0.001)),
        ("metrics.loss>=-2", Compare(M("loss"), ">=", -2)),
        ("metrics.delta < -1.5E+2", Compare(M("delta"), "<", -150.0)),
        ("metrics.x <= .5", Compare(M("x"), "<=", 0.5)),
        ("tags.who = 'it''s'", Compare(T("who"), "=", "it's")),
        (r"tags.who = 'it\'s'", Compare(T("who"), "=", "it's")),
        (r'tags.who = "say \"hi\""', Compare(T("who"), "=", 'say "hi"')),
        (r"notebook = 'C:\data\nb.ipynb'", Compare(A("notebook"), "=", r"C:\data\nb.ipynb")),
        ("status = 'failed'", Compare(A("status"), "=", "failed")),
        ("attributes.status != 'failed'", Compare(A("status"), "!=", "failed")),
        ("attribute.run_name = 'x'", Compare(A("name"), "=", "x")),
        ("param.lr > 1", Compare(P("lr"), ">", 1)),
        ("metric.acc > 1", Compare(M("acc"), ">", 1)),
        ("tag.team = 'a'", Compare(T("team"), "=", "a")),
        ('params."my key" = 1', Compare(P("my key"), "=", 1)),
        ("metrics.`val acc` > 1", Compare(M("val acc"), ">", 1)),
        ("metrics.`a``b` > 1", Compare(M("a`b"), ">", 1)),
        ("metrics.val.acc > 1", Compare(M("val.acc"), ">", 1)),
        ("metrics.train/loss < 1", Compare(M("train/loss"), "<", 1)),
        ("tags.data-version = 'v2'", Compare(T("data-version"), "=", "v2")),
        ("params.Lr = 1", Compare(P("Lr"), "=", 1)),
        ("PARAMS.a = 1 and STATUS = 'running'", And((A1, Compare(A("status"), "=", "running")))),
        ("params.a = 1 OR params.b = 2 AND params.c = 3", Or((A1, And((B2, C3))))),
        ("(params.a = 1 OR params.b = 2) AND params.c = 3", And((Or((A1, B2)), C3))),
        ("params.a = 1 AND params.b = 2 AND params.c = 3", And((A1, B2, C3))),
        ("NOT params.a = 1 AND params.b = 2", And((Not(A1), B2))),
        ("not (params.a = 1 or params.b = 2)", Not(Or((A1, B2)))),
        ("NOT NOT params.a = 1", Not(Not(A1))),
        ("((params.a = 1))", A1),
        ("name LIKE 'run%'", Like(A("name"), "run%", negated=False, case_sensitive=True)),
        ("name not ilike '%X_'", Like(A("name"), "%X_", negated=True, case_sensitive=False)),
        ("params.opt IN ('adam', 1, 2.5)", In(P("opt"), ("adam", 1, 2.5), negated=False)),
        ("tags.t NOT IN ('a')", In(T("t"), ("a",), negated=True)),
        ("end_time IS NULL", IsNull(A("end_time"), negated=False)),
        ("metrics.acc is not null", IsNull(M("acc"), negated=True)),
    ],
)
def test_parse(text, expected):
    assert parse_filter(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_filter_means_no_filter(text):
    assert parse_filter(text) is None


def test_booleans_and_number_types_are_kept():
    node = parse_filter("params.shuffle IN (true, FALSE, 1, 1.0)")
    assert [type(v) for v in node.values] == [bool, bool, int, float]
    assert node.values[:2] == (True, False)


def test_positions_point_at_tokens():
    node = parse_filter("status = 'x' OR params.lr IN (1, 'a')")
    compare, in_ = node.items
    assert (compare.position, compare.value_position) == (0, 9)
    assert (in_.field.position, in_.value_positions) == (16, (30, 33))


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("params.lr >", 11, "after '>', found end of filter"),
        ("params.lr >   ", 11, "expected a value"),
        ("params.lr 0.01", 10, "expected an operator"),
        ("(params.lr = 1", 0, "'(' is never closed"),
        ("params.lr = 1)", 13, "')' has no matching '('"),
        ("(params.lr = 1 params.b = 2)", 15, "expected AND, OR or ')'"),
        ("tags.team = 'vision", 12, "unterminated string"),
        ("params.`lr = 1", 7, "unterminated key"),
        ("params.x IN 1, 2", 12, "IN needs a parenthesised list"),
        ("params.x IN ()", 13, "at least one value"),
        ("params.x IN (1, 2", 12, "IN list is never closed"),
        ("params.x IN (1 2)", 15, "expected ',' or ')'"),
        ("params.x IN (1,)", 15, "expected a value"),
        ("foo = 1", 0, "unknown attribute 'foo'; valid attributes are status, name, run_id"),
        ("attributes.foo = 1", 11, "unknown attribute 'foo'"),
        ("prams.lr = 1", 0, "unknown namespace 'prams'"),
        ("params = 1", 0, "expected '.' and a key after 'params'"),
        ("params. = 1", 7, "expected a key after 'params.'"),
        ('params."" = 1', 7, "empty key"),
        ("`lr` = 1", 0, "needs a namespace"),
        ("params.lr = 1 params.b = 2", 14, "expected AND or OR"),
        ("params.lr = 1 AND", 17, "expected a condition after AND"),
        ("AND params.a = 1", 0, "expected a condition"),
        ("()", 1, "expected a condition"),
        ("status = failed", 9, "put text in quotes: 'failed'"),
        ("params.a = params.b", 11, "another field"),
        ("params.lr = null", 12, "only allowed in IS NULL"),
        ("params.lr IS 1", 13, "expected NULL or NOT NULL"),
        ("params.lr NOT = 1", 14, "expected LIKE, ILIKE or IN after NOT"),
        ("name LIKE 5", 10, "LIKE needs a quoted pattern"),
        ("start_time > 2026-11-01", 13, "invalid number '2026-11-01'"),
        ("params.lr ~ 1", 10, "unexpected character '~'"),
        ("params.lr ! 1", 10, "did you mean '!='"),
    ],
)
def test_malformed_filter_points_at_token(text, position, words):
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    assert info.value.position == position
    assert words in info.value.reason
    assert info.value.text == text


def test_error_message_shows_caret_under_token():
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter("metrics.acc > high")
    assert str(info.value).endswith("\n  metrics.acc > high\n                ^")


def test_attribute_whitelist_matches_parser():
    assert set(_ATTRIBUTE_COLUMNS) == set(ATTRIBUTES)


# --------------------------------------------------------------------------------------------
# Compiler, against a real store file


def epoch(iso):
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


RUNS = [  # run_id, experiment, name, status, start (UTC), duration, user
    ("r1", 1, "Run-A", "finished", "2026-11-01T09:00", 60, "ana"),
    ("r2", 1, "run-b", "failed", "2026-11-01T12:00", 600, "bo"),
    ("r3", 2, "run_c", "finished", "2026-11-02T00:00", 30, None),
    ("r4", 2, None, "running", "2026-10-31T23:59:59", None, None),
    ("r5", 2, "run*5", "interrupted", "2026-11-03T00:00", 5, None),
    ("r6", 1, "Run-6", "finished", "2026-11-04T00:00", 100, None),
]
PARAMS = [  # run_id, key, value, value_num
    ("r1", "lr", "0.01", 0.01),
    ("r1", "opt", "adam", None),
    ("r1", "shuffle", "True", 1.0),
    ("r2", "lr", "0.010", 0.01),
    ("r2", "opt", "sgd", None),
    ("r3", "lr", "0.1", 0.1),
    ("r3", "opt", "adam", None),
    ("r3", "my key", "x", None),
    ("r4", "lr", "auto", None),
    ("r5", "opt", "1", 1.0),
]
METRICS = [("r1", "acc", 0.9), ("r1", "loss", 0.3), ("r2", "acc", 0.5), ("r3", "acc", 0.95)]
METRICS += [("r3", "val.acc", 0.93), ("r4", "acc", None), ("r6", "loss", 1.0)]  # None is NaN
TAGS = [("r1", "team", "vision"), ("r1", "epoch", "10"), ("r2", "team", "Vision")]
TAGS += [("r3", "team", "nlp"), ("r6", "team", "vision_x")]


@pytest.fixture
def db(tmp_path):
    conn = sqlite3.connect(tmp_path / "nbmlops.db")
    conn.executescript(V1_SCHEMA)
    conn.executemany("INSERT INTO experiments VALUES (?, ?, 0)", [(1, "baseline"), (2, "tuning")])
    for run_id, exp, name, status, start, duration, user in RUNS:
        end = None if duration is None else epoch(start) + duration
        conn.execute(
            "INSERT INTO runs (run_id, experiment_id, name, status, start_time, end_time, user) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, exp, name, status, epoch(start), end, user),
        )
    conn.executemany("INSERT INTO params (run_id, key, value, value_num) VALUES (?,?,?,?)", PARAMS)
    conn.executemany("INSERT INTO latest_metrics VALUES (?, ?, ?, 0, 0, NULL)", METRICS)
    conn.executemany("INSERT INTO tags VALUES (?, ?, ?)", TAGS)
    conn.commit()
    yield conn
    conn.close()


def select(conn, text, now=None):
    sql, values = compile_filter(parse_filter(text), now=now)
    rows = conn.execute(
        "SELECT r.run_id FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id "
        f"WHERE {sql}",
        values,
    )
    return {run_id for (run_id,) in rows}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params.lr = 0.01", "r1 r2"),  # value_num: '0.010' is 0.01
        ("params.lr = '0.010'", "r2"),  # text
        ("params.lr != 0.01", "r3 r4"),  # present and different; 'auto' is not a number
        ("NOT (params.lr = 0.01)", "r3 r4 r5 r6"),  # NOT also takes runs without lr
        ("params.lr < 0.05", "r1 r2"),
        ("params.lr > 0", "r1 r2 r3"),
        ("params.opt IN ('adam', 1)", "r1 r3 r5"),
        ("params.opt NOT IN ('adam', 1)", "r2"),
        ("params.shuffle = true", "r1"),
        ("params.'my key' = 'x'".replace("'my key'", '"my key"'), "r3"),
        ("params.lr IS NULL", "r5 r6"),
        ("params.opt LIKE 'a%'", "r1 r3"),
        ("metrics.acc > 0.8", "r1 r3"),
        ("metrics.acc != 0.5", "r1 r3 r4"),  # NaN differs from everything
        ("metrics.acc IS NOT NULL", "r1 r2 r3 r4"),  # NaN is present
        ("metrics.val.acc >= 0.93", "r3"),
        ("metrics.acc IN (0.5, 0.9)", "r1 r2"),
        ("metrics.acc NOT IN (0.5, 0.9)", "r3 r4"),
        ("tags.team = 'vision'", "r1"),
        ("tags.team LIKE 'vision%'", "r1 r6"),  # case-sensitive
        ("tags.team ILIKE 'vision'", "r1 r2"),
        ("tags.team LIKE 'vision_x'", "r6"),
        ("tags.team NOT LIKE 'v%'", "r2 r3"),
        ("tags.epoch = 10", "r1"),  # numbers compare as their text
        ("status = 'failed' OR status = 'running'", "r2 r4"),
        ("status IN ('failed', 'running')", "r2 r4"),
        ("NOT status = 'finished'", "r2 r4 r5"),
        ("experiment = 'tuning'", "r3 r4 r5"),
        ("user = 'ana'", "r1"),
        ("name LIKE 'run%'", "r2 r3 r5"),
        ("name ILIKE 'run-%'", "r1 r2 r6"),
        ("name LIKE 'run*%'", "r5"),  # GLOB's * is matched literally
        ("name != 'run-b'", "r1 r3 r5 r6"),  # r4 has no name
        ("NOT (name = 'run-b')", "r1 r3 r4 r5 r6"),
        ("end_time IS NULL", "r4"),
        ("start_time >= '2026-11-02'", "r3 r5 r6"),
        ("start_time < '2026-11-01T10:00'", "r1 r4"),
        ("start_time < '2026-11-01T11:00+02:00'", "r4"),
        ("start_time IN ('2026-11-03', '2026-11-04T00:00Z')", "r5 r6"),
        ("duration_s > 60", "r2 r6"),
        ("(experiment = 'baseline' AND metrics.acc > 0.6) OR params.opt = 'sgd'", "r1 r2"),
    ],
)
def test_filter_selects_runs(db, text, expected):
    assert select(db, text) == set(expected.split())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("start_time > '-2d'", "r5 r6"),
        ("start_time >= 'today'", "r6"),
        ("start_time >= 'yesterday' AND start_time < 'today'", "r5"),
        ("start_time > 'now'", ""),
    ],
)
def test_relative_times_use_now(db, text, expected):
    now = epoch("2026-11-04T12:00")
    assert select(db, text, now=now) == set(expected.split())


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("metrics.acc = 'high'", 14, "metrics.acc holds numbers"),
        ("metrics.acc IN (1, 'x')", 19, "holds numbers"),
        ("metrics.acc LIKE '1%'", 17, "LIKE compares text"),
        ("start_time LIKE '2026%'", 16, "LIKE compares text"),
        ("start_time > 'last tuesday'", 13, "is not a time for start_time"),
        ("end_time IN (1, '2026-13-01')", 16, "ISO-8601"),
        ("duration_s > 'long'", 13, "duration_s is a number"),
        ("status = 'finsihed'", 9, "unknown status 'finsihed'; a run's status is one of"),
    ],
)
def test_compile_error_points_at_literal(text, position, words):
    with pytest.raises(FilterSyntaxError) as info:
        compile_filter(parse_filter(text))
    assert (info.value.position, info.value.text) == (position, text)
    assert words in info.value.reason


@pytest.mark.parametrize(
    "text",
    [
        "name = 'x'' OR 1=1 --'",
        "params.`k'; DROP TABLE runs; --` = 1",
        "tags.\"team') OR 1=1 --\" = 'x'",
        "tags.team IN ('a'') OR (1=1', 'b')",
        "name LIKE '%'' OR ''1''=''1'",
    ],
)
def test_injection_selects_nothing_and_leaves_tables(db, text):
    assert select(db, text) == set()
    assert db.execute("SELECT count(*) FROM runs").fetchone() == (6,)
    assert db.execute("SELECT count(*) FROM params").fetchone() == (len(PARAMS),)


def test_sql_text_holds_only_placeholders():
    text = (
        "params.secret_k = 'needle1' AND tags.`needle2` LIKE 'needle3%' AND name IN ('needle4')"
        " AND metrics.m > 1234.5 AND start_time > '2026-11-01' AND experiment = 'needle5'"
    )
    sql, values = compile_filter(parse_filter(text))
    for word in ("needle", "secret_k", "1234", "2026"):
        assert word not in sql
    assert sql.count("?") == len(values)
    assert {"secret_k", "needle1", "needle2", "needle3*", "needle4", 1234.5} <= set(values)


def test_unquoted_keys_may_be_non_ascii():
    assert parse_filter("params.größe >= 2") == Compare(P("größe"), ">=", 2)
