"""The param codec: how a param value is stored (``params.value`` text and ``value_num``) and
read back. One reading serves ``Run.params``, the packed run summaries and ``nbm.runs()``.

A param is text plus, for numbers and bools, its numeric value (so filters compare numbers as
numbers). The text tells the kind back: ``True``/``False`` is a bool, digits an integer, any
other text with a number a float, text without one a string.
"""

from __future__ import annotations

import json
import math
from typing import Literal

Kind = Literal["i", "f", "b", "s"]  # integer, float, bool, string


def encode_param(value: object) -> tuple[str, float | None]:
    """A param's stored text and, for numbers and bools, its numeric value."""
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        value = value.item()  # numpy scalar -> Python scalar
    if isinstance(value, bool | int):
        return str(value), float(value)
    if isinstance(value, float):
        return repr(value), None if math.isnan(value) else value
    if isinstance(value, str):
        return value, None
    try:
        return json.dumps(value, sort_keys=True), None
    except (TypeError, ValueError):
        return repr(value), None


def param_kind(text: str, number: float | None) -> Kind:
    """The kind of a stored param (see the module docstring)."""
    if number is None:
        return "s"
    if text in ("True", "False"):
        return "b"
    if text.lstrip("-").isdigit():
        return "i"
    return "f"


def decode_param(text: str, number: float | None) -> object:
    """The value a stored param stands for: bool, int, float or text."""
    kind = param_kind(text, number)
    if kind == "s":
        return text
    if kind == "b":
        return text == "True"
    if kind == "i":
        return int(text)
    return number


def number_text(kind: Kind, value: float) -> str:
    """The stored text of a number param of this kind, from its numeric value."""
    if kind == "i":
        return str(int(value))
    if kind == "b":
        return str(bool(value))
    return repr(value)
