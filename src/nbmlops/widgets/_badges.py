"""The evaluation badge (issue #21): unseen, leaky, not comparable or unchecked, as the runs and
models panels show it next to metrics, so a metric measured on leaky data is seen as such."""

from __future__ import annotations

import html

from nbmlops.evaluation.result import COLOURS, Evaluation


def badge_html(evaluation: Evaluation | None) -> str:
    """The badge as a coloured label; hovering shows the evaluation and the data it was on."""
    if evaluation is None:
        return ""
    colour = colour_of(evaluation)
    return (
        f"<span title='{html.escape(describe(evaluation), quote=True)}' style='background:"
        f"{colour};color:white;border-radius:4px;padding:0 5px;white-space:nowrap'>"
        f"{html.escape(evaluation.badge)}</span>"
    )


def colour_of(evaluation: Evaluation) -> str:
    return COLOURS.get(evaluation.status, COLOURS["unchecked"])


def describe(evaluation: Evaluation) -> str:
    """``evaluation 7 on wine-test@3: leaky (10 rows seen in training)``."""
    return (
        f"evaluation {evaluation.evaluation_id} on {data_of(evaluation)}: {badge_text(evaluation)}"
    )


def badge_text(evaluation: Evaluation) -> str:
    """``leaky (10 rows seen in training)``: the badge and why."""
    detail = evaluation.detail
    return f"{evaluation.badge} ({detail})" if detail else evaluation.badge


def data_of(evaluation: Evaluation) -> str:
    """The data evaluated on: its dataset version, else the start of its fingerprint."""
    return evaluation.dataset_ref or evaluation.dataset_id[:12]
