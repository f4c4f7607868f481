"""Values as JSON-able data: how params and hyperparameters are recorded.

Numbers, strings, bools and None stay as they are; numpy scalars become Python scalars; tuples
become lists, sets sorted lists, small 1-d arrays lists; dict keys become strings the way json
writes them; classes and functions their dotted name (a repr would hold a memory address, so
every run would record a different value); anything else its repr, cut at 200 characters.
Standard library only: the cell analysis uses it on every tracked cell.
"""

from __future__ import annotations

import types

_MAX_REPR = 200
_MAX_ARRAY = 100  # 1-d numeric arrays up to this size become lists, larger ones a repr
_ARRAY_KINDS = frozenset("biufU")  # bool, int, uint, float, str


def jsonable(value: object) -> object:
    """``value`` as JSON-able data (see the module docstring)."""
    return _to_json(value)


def _to_json(value: object) -> object:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return float(value) if isinstance(value, float) else int(value)
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "ndim", None) == 0 and hasattr(value, "dtype"):
        try:
            scalar = item()  # numpy scalar or 0-d array -> Python scalar
        except Exception:
            return _repr(value)
        if scalar is None or isinstance(scalar, bool | int | float | str):
            return scalar
        return _repr(value)
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    if _is_small_array(value):
        return _to_json(value.tolist())  # type: ignore[attr-defined]
    if isinstance(value, set | frozenset):
        items = [_to_json(v) for v in value]
        try:
            return sorted(items)  # type: ignore[type-var]
        except TypeError:
            return sorted(items, key=repr)
    if isinstance(value, dict):
        return {_json_key(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, type | types.FunctionType | types.BuiltinFunctionType):
        return f"{value.__module__}.{value.__qualname__}"
    return _repr(value)


def _is_small_array(value: object) -> bool:
    """A numpy array short enough to read as a list, e.g. ``np.logspace(-3, 3, 7)`` in a grid."""
    if getattr(value, "ndim", None) != 1 or not hasattr(value, "tolist"):
        return False
    dtype_kind = getattr(getattr(value, "dtype", None), "kind", None)
    return dtype_kind in _ARRAY_KINDS and getattr(value, "size", _MAX_ARRAY + 1) <= _MAX_ARRAY


def _json_key(key: object) -> str:
    if isinstance(key, str):
        return key
    converted = _to_json(key)
    if isinstance(converted, str):
        return converted
    if isinstance(converted, bool):
        return "true" if converted else "false"
    if converted is None:
        return "null"
    if isinstance(converted, int | float):
        return repr(converted)
    return _repr(key)


def _repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__qualname__}>"
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."
