"""Filters at and past their limits, and fuzzed: a clear FilterSyntaxError, never a crash."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbmlops as nbm
from nbmlops.errors import FilterSyntaxError
from nbmlops.filter import MAX_CONDITIONS, MAX_DEPTH, MAX_LENGTH, MAX_VALUES


@pytest.fixture
def one_run(home: Path) -> str:
    with nbm.start_run("r") as run:
        run.log_param("lr", 0.1)
        run.log_metric("auc", 0.9)
        run.set_tag("team", "a")
    return run.run_id


def _nested(levels: int) -> str:
    """The costliest nesting SQLite sees per level: NOT around an OR in parentheses."""
    text = "params.lr = 0.1"
    for i in range(levels):
        text = f"NOT (metrics.auc > {i} OR {text})"
    return text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("(" * 300 + "params.lr = 1" + ")" * 300, f"nest more than {MAX_DEPTH} levels"),
        ("NOT " * 50 + "params.lr = 1", f"nest more than {MAX_DEPTH} levels"),
        (_nested(MAX_DEPTH // 2 + 1), f"nest more than {MAX_DEPTH} levels"),
        (" OR ".join(["params.lr = 1"] * (MAX_CONDITIONS + 1)), f"more than {MAX_CONDITIONS}"),
        ("params.x = '" + "y" * MAX_LENGTH + "'", f"over the limit of {MAX_LENGTH:,}"),
        ("params.x IN (" + "1," * MAX_VALUES + "2)", f"more than {MAX_VALUES:,} values"),
    ],
)
def test_filters_past_a_limit_are_refused_naming_it(one_run: str, text: str, reason: str):
    with pytest.raises(FilterSyntaxError, match=reason):
        nbm.runs(text)


@pytest.mark.parametrize(
    "text",
    [
        _nested(MAX_DEPTH // 2),
        "(" * MAX_DEPTH + "params.lr = 0.1" + ")" * MAX_DEPTH,
        " OR ".join(f"params.lr = {i}" for i in range(MAX_CONDITIONS - 1)) + " OR params.lr = 0.1",
        " AND ".join(f"NOT (metrics.auc > {i} AND tags.team = 'b')" for i in range(500)),
        "NOT NOT " * (MAX_DEPTH // 2) + "params.lr = 0.1",
        "params.lr IN (" + "1," * (MAX_VALUES - 2) + "0.1)",
    ],
)
def test_filters_within_the_limits_run_in_sqlite(one_run: str, text: str):
    assert nbm.runs(text)["run_id"].tolist() in ([one_run], [])


def test_a_long_or_chain_inside_nesting_still_fits_sqlite(one_run: str):
    chain = " OR ".join(f"tags.t{i} = 'x'" for i in range(100))
    text = "params.lr = 0.1"
    for _ in range(MAX_DEPTH // 3):  # three levels each: NOT, the parentheses, NOT
        text = f"NOT ({chain} OR NOT {text})"
    with pytest.warns(nbm.UnknownKeyWarning, match="No run has these 100 keys"):
        assert nbm.runs(text)["run_id"].tolist() == [one_run]


_TOKENS = st.sampled_from(
    [
        "params.lr",
        "metrics.auc",
        "tags.team",
        "status",
        "start_time",
        "duration_s",
        "name",
        "params.`a b`",
        'metrics."x"',
        "=",
        "!=",
        "<",
        ">=",
        "<>",
        "==",
        "LIKE",
        "ILIKE",
        "IN",
        "NOT",
        "AND",
        "OR",
        "IS",
        "NULL",
        "(",
        ")",
        ",",
        "0.1",
        "-3",
        "1e308",
        "1e999",
        "'a'",
        "'%'",
        "'2026-11-01'",
        "'-7d'",
        "'finished'",
        "true",
        "\\",
        "'",
        '"',
        "`",
        "\x00",
        "\ud800",
        "é",
        "params.",
        ".",
        "--",
        ";",
        "/*",
    ]
)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # CI: repeatable
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(_TOKENS, max_size=25).map(" ".join) | st.text(max_size=60))
def test_fuzzed_filters_give_a_frame_or_a_filter_syntax_error(one_run: str, text: str):
    try:
        frame = nbm.runs(text)
    except FilterSyntaxError as exc:
        assert exc.reason and str(exc).splitlines()[-1].strip() == "^"
    else:
        assert isinstance(frame, pd.DataFrame)
