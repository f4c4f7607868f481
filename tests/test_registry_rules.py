"""Promotion rules: the nbmlops.toml format, the rule grammar, line numbers and semantics."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from nbmlops.errors import RulesFileError
from nbmlops.registry.rule_language import Subject, evaluate, parse_rule
from nbmlops.registry.rules_file import find_rules_file, load_rules


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nbmlops.toml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def subject(ref: str = "wine/2", **metrics: float) -> Subject:
    return Subject(ref, metrics, {"depth": 6, "kind": "rf"}, {"X_eval": "a" * 32})


def check(rule: str, candidate: Subject, champion: Subject | None, **kw: str) -> tuple[bool, str]:
    result = evaluate(parse_rule(rule), candidate, champion, **kw)
    return result.passed, result.reason


GOOD = """
    # promotion rules, reviewed like code
    [rules.wine]
    promote_to = "champion"
    require = [
        "metrics.mae < champion.metrics.mae",
        'metrics.mae <= 50',
        "dataset.X_eval == champion.dataset.X_eval",
    ]

    [rules."fraud-v2"]
    promote_to = "production"
    if_no_champion = "fail"
    require = ["metrics.auc >= champion.metrics.auc + 1% * abs(champion.metrics.auc)"]
"""


def test_a_rules_file_parses_with_the_line_of_each_rule(tmp_path: Path):
    rules = load_rules(write(tmp_path, GOOD))
    wine = rules.for_model("wine")
    assert wine.promote_to == "champion" and wine.if_no_champion == "pass" and wine.line == 2
    assert [(r.text, r.line) for r in wine.require] == [
        ("metrics.mae < champion.metrics.mae", 5),
        ("metrics.mae <= 50", 6),
        ("dataset.X_eval == champion.dataset.X_eval", 7),
    ]
    fraud = rules.for_model("fraud-v2")
    assert (fraud.promote_to, fraud.if_no_champion, fraud.line) == ("production", "fail", 10)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[rules.wine]\nrequire = [\n  'metrics.mae < 5'\n  'x'\n]\n", 4, "invalid TOML"),
        ("[rules.wine]\npromote_to = champion\n", 2, "invalid TOML"),
        (
            "[rules.wine]\nrequire = ['metrics.mae < 5']\nrequires = []\n",
            3,
            "unknown key 'requires'",
        ),
        ("[rules.wine]\npromote_to = 'champion'\n", 1, "needs require = "),
        ("[rules.wine]\nrequire = []\n", 2, "non-empty list of rules"),
        ("[rules.wine]\nrequire = 'metrics.mae < 5'\n", 2, "non-empty list of rules"),
        ("[rules.wine]\nrequire = [5]\n", 2, "each rule is a string"),
        ("[rules.wine]\npromote_to = 'prod/1'\nrequire = ['metrics.a > 1']\n", 2, "Alias"),
        ("[rules.wine]\nif_no_champion = 'skip'\nrequire = ['metrics.a>1']\n", 2, "if_no_ch"),
        ("rules = 3\n", 1, "must be a table"),
        ("[rules]\nwine = 'x'\n", 2, "must be a table"),
        (
            "[rules.wine]\nrequire = [\n  'metrics.mae < 5',\n  'metrics.mae <',\n]\n",
            4,
            r"rule 'metrics.mae <': expected an operand at the end of the rule",
        ),
        (
            '# rules\n\n[rules.wine]\nrequire = ["metrics.mae < champion.mae"]\n',
            4,
            r"unknown operand 'champion.mae': use champion.metrics.<key>",
        ),
    ],
)
def test_a_malformed_rules_file_names_its_line(tmp_path: Path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(RulesFileError, match=message) as info:
        load_rules(path)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("metrics.mae", "expected a comparison"),
        ("metrics.mae < 5 < 6", "a second comparison after the comparison"),
        ("metrics.mae <> 5", "expected an operand, found '>'"),
        ("5 < 6", "compares two constants"),
        ("dataset.X < champion.dataset.X", "orders numbers; compare text and datasets with =="),
        ("dataset.X + 1 == 2", "is not a number and cannot be used with '\\+'"),
        ("metrics.a < abs(1, 2)", r"abs\(\) takes 1 argument"),
        ("metrics.a < sqrt(2)", "unknown operand 'sqrt'"),
        ("metrics.a < 5 $", "unexpected character '\\$' at column 15"),
        ("metrics < 1", "'metrics' needs a key"),
        ("", "empty rule"),
    ],
)
def test_malformed_rules_explain_the_problem(rule, message):
    with pytest.raises(RulesFileError, match=message):
        parse_rule(rule, path="nbmlops.toml", line=3)


@pytest.mark.parametrize(
    ("rule", "mae", "champion_mae", "passed"),
    [
        ("metrics.mae < champion.metrics.mae", 4.0, 5.0, True),
        ("metrics.mae < champion.metrics.mae", 5.0, 5.0, False),  # strict: equal is not better
        ("metrics.mae <= champion.metrics.mae", 5.0, 5.0, True),
        ("metrics.mae <= champion.metrics.mae - 0.5", 4.5, 5.0, True),  # absolute margin
        ("metrics.mae <= champion.metrics.mae - 0.5", 4.6, 5.0, False),
        ("metrics.mae <= champion.metrics.mae * 0.95", 4.75, 5.0, True),  # relative margin
        ("metrics.mae <= champion.metrics.mae * (1 - 5%)", 4.76, 5.0, False),
        ("metrics.mae > champion.metrics.mae", 6.0, 5.0, True),
        ("metrics.mae != champion.metrics.mae", 5.0, 5.0, False),
        ("max(metrics.mae, 1) / 2 >= 2", 4.0, 5.0, True),
        ("-metrics.mae < -3", 4.0, 5.0, True),
    ],
)
def test_strict_non_strict_and_margins(rule, mae, champion_mae, passed):
    assert check(rule, subject(mae=mae), subject("wine/1", mae=champion_mae))[0] is passed


# MLflow MetricThreshold (mlflow.models.evaluation.validation._validate) written as rules:
# min_relative_change=r with greater_is_better=True passes when m >= c + r * |c|, which keeps the
# right direction for a negative baseline (an R2 below zero), unlike m >= c * (1 + r).
@pytest.mark.parametrize(
    ("rule", "candidate", "baseline", "passed"),
    [
        ("metrics.r2 >= 0.8", 0.8, 0.0, True),  # threshold, greater is better: >=
        ("metrics.r2 >= champion.metrics.r2 + 0.05", 0.85, 0.8, True),  # min_absolute_change
        ("metrics.r2 >= champion.metrics.r2 + 0.05", 0.84, 0.8, False),
        ("metrics.r2 >= champion.metrics.r2 + 10% * abs(champion.metrics.r2)", -0.45, -0.5, True),
        ("metrics.r2 >= champion.metrics.r2 + 10% * abs(champion.metrics.r2)", -0.46, -0.5, False),
        ("metrics.r2 <= champion.metrics.r2 - 10% * abs(champion.metrics.r2)", 0.9, 1.0, True),
    ],
)
def test_mlflow_metric_threshold_semantics(rule, candidate, baseline, passed):
    result = check(rule, subject(r2=candidate), subject("wine/1", r2=baseline))
    assert result[0] is passed


@pytest.mark.parametrize(
    ("champion", "policy", "passed", "reason"),
    [
        (None, "pass", True, "no champion yet (@champion points at no version): rule passes"),
        (None, "fail", False, 'rule fails (if_no_champion = "fail")'),
        (subject("wine/1"), "pass", False, "wine/1 has no metric 'mae' (metrics: none)"),
    ],
)
def test_no_champion_and_missing_champion_metric(champion, policy, passed, reason):
    outcome = check(
        "metrics.mae < champion.metrics.mae", subject(mae=1), champion, if_no_champion=policy
    )
    assert outcome[0] is passed and reason in outcome[1]


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("metrics.mae < 3", "metrics.mae = 2 < 3"),
        ("metrics.mae < 1", "metrics.mae = 2 is not < 1"),
        ("metrics.rmse < 1", "metrics.rmse: wine/2 has no metric 'rmse' (metrics: mae, nan)"),
        ("metrics.nan < 1", "metrics.nan is NaN for wine/2"),
        ("params.depth <= 8", "params.depth = 6 <= 8"),
        ("params.kind == 'rf'", "params.kind = 'rf' == 'rf'"),
        ("params.kind < 3", "params.kind is 'rf', not a number"),
        ("params.seed == 1", "the training run of wine/2 has no param 'seed'"),
        ("dataset.X_eval == champion.dataset.X_eval", "dataset.X_eval = aaaaaaaaaaaa… =="),
        ("dataset.`data/eval.csv` == 'x'", "wine/2 has no dataset named 'data/eval.csv'"),
        ("metrics.mae / (metrics.mae - 2) < 1", "division by zero in metrics.mae / (metrics.mae"),
    ],
)
def test_each_result_has_a_reason(rule, reason):
    candidate = subject(mae=2.0, nan=math.nan)
    result = evaluate(parse_rule(rule), candidate, subject("wine/1", mae=3.0))
    assert reason in result.reason


def test_values_used_by_a_rule_are_kept():
    result = evaluate(
        parse_rule("metrics.mae < champion.metrics.mae * 0.9"),
        subject(mae=2.0),
        subject("wine/1", mae=3.0),
    )
    assert result.values == {"metrics.mae": 2.0, "champion.metrics.mae": 3.0}
    assert result.to_dict()["status"] == "passed"


def test_the_rules_file_is_found_from_the_store_folder_upwards(tmp_path: Path):
    path = write(tmp_path, GOOD)
    store_folder = tmp_path / "project" / "notebooks" / ".nbmlops"
    store_folder.mkdir(parents=True)
    assert find_rules_file(store_folder) == path
    assert find_rules_file(Path("/")) is None or find_rules_file(Path("/")) != path


def test_rules_sharing_a_line_or_repeated_get_their_own_line(tmp_path: Path):
    text = """
        [rules.wine]
        require = [
            "metrics.a < 1", "metrics.b < 1",
            "metrics.c < 1",
            "metrics.a < 1",
        ]
    """
    rules = load_rules(write(tmp_path, text)).for_model("wine").require
    assert [r.line for r in rules] == [3, 3, 4, 5]
