"""A filter naming a key no run has says so, with the nearest keys (issue #13, item 5)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import nbmlops as nbm
from nbmlops.errors import UnknownKeyWarning
from nbmlops.filter import Field, fields_named, parse_filter


@pytest.fixture
def recorded(home: Path) -> None:
    with nbm.start_run("a") as run:
        run.log_metrics({"loss": 0.5, "val_loss": 0.6, "auc": 0.9})
        run.log_params({"lr": 0.1, "max_depth": 3})
        run.set_tag("team name", "vision")


@pytest.mark.parametrize(
    ("query", "hint"),
    [
        ("metrics.los < 1", "did you mean metrics.loss?"),
        ("metrics.valloss < 1", "did you mean metrics.val_loss or metrics.loss?"),
        ("params.max_dept = 3", "did you mean params.max_depth?"),
        ("tags.`team nme` = 'vision'", "did you mean tags.`team name`?"),
        ("params.zzz != 1", "no key is close to it"),
    ],
)
def test_a_key_no_run_has_warns_with_the_nearest(recorded: None, query: str, hint: str):
    field = query.rsplit(" ", 2)[0]
    with pytest.warns(UnknownKeyWarning) as caught:
        nbm.runs(query)
    assert [str(w.message) for w in caught] == [
        f"No run has {field}, which the filter names; {hint}"
    ]


def test_keys_the_store_has_and_attributes_never_warn(recorded: None):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = nbm.runs("metrics.loss < 1 AND params.lr = 0.1 AND status = 'finished'")
    assert frame["name"].tolist() == ["a"]


def test_one_warning_lists_every_unknown_key_once(recorded: None):
    with pytest.warns(UnknownKeyWarning) as caught:
        nbm.runs("metrics.auc > 0.5 OR (metrics.acu > 0.5 AND NOT metrics.acu < 0) OR tags.lr = 1")
    assert len(caught) == 1
    assert caught[0].message.unknown == {"metrics.acu": ["metrics.auc"], "tags.lr": []}
    assert str(caught[0].message) == (
        "No run has these 2 keys the filter names: metrics.acu (did you mean metrics.auc?); "
        "tags.lr (no key is close to it)"
    )


def test_fields_named_lists_each_keyed_field_once_in_order():
    tree = parse_filter("status = 'failed' OR (params.a = 1 AND NOT tags.b = 'x') OR params.a > 2")
    assert tree is not None
    assert fields_named(tree) == [Field("params", "a"), Field("tags", "b")]
