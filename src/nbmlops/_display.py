"""How nbmlops shows values to people: one format for times, booleans, numbers and structures,
used by the CLI, the panels and the registry's messages (issue #13 item 3).

* **Times** are UTC, to the second: ``2026-12-06 02:53:47 UTC`` in sentences and key/value
  listings, without the `` UTC`` in table cells (:func:`when`). Epoch seconds, aware and naive
  datetimes (naive ones are taken as UTC, as the store records them) and pandas Timestamps all
  read the same way.
* **Booleans** are ``true``/``false`` in text and CSV (JSON output keeps real booleans).
* **Numbers** keep six significant digits; **structures** (dicts, lists) are compact JSON on one
  line (:func:`value`) or an indented block (:func:`block`) where there is room.
* **Durations** read as they are shown: :func:`parse_duration` takes ``90s``, ``5m``, ``1h30m``,
  ``6h``, ``7d`` (windows, cooldowns and intervals in ``nbmlops.toml``, the CLI and the API).
* **Tables** for a terminal: :func:`table` lays out rows of text cells, one column possibly
  wrapped to fit the width.

Only the standard library is imported: every layer may use this module.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import textwrap
from collections.abc import Sequence
from typing import Any

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar it holds (numpy itself is not imported)."""
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        return value.item()
    return value


def missing(value: Any) -> bool:
    """None, pandas.NA or NaT: a cell with nothing in it (a NaN float is a value: ``nan``)."""
    return value is None or type(value).__name__ in ("NAType", "NaTType")


def when(moment: Any, *, zone: bool = True) -> str:
    """A moment as nbmlops shows it: ``2026-12-06 02:53:47 UTC`` ("" for a missing one).

    ``moment`` is epoch seconds, a datetime (naive: UTC) or a pandas Timestamp; ``zone=False``
    leaves out the `` UTC`` (table cells, whose column says what it is)."""
    moment = _plain(moment)
    if missing(moment) or (isinstance(moment, float) and math.isnan(moment)):
        return ""
    if isinstance(moment, int | float):
        moment = dt.datetime.fromtimestamp(moment, dt.UTC)
    elif isinstance(moment, dt.datetime) and moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    text = moment.strftime(TIME_FORMAT)
    return f"{text} UTC" if zone else str(text)


def duration(seconds: float | None) -> str:
    """A duration for people: ``87 ms``, ``12.3 s``, ``3 min 02 s``, ``2 h 05 min``."""
    seconds = _plain(seconds)
    if missing(seconds) or math.isnan(seconds):
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def size(n: int) -> str:
    """A byte count as people read it: ``812 B``, ``16.2 kB``, ``1.1 GB`` (powers of 1000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 run"``, ``"3 runs"``, ``"1,000 metric points"``: ``noun`` is the singular."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def parse_duration(text: str | float | dt.timedelta, *, what: str = "duration") -> float:
    """Seconds in ``text``: a number of seconds, a timedelta, or units summed from the largest:
    ``"90s"``, ``"5m"`` (or ``"5min"``), ``"1h30m"``, ``"6h"``, ``"7d"``, ``"2w"``. ``what``
    names the setting in the ValueError raised for anything else, or for a duration <= 0."""
    if isinstance(text, dt.timedelta):
        seconds = text.total_seconds()
    elif isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    elif isinstance(text, str):
        compact = text.strip().lower().replace(" ", "")
        parts = re.findall(r"(\d+(?:\.\d+)?)(min|sec|[smhdw])", compact)
        if not parts or "".join(n + u for n, u in parts) != compact:
            raise ValueError(
                f"{what}={text!r} is not a duration: write it like '90s', '5m', '1h30m', '6h' "
                "or '7d'"
            )
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"{what}={text!r} is not a duration (text like '5m', or seconds)")
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"{what}={text!r} must be a positive, finite duration")
    return seconds


def value(item: Any) -> str:
    """One value on one line: ``true``/``false``, numbers to six significant digits, times by
    :func:`when`, structures as compact JSON, "" for a missing value."""
    item = _plain(item)
    if missing(item):
        return ""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, float):
        if math.isnan(item) or math.isinf(item):
            return str(item)
        # Six significant digits, but never an exponent hiding a large number's integer part
        # (epoch seconds in an SQL result).
        return f"{item:.0f}" if 1e6 <= abs(item) < 1e15 else f"{item:.6g}"
    if isinstance(item, dt.datetime):
        return when(item)
    if isinstance(item, dict | list | tuple):
        return json.dumps(item, sort_keys=True, ensure_ascii=False)
    return str(item)


def _scalar(item: Any) -> bool:
    return not isinstance(item, dict | list | tuple)


def _flat(item: Any) -> bool:
    """A scalar, or a list of scalars: shown on one line."""
    return _scalar(item) or (not isinstance(item, dict) and all(_scalar(x) for x in item))


def block(item: Any, indent: int = 0) -> list[str]:
    """A structure as indented lines: a dict as aligned ``key  value`` lines (nested ones
    indented under their key), a list of flat dicts as a small table, a list of scalars on one
    line. An empty structure is ``(none)``."""
    pad = " " * indent
    if isinstance(item, dict):
        if not item:
            return [f"{pad}(none)"]
        width = max(len(str(k)) for k in item)
        lines = []
        for key, inner in item.items():
            if not inner or _flat(inner):
                lines.append(f"{pad}{key!s:<{width}}  {_inline(inner)}".rstrip())
            else:
                lines += [f"{pad}{key}", *block(inner, indent + 2)]
        return lines
    if isinstance(item, list | tuple) and item and all(isinstance(x, dict) for x in item):
        if all(_scalar(v) for x in item for v in x.values()):
            headers = list(dict.fromkeys(k for x in item for k in x))
            rows = [[value(x.get(k)) for k in headers] for x in item]
            return [pad + line for line in table(headers, rows)]
        return [line for x in item for line in block(x, indent + 2)]
    return [f"{pad}{_inline(item)}"]


def _inline(item: Any) -> str:
    if item is None:
        return "(none)"
    if isinstance(item, dict | list | tuple):
        if not item:
            return "(none)"
        if isinstance(item, list | tuple):
            return ", ".join(value(x) for x in item)
    return value(item)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[bool] | None = None,
    wrap: int | None = None,
    wrap_width: int = 0,
) -> list[str]:
    """Rows of text cells as aligned lines, two spaces between columns; ``right`` marks the
    columns aligned right (numbers). A header may span lines (``"metrics.\\nauc"``: a narrow
    column under a long name). Column ``wrap`` (an index), if given, is wrapped to
    ``wrap_width`` characters, its row continuing on the lines below."""
    right = right or [False] * len(headers)
    cells = [[str(c) for c in row] for row in rows]
    parts = [h.split("\n") for h in headers]
    height = max(len(p) for p in parts)
    parts = [[""] * (height - len(p)) + p for p in parts]
    widths = [max(len(x) for x in [*p, *(r[i] for r in cells)]) for i, p in enumerate(parts)]
    if wrap is not None:
        widths[wrap] = max(max(len(x) for x in parts[wrap]), min(widths[wrap], wrap_width))

    def line(row: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines = [line([p[i] for p in parts]) for i in range(height)]
    for row in cells:
        if wrap is None or len(row[wrap]) <= widths[wrap]:
            lines.append(line(row))
            continue
        pieces = textwrap.wrap(row[wrap], widths[wrap], break_long_words=True) or [""]
        lines.append(line([*row[:wrap], pieces[0], *row[wrap + 1 :]]))
        blank = [""] * len(row)
        lines += [line([*blank[:wrap], piece, *blank[wrap + 1 :]]) for piece in pieces[1:]]
    return lines
