"""HTML pieces shared by the live panels and their static (saved / exported) renderings."""

from __future__ import annotations

import difflib
import html
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from nbmlops import _display
from nbmlops._display import when as when  # the panels' times, as everywhere in nbmlops
from nbmlops._figures import figure_png as figure_png  # the panels inline figures through here

if TYPE_CHECKING:
    import pandas as pd

TABLE_STYLE = (
    "border-collapse:collapse;font-size:12px;font-family:var(--jp-ui-font-family,sans-serif)"
)
CELL = "padding:2px 8px;border-bottom:1px solid #e0e0e0;text-align:left"
HIGHLIGHT = "background:#c8e6c9;font-weight:bold"
DIFFERENT = "background:#fff3e0"


def message(text: str, ok: bool = True) -> str:
    """A one-line outcome under a panel's buttons: green when it worked, red when not."""
    colour = "#2e7d32" if ok else "#c62828"
    return f"<div style='color:{colour};white-space:pre-wrap'>{html.escape(text)}</div>"


def fmt(value: Any) -> str:
    """A table cell: as nbmlops shows every value (:func:`nbmlops._display.value`), a missing
    one (NaN in a wide frame) left empty."""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return _display.value(value)


def table(
    frame: pd.DataFrame,
    *,
    index: bool = True,
    cell_style: Callable[[Any, str], str] | None = None,
    max_rows: int = 500,
) -> str:
    """A compact HTML table; ``cell_style(row_label, column)`` may add CSS per cell."""
    head = "".join(
        f"<th style='{CELL}'>{html.escape(str(c))}</th>"
        for c in ([frame.index.name or ""] if index else []) + list(frame.columns)
    )
    rows = []
    for label, row in list(frame.iterrows())[:max_rows]:
        cells = [f"<th style='{CELL}'>{html.escape(str(label))}</th>"] if index else []
        for column in frame.columns:
            style = CELL + (";" + cell_style(label, column) if cell_style else "")
            cells.append(f"<td style='{style}'>{html.escape(fmt(row[column]))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = len(frame) - max_rows
    tail = f"<tr><td colspan='99'>… {more} more rows</td></tr>" if more > 0 else ""
    return f"<table style='{TABLE_STYLE}'><tr>{head}</tr>{''.join(rows)}{tail}</table>"


def unified_diff(lines: Sequence[str]) -> str:
    colours = {"+": "#e6ffec", "-": "#ffebe9", "@": "#ddf4ff"}
    rows = []
    for line in lines:
        colour = "transparent" if line.startswith(("+++", "---")) else colours.get(line[:1], "")
        rows.append(
            f"<div style='background:{colour or 'transparent'}'>{html.escape(line) or '&nbsp;'}"
            "</div>"
        )
    body = "".join(rows) or "<div><i>same source</i></div>"
    return f"<pre style='font-size:12px;line-height:1.35;margin:0'>{body}</pre>"


def side_by_side(a: str, b: str, a_label: str, b_label: str) -> str:
    table_html = difflib.HtmlDiff(wrapcolumn=70).make_table(
        a.splitlines(), b.splitlines(), html.escape(a_label), html.escape(b_label)
    )
    style = (
        "<style>.diff_add{background:#e6ffec}.diff_chg{background:#fff8c5}"
        ".diff_sub{background:#ffebe9}table.diff{font-family:monospace;font-size:12px}"
        ".diff_next{display:none}</style>"
    )
    return style + table_html


def section(title: str, body: str) -> str:
    return f"<h4 style='margin:10px 0 4px'>{html.escape(title)}</h4>{body}"
