"""Content fingerprints of datasets: DataFrames, Series, numpy arrays, bytes and files.

A fingerprint is an XXH3-128 digest (32 hex characters) of the *whole* content: every row, the
column labels, the dtypes and the index. MLflow's dataset digest hashes the first 10,000 rows into
32 bits; a change in the last row of a million must change ours. The digest never depends on
Python's ``hash()``, the process, the chunk sizes used while hashing, or the pandas/numpy version
that built the object, only on the canonical content described below.

Tabular objects are hashed as one stream: a version tag (``nbmlops-fp-v1``), the kind, the shape,
then each index level and each column as ``label, dtype tag, data``. Labels are type-tagged and
length-prefixed, so ``("ab", "c")`` and ``("a", "bc")`` differ and so do ``0`` and ``"0"``.
Numeric data is hashed straight from the column's numpy buffer, without a copy, which is what lets
a numeric frame hash at memory speed. Bytes and files are the plain XXH3-128 of their content, the
same value ``xxh128sum`` prints.

What changes the digest (✗ = new digest, ✓ = same digest):

==========================================================  ====  =================================
Change                                                      Dig.  Why
==========================================================  ====  =================================
any value in any row, including the last of a million       ✗     every row is hashed
row order, column order                                     ✗     order is content (``df[cols]``)
column or index name; ``df.columns.name``                   ✗     labels are content
int32 vs int64; float32 vs float64 (same values)            ✗     the dtype is part of the content
nullable ``Int64`` vs ``float64`` with the same values      ✗     dtype tag differs
datetime or timedelta unit: s, ms, us, ns (same instants)   ✓     hashed as int64 ns; see below
same, with a value outside 1677-09-21 .. 2262-04-11         ✗     no int64 ns: unit + raw counts
time zone of a tz-aware column (same instants)              ✗     the zone is in the dtype tag
``reset_index()`` (index becomes a column)                  ✗     the index is hashed, with name
``reset_index(drop=True)`` of a named or non-0..n-1 index   ✗     index values and name changed
``RangeIndex(0, n)`` vs int64 ``Index`` of ``0..n-1``       ✓     the index is hashed by its values
category order, or categorical vs plain strings             ✗     categories + codes are hashed
``0.0`` vs ``-0.0``                                         ✗     see below
NaN bit patterns (payload, sign, quiet/signalling)          ✓     every NaN hashed as one pattern
``object`` of str vs ``str``, ``string``, Arrow strings     ✓     all tagged ``string`` (pandas 3)
``None`` / ``NaN`` / ``pd.NA`` missing in a string column   ✓     one null marker
values under the mask of ``Int64``/``Float64``/``boolean``  ✓     masked slots are zeroed
byte order (``>f8`` vs ``<f8``), memory layout, copies      ✓     data is hashed little-endian
``df.attrs``, ``df.flags``, the pandas/pyarrow version      ✓     not content
==========================================================  ====  =================================

-0.0 is kept distinct from 0.0: it survives CSV and Parquet round trips and changes results
(``1 / x``, ``np.signbit``, ``np.copysign``), so two frames that differ by it are not
interchangeable. NaN payloads, by contrast, are not chosen by the user (``0/0`` gives a negative
NaN on x86, ``np.nan`` a positive one), are lost by CSV, and no pandas operation can observe them.
Keeping -0.0 also keeps the NaN-free path copy-free: a column is copied, one 1 MiB chunk at a
time, only where a chunk holds a NaN.

Datetimes and timedeltas are hashed as int64 nanoseconds under a ``datetime64[ns]`` or
``timedelta64[ns]`` tag (``datetime64[ns, <zone>]`` when tz-aware), whatever their unit: pandas 2
builds ``[ns]`` where pandas 3 builds ``[us]`` (``date_range``, ``to_datetime``, CSV parsing), and
the same data must keep its digest across that upgrade. The conversion is exact (integer
multiplication, one 1 MiB chunk at a time; NaT stays the minimum int64), so different instants
never collide, and an ``[ns]`` column is hashed from its buffer without a copy, as before. Only
when some value has no exact int64 nanosecond form (outside 1677-09-21 .. 2262-04-11, a
sub-nanosecond remainder, a ``timedelta64`` in months or years, numpy's unitless ``datetime64``)
is the column hashed as before: its own unit in the tag (``datetime64[s]``, which an in-range
column never gets) and the raw int64 counts. Such a column is unit-dependent, and never equal to an
in-range column. ``np.datetime64``/``np.timedelta64`` values in ``object`` columns follow the same
rule; Arrow ``timestamp``/``duration`` columns are tagged with ``ns`` whatever their unit.

An ``object`` column whose non-missing values are all ``str`` is hashed as ``string``; any other
``object`` column is hashed value by value with a type tag (None/NaN/pd.NA/NaT, bool, int, float,
complex, str, bytes, date, datetime, time, timedelta, Decimal, numpy scalars, and lists, tuples
and numpy arrays of those). Anything else raises ``TypeError`` naming the column and row.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import math
import os
import struct
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import xxhash

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    import pandas as pd

    NDArray = np.ndarray[Any, Any]

__all__ = ["Fingerprint", "fingerprint", "fingerprint_file", "is_fingerprintable"]

_VERSION = b"nbmlops-fp-v1\x00"
# Chunk sizes only bound memory and keep work in cache; the digest does not depend on them.
_CHUNK_BYTES = 1 << 20
_CHUNK_ROWS = 1 << 16
_FILE_CHUNK = 1 << 20
_FEW_NANS = 64  # up to this many NaNs in a chunk are hashed around instead of copying the chunk

_U64 = struct.Struct("<Q")
_F64 = struct.Struct("<d")
_C128 = struct.Struct("<dd")
_DATE = struct.Struct("<qBB")
_CLOCK = struct.Struct("<BBBIIB")  # hour, minute, second, microsecond, nanosecond, fold

# Strings are hashed as UTF-8 of esc(s) + NUL per value; NUL and \x01 inside values are escaped
# with \x01 and a missing value is \x01\x02, so the encoding is injective and chunk-independent.
_NUL = "\x00"
_ESC = "\x01"
_NULL_MARK = "\x01\x02"

_UNSUPPORTED = (
    "Cannot fingerprint object of type {name}; supported: pandas DataFrame/Series, numpy arrays, "
    "bytes, file paths"
)


@dataclass(frozen=True)
class Fingerprint:
    """The content digest of one object plus what it was taken of.

    ``digest`` is comparable across objects of the same ``kind``; ``bytes`` and ``file`` digests
    are the plain XXH3-128 of the content (what ``xxh128sum`` prints), so a file and its bytes
    agree. ``schema`` maps ``str(label)`` to the pandas dtype string, in column order.
    """

    digest: str
    kind: str
    n_rows: int | None = None
    n_columns: int | None = None
    schema: dict[str, str] | None = None

    def __hash__(self) -> int:
        # The generated hash would fail on the schema dict; equal objects share digest and kind.
        return hash((self.digest, self.kind))

    def __repr__(self) -> str:
        shape = "" if self.n_rows is None else f", n_rows={self.n_rows}"
        if self.n_columns is not None:
            shape += f", n_columns={self.n_columns}"
        return f"Fingerprint(kind={self.kind!r}, digest={self.digest!r}{shape})"

    def to_dict(self) -> dict[str, object]:
        return {
            "digest": self.digest,
            "kind": self.kind,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "schema": None if self.schema is None else dict(self.schema),
        }


def fingerprint(obj: object) -> Fingerprint:
    """Fingerprint a DataFrame, Series, numpy array, bytes-like object or the path of a file."""
    if isinstance(obj, bytes | bytearray | memoryview):
        data = memoryview(obj)
        if not data.c_contiguous:
            data = memoryview(data.tobytes())
        return Fingerprint(xxhash.xxh3_128(data.cast("B")).hexdigest(), "bytes")
    if isinstance(obj, str | os.PathLike):
        return fingerprint_file(obj)
    pd = sys.modules.get("pandas")
    if pd is not None:
        if isinstance(obj, pd.DataFrame):
            return _fingerprint_frame(obj)
        if isinstance(obj, pd.Series):
            return _fingerprint_series(obj)
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        return _fingerprint_ndarray(obj)
    raise TypeError(_UNSUPPORTED.format(name=type(obj).__name__))


def fingerprint_file(path: str | os.PathLike[str]) -> Fingerprint:
    """Stream a file through XXH3-128 in 1 MiB chunks; the digest equals ``xxh128sum``'s."""
    hasher = xxhash.xxh3_128()
    buffer = bytearray(_FILE_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            hasher.update(view[:n])
    return Fingerprint(hasher.hexdigest(), "file")


def row_hashes(obj: object) -> NDArray:
    """A 64-bit hash of each row of a DataFrame, Series or 2-D array, in row order (uint64).

    Rows with equal values hash equal whatever their position, index or column order (columns
    are taken in the order of their names), so a test row copied from the training set is found
    by its hash alone (the evaluation's unseen check). Values are compared as pandas does
    (``pd.util.hash_pandas_object``: NaN equals NaN; ``1`` and ``1.0`` differ, as their dtypes
    do). Not a content fingerprint: 64 bits, made to compare rows, not to name data.
    """
    import numpy as np
    import pandas as pd

    if isinstance(obj, np.ndarray):
        obj = pd.DataFrame(obj.reshape(len(obj), -1))
    if isinstance(obj, pd.Series):
        obj = obj.to_frame()
    if not isinstance(obj, pd.DataFrame):
        raise TypeError(f"row_hashes takes a DataFrame, Series or array, not {type(obj).__name__}")
    frame = obj[sorted(obj.columns, key=str)] if obj.shape[1] > 1 else obj
    hashes = pd.util.hash_pandas_object(frame, index=False, categorize=True)
    return np.ascontiguousarray(hashes.to_numpy(dtype=np.uint64))


def combine_row_hashes(first: NDArray, second: NDArray) -> NDArray:
    """The row hashes of two aligned tables side by side (features and target), from theirs."""
    import numpy as np

    with np.errstate(over="ignore"):
        return (first * np.uint64(0x9E3779B97F4A7C15)) ^ second


def is_fingerprintable(obj: object) -> bool:
    """Whether ``fingerprint(obj)`` accepts this type; cheap, imports nothing heavy.

    ``True`` for a DataFrame does not promise that every ``object`` column holds supported values.
    """
    if isinstance(obj, bytes | bytearray | memoryview):
        return True
    if isinstance(obj, str | os.PathLike):
        return os.path.isfile(obj)
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, pd.DataFrame | pd.Series):
        return True
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        return not _is_masked_array(obj) and _ndarray_dtype_problem(obj.dtype) is None
    return False


# --- tabular objects ------------------------------------------------------------------------


def _fingerprint_frame(df: pd.DataFrame) -> Fingerprint:
    hasher = _start("dataframe", (len(df), df.shape[1]))
    hasher.update(_encode_label(tuple(df.columns.names), "column axis names"))
    _update_index(hasher, df.index)
    schema: dict[str, str] = {}
    for label, column in df.items():  # positional, so duplicate labels are fine
        hasher.update(_encode_label(label, "column label"))
        _update_values(hasher, column, f"column {label!r}")
        schema[str(label)] = str(column.dtype)
    return Fingerprint(hasher.hexdigest(), "dataframe", len(df), df.shape[1], schema)


def _fingerprint_series(series: pd.Series[Any]) -> Fingerprint:
    hasher = _start("series", (len(series),))
    _update_index(hasher, series.index)
    hasher.update(_encode_label(series.name, "series name"))
    _update_values(hasher, series, f"series {series.name!r}")
    schema = {str(series.name): str(series.dtype)}
    return Fingerprint(hasher.hexdigest(), "series", len(series), 1, schema)


def _fingerprint_ndarray(array: NDArray) -> Fingerprint:
    import numpy as np

    if _is_masked_array(array):
        raise TypeError(
            "Cannot fingerprint a numpy masked array: the values under the mask are arbitrary; "
            "fill it first, e.g. fingerprint(arr.filled(0)), or fingerprint arr.mask separately"
        )
    hasher = _start("ndarray", array.shape)
    _update_array(hasher, np.ravel(array, order="C"), "array")
    n_rows = array.shape[0] if array.ndim >= 1 else None
    n_columns = array.shape[1] if array.ndim == 2 else None
    return Fingerprint(hasher.hexdigest(), "ndarray", n_rows, n_columns, None)


def _start(kind: str, shape: tuple[int, ...]) -> xxhash.xxh3_128:
    hasher = xxhash.xxh3_128(_VERSION)
    hasher.update(_encode_label(kind, "kind"))
    hasher.update(_encode_label(shape, "shape"))
    return hasher


def _update_index(hasher: xxhash.xxh3_128, index: pd.Index[Any]) -> None:
    import numpy as np

    hasher.update(_U64.pack(index.nlevels))
    for level_number in range(index.nlevels):
        level = index.get_level_values(level_number) if index.nlevels > 1 else index
        hasher.update(_encode_label(level.name, "index name"))
        dtype = level.dtype
        is_int64 = isinstance(dtype, np.dtype) and dtype.kind == "i" and dtype.itemsize == 8
        bounds = _range_bounds(level) if is_int64 else None
        if bounds is None:
            _update_values(hasher, level, f"index level {level_number}")
        else:
            _update_tag(hasher, "range")
            hasher.update(_encode_label(bounds, "range"))


def _range_bounds(index: pd.Index[Any]) -> tuple[int, int, int] | None:
    """(start, stop, step) when the int64 index equals a range, normalised so equal ranges agree.

    A RangeIndex costs O(1); an int64 Index is compared chunk by chunk and usually fails on the
    first or last value, so RangeIndex(0, n) and Index(range(n)) hash alike without materialising.
    """
    import numpy as np
    import pandas as pd

    n = len(index)
    if isinstance(index, pd.RangeIndex):
        start, step = index.start, index.step
    else:
        values = index.to_numpy()
        if n == 0:
            return (0, 0, 1)
        start = int(values[0])
        step = int(values[1]) - start if n > 1 else 1
        if step == 0 or abs(step) * n >= 2**63 or int(values[-1]) != start + (n - 1) * step:
            return None
        offsets = np.arange(min(n, _CHUNK_ROWS), dtype=np.int64) * step
        for begin in range(0, n, _CHUNK_ROWS):
            chunk = values[begin : begin + _CHUNK_ROWS]
            if not np.array_equal(chunk - (start + begin * step), offsets[: len(chunk)]):
                return None
    if n == 0:
        return (0, 0, 1)
    if n == 1:
        return (start, start + 1, 1)
    return (start, start + n * step, step)


def _update_values(hasher: xxhash.xxh3_128, values: Any, where: str) -> None:
    """Hash one Series or Index: dtype tag, then data. ``where`` names it in error messages."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        _update_array(hasher, values.to_numpy(), where)
        return
    array = values.array
    if isinstance(dtype, pd.DatetimeTZDtype):
        tz = _tz_name(dtype.tz)
        utc = np.asarray(array.tz_convert(None))
        _update_datetimes(hasher, utc, f"datetime64[ns, {tz}]", f"datetime64[{dtype.unit}, {tz}]")
    elif isinstance(dtype, pd.CategoricalDtype):
        _update_tag(hasher, f"category[ordered={bool(dtype.ordered)}]")
        _update_values(hasher, dtype.categories, f"categories of {where}")
        # Cast codes so the digest does not hang on pandas' choice of int8/int16/int32 codes.
        _update_numeric(hasher, array.codes, np.dtype("<i4"))
    elif (
        isinstance(dtype, pd.StringDtype | pd.ArrowDtype)
        and (chunks := _arrow_strings(array)) is not None
    ):
        _update_tag(hasher, "string")
        hasher.update(_arrow_string_digest(chunks))
    elif isinstance(dtype, pd.StringDtype):
        _update_object(hasher, np.asarray(array, dtype=object), where)
    elif isinstance(
        array, pd.arrays.IntegerArray | pd.arrays.FloatingArray | pd.arrays.BooleanArray
    ) or (isinstance(dtype, pd.ArrowDtype) and _arrow_numpy_kind(dtype) in "biuf"):
        _update_tag(hasher, str(dtype))  # "Int64", "boolean", "int64[pyarrow]", ...
        mask = np.asarray(array.isna(), dtype=bool)
        hasher.update(mask.data)
        _update_numeric(hasher, array.to_numpy(dtype=dtype.numpy_dtype, na_value=0))
    elif isinstance(dtype, pd.PeriodDtype):
        _update_tag(hasher, str(dtype))
        _update_numeric(hasher, array.asi8)
    elif isinstance(dtype, pd.IntervalDtype):
        _update_tag(hasher, f"interval[{dtype.closed}]")
        _update_values(hasher, array.left, f"left bounds of {where}")
        _update_values(hasher, array.right, f"right bounds of {where}")
    elif isinstance(dtype, pd.SparseDtype):
        _update_tag(hasher, "sparse")
        _update_array(hasher, np.asarray(array), where)
    else:
        _update_tag(hasher, f"extension[{_extension_name(dtype)}]")
        _update_object(hasher, np.asarray(array, dtype=object), where)


def _extension_name(dtype: Any) -> str:
    """``str(dtype)``, but ``ns`` for the unit of an Arrow timestamp or duration.

    Their values are hashed as ``pd.Timestamp``/``pd.Timedelta`` objects, which do not depend on
    the unit, so only the tag has to drop it for ``timestamp[us]`` to hash as ``timestamp[ns]``.
    """
    import pandas as pd

    name = str(dtype)
    unit = getattr(getattr(dtype, "pyarrow_dtype", None), "unit", None)
    if isinstance(dtype, pd.ArrowDtype) and _arrow_numpy_kind(dtype) in "mM" and unit:
        return name.replace(f"[{unit}", "[ns", 1)
    return name


def _arrow_numpy_kind(dtype: Any) -> str:
    kind: str = dtype.numpy_dtype.kind
    return kind


def _tz_name(tz: Any) -> str:
    for attribute in ("key", "zone"):  # zoneinfo, pytz
        name = getattr(tz, attribute, None)
        if isinstance(name, str):
            return name
    return str(tz)


# --- numpy arrays ---------------------------------------------------------------------------


def _ndarray_dtype_problem(dtype: np.dtype[Any]) -> str | None:
    if dtype.kind == "V":
        return "structured dtypes are not supported; fingerprint each field"
    if dtype.kind in "fc" and dtype.itemsize > 8 * (2 if dtype.kind == "c" else 1):
        return "extended precision has platform-specific padding; cast to float64 first"
    return None


def _is_masked_array(array: object) -> bool:
    ma = sys.modules.get("numpy.ma")
    return ma is not None and isinstance(array, ma.MaskedArray)


def _update_array(hasher: xxhash.xxh3_128, array: NDArray, where: str) -> None:
    """Hash a 1-D numpy array: canonical dtype tag, then data."""
    kind = array.dtype.kind
    problem = _ndarray_dtype_problem(array.dtype)
    if problem is not None:
        raise TypeError(f"Cannot fingerprint {where} of dtype {array.dtype}: {problem}")
    if kind in "mM":
        name = "datetime64" if kind == "M" else "timedelta64"
        _update_datetimes(hasher, array, f"{name}[ns]", _numpy_tag(array.dtype))
    elif kind in "biufc":
        _update_tag(hasher, _numpy_tag(array.dtype))
        _update_numeric(hasher, array)
    elif kind == "O":
        _update_object(hasher, array, where)
    else:  # "U", "S" and numpy 2's StringDType "T": values as Python objects
        _update_object(hasher, array.astype(object), where)


def _update_numeric(
    hasher: xxhash.xxh3_128, array: NDArray, dtype: np.dtype[Any] | None = None
) -> None:
    """Hash a 1-D numeric array little-endian; zero-copy when it already is contiguous and LE."""
    import numpy as np

    target = (dtype or array.dtype).newbyteorder("<")
    if target.kind == "c":
        floats = np.ascontiguousarray(array, dtype=target)
        _update_float(hasher, floats.view(f"<f{target.itemsize // 2}"))
    elif target.kind == "f":
        _update_float(hasher, array if dtype is None else array.astype(target))
    elif array.dtype == target and array.flags.c_contiguous:
        hasher.update(array.data)
    else:
        rows = max(1, _CHUNK_BYTES // target.itemsize)
        for begin in range(0, len(array), rows):
            hasher.update(np.ascontiguousarray(array[begin : begin + rows], dtype=target).data)


# --- datetimes and timedeltas ----------------------------------------------------------------

_INT64_ROWS = _CHUNK_BYTES // 8
_NAT = -(2**63)  # NaT in every unit
_INT64_MAX = 2**63 - 1
_NS_PER_UNIT = {
    "W": 7 * 86_400 * 10**9,
    "D": 86_400 * 10**9,
    "h": 3_600 * 10**9,
    "m": 60 * 10**9,
    "s": 10**9,
    "ms": 10**6,
    "us": 10**3,
    "μs": 10**3,
    "ns": 1,
}
_UNITS_PER_NS = {"ps": 10**3, "fs": 10**6, "as": 10**9}
# Calendar units (datetime64 only): the months/years since 1970 whose first instant has an int64 ns
# form, 1677-10 .. 2262-04 and 1678 .. 2262 (the ns range is 1677-09-21 .. 2262-04-11).
_CALENDAR_LIMIT = {"M": 3507, "Y": 292}


@functools.lru_cache(maxsize=64)
def _ns_conversion(dtype: np.dtype[Any]) -> tuple[int, int, int] | None:
    """``(limit, mul, div)``: a raw count v with ``|v| <= limit`` (and ``v % div == 0``) is
    exactly ``v // div * mul`` nanoseconds; ``mul == 0`` marks calendar units, which numpy
    converts. None when the unit has no exact nanosecond form (generic, timedelta months/years).
    """
    import numpy as np

    unit, count = np.datetime_data(dtype)
    if unit in _CALENDAR_LIMIT:
        return (_CALENDAR_LIMIT[unit] // count, 0, 1) if dtype.kind == "M" else None
    if unit in _NS_PER_UNIT:
        mul, div = count * _NS_PER_UNIT[unit], 1
    elif unit in _UNITS_PER_NS:
        common = math.gcd(count, _UNITS_PER_NS[unit])
        mul, div = count // common, _UNITS_PER_NS[unit] // common
    else:
        return None
    return (min(_INT64_MAX * div // mul, _INT64_MAX), mul, div)


def _nat_chunks(ints: NDArray, conversion: tuple[int, int, int]) -> list[bool] | None:
    """Per chunk, whether it holds NaT; None when a value has no exact int64 ns form."""
    import numpy as np

    limit, _, div = conversion
    flags = []
    for begin in range(0, len(ints), _INT64_ROWS):
        chunk = ints[begin : begin + _INT64_ROWS]
        low, high = chunk.min(), chunk.max()
        has_nat = bool(low == _NAT)
        # NaT is below every limit, so with NaT count the values below the limit that are not NaT
        # (two compares run at memory speed; dropping the NaTs would copy the chunk).
        if has_nat:
            too_low = np.count_nonzero(chunk < -limit) > np.count_nonzero(chunk == _NAT)
        else:
            too_low = low < -limit
        if too_low or high > limit:
            return None
        if div != 1 and np.any(chunk[chunk != _NAT] % div):
            return None
        flags.append(has_nat)
    return flags


def _ns_chunks(
    array: NDArray, ints: NDArray, conversion: tuple[int, int, int], nat_chunks: list[bool]
) -> Iterator[NDArray]:
    """The values as native int64 nanoseconds, one reused 1 MiB chunk at a time."""
    import numpy as np

    _, mul, div = conversion
    buffer = np.empty(min(_INT64_ROWS, len(ints)), dtype=np.int64)
    for begin, has_nat in zip(range(0, len(ints), _INT64_ROWS), nat_chunks, strict=True):
        chunk = ints[begin : begin + _INT64_ROWS]
        out = buffer[: len(chunk)]
        if mul == 0:  # calendar units: numpy maps NaT to NaT; the range was checked
            out[:] = array[begin : begin + _INT64_ROWS].astype("M8[ns]").view(np.int64)
            yield out
            continue
        if div == 1:
            np.multiply(chunk, mul, out=out)
        else:
            np.floor_divide(chunk, div, out=out)
            if mul != 1:
                np.multiply(out, mul, out=out)
        if has_nat:
            out[chunk == _NAT] = _NAT
        yield out


def _update_datetimes(hasher: xxhash.xxh3_128, array: NDArray, ns_tag: str, raw_tag: str) -> None:
    """Hash a 1-D datetime64/timedelta64 array as int64 ns under ``ns_tag`` when every value
    has an exact ns form, else as its raw int64 counts under ``raw_tag``, which names the unit."""
    import numpy as np

    ints = array.view(np.dtype(np.int64).newbyteorder(array.dtype.byteorder))
    conversion = _ns_conversion(array.dtype)
    if conversion is not None and conversion[1:] == (1, 1):  # [ns] already: no check, no copy
        _update_tag(hasher, ns_tag)
        _update_numeric(hasher, ints)
        return
    nat_chunks = None if conversion is None else _nat_chunks(ints, conversion)
    if conversion is None or nat_chunks is None:
        _update_tag(hasher, raw_tag)
        _update_numeric(hasher, ints)
        return
    _update_tag(hasher, ns_tag)
    for chunk in _ns_chunks(array, ints, conversion, nat_chunks):
        _update_numeric(hasher, chunk)


def _update_float(hasher: xxhash.xxh3_128, array: NDArray) -> None:
    """Hash floats with every NaN replaced by the canonical quiet NaN, one cached chunk at a time.

    ``chunk.max()`` is NaN exactly when the chunk holds a NaN and runs from cache right before
    the hash reads the same bytes, so a NaN-free column costs one pass over memory and no copy.
    A chunk with a few NaNs is hashed around them; only a chunk with many is copied and fixed.
    """
    import numpy as np

    target = array.dtype.newbyteorder("<")
    canonical_nan = np.array(np.nan, dtype=target)
    direct = array.dtype == target and array.flags.c_contiguous
    rows = _CHUNK_BYTES // target.itemsize
    buffer = np.empty(0, dtype=target)
    mask = np.empty(0, dtype=bool)
    had_nans = False
    for begin in range(0, len(array), rows):
        chunk = array[begin : begin + rows]
        if not direct:
            buffer = buffer if len(buffer) else np.empty(rows, dtype=target)
            np.copyto(buffer[: len(chunk)], chunk)
            chunk = buffer[: len(chunk)]
        # After a chunk with NaNs, the next likely has some too: skip the max() and look directly.
        if had_nans or np.isnan(chunk.max()):
            mask = mask if len(mask) else np.empty(rows, dtype=bool)
            positions = np.flatnonzero(np.isnan(chunk, out=mask[: len(chunk)]))
            had_nans = len(positions) > 0
            if direct and len(positions) <= _FEW_NANS:
                start = 0
                for position in positions.tolist():
                    hasher.update(chunk[start:position].data)
                    hasher.update(canonical_nan.data)
                    start = position + 1
                hasher.update(chunk[start:].data)
                continue
            if direct:
                buffer = buffer if len(buffer) else np.empty(rows, dtype=target)
                np.copyto(buffer[: len(chunk)], chunk)
                chunk = buffer[: len(chunk)]
            chunk[positions] = canonical_nan
        hasher.update(chunk.data)


# --- object and string values ---------------------------------------------------------------


def _update_object(hasher: xxhash.xxh3_128, values: NDArray, where: str) -> None:
    """Hash an object array as ``string`` if all non-missing values are str, else value by value."""
    digest = _string_digest(values)
    if digest is None:
        _update_tag(hasher, "object")
        hasher.update(_hash_mixed(values, where))
    else:
        _update_tag(hasher, "string")
        hasher.update(digest)


def _string_digest(values: NDArray) -> bytes | None:
    """Digest of the string encoding, or None when a non-missing value is not a str.

    Each chunk is joined in C (``"\\0".join``) and hashed as UTF-8; a per-value Python loop runs
    only for chunks with NUL or \\x01 inside values.
    """
    import pandas as pd

    strings = xxhash.xxh3_128()
    for begin in range(0, len(values), _CHUNK_ROWS):
        chunk = values[begin : begin + _CHUNK_ROWS]
        items = chunk.tolist()
        mask = None
        try:
            text = _NUL.join(items)
        except TypeError:
            mask = pd.isna(chunk)
            marked = chunk.copy()
            marked[mask] = _NULL_MARK
            items = marked.tolist()
            try:
                text = _NUL.join(items)
            except TypeError:
                return None
        n_null = 0 if mask is None else int(mask.sum())
        if text.count(_NUL) != len(items) - 1 or text.count(_ESC) != n_null:
            nulls = [False] * len(items) if mask is None else mask.tolist()
            text = _escape_all(items, nulls)
        strings.update(text.encode("utf-8", "surrogatepass"))
        strings.update(b"\x00")
    return strings.digest()


def _arrow_strings(array: Any) -> Any:
    """The pyarrow ChunkedArray behind a pyarrow-backed string array, else None.

    pyarrow is never imported here: an Arrow-backed array implies pyarrow is loaded already.
    """
    pa = sys.modules.get("pyarrow")
    if pa is None or getattr(array.dtype, "storage", "pyarrow") != "pyarrow":
        return None
    chunks = array.__arrow_array__()
    if isinstance(chunks, pa.Array):
        chunks = pa.chunked_array([chunks])
    kind = chunks.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return chunks
    if pa.types.is_string_view(kind):
        return chunks.cast(pa.large_string())
    return None


def _arrow_string_digest(chunks: Any) -> bytes:
    """The same stream as :func:`_string_digest`, built by Arrow's ``binary_join`` in C++.

    Arrow strings are valid UTF-8, so their bytes equal Python's encoding of the same values.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    strings = xxhash.xxh3_128()
    for chunk in chunks.chunks:
        large = pa.types.is_large_string(chunk.type)
        lists = pa.LargeListArray if large else pa.ListArray
        for begin in range(0, len(chunk), _CHUNK_ROWS):
            part = chunk.slice(begin, _CHUNK_ROWS)
            n_null = part.null_count
            if n_null:
                part = pc.fill_null(part, pa.scalar(_NULL_MARK, part.type))
            bounds = pa.array([0, len(part)], pa.int64() if large else pa.int32())
            joined = pc.binary_join(lists.from_arrays(bounds, part), pa.scalar(_NUL, part.type))
            text = joined[0].as_buffer()
            raw = np.frombuffer(text, dtype=np.uint8)
            n_nul, n_esc = np.count_nonzero(raw == 0), np.count_nonzero(raw == 1)
            if n_nul != len(part) - 1 or n_esc != n_null:
                nulls = chunk.slice(begin, _CHUNK_ROWS).is_null().to_pylist()
                text = _escape_all(chunk.slice(begin, _CHUNK_ROWS).to_pylist(), nulls)
                text = text.encode("utf-8", "surrogatepass")
            strings.update(text)
            strings.update(b"\x00")
    return strings.digest()


def _escape_all(items: list[Any], nulls: list[bool]) -> str:
    return _NUL.join(
        _NULL_MARK if null else _escape(item) for item, null in zip(items, nulls, strict=True)
    )


def _escape(text: str) -> str:
    return text.replace(_ESC, _ESC + _ESC).replace(_NUL, _ESC + _NUL)


def _hash_mixed(values: NDArray, where: str) -> bytes:
    hasher = xxhash.xxh3_128()
    out = bytearray()
    for row, value in enumerate(values.tolist()):
        try:
            _encode_value(value, out)
        except _UnsupportedValue as error:
            raise TypeError(
                f"Cannot fingerprint {where}: value of type {type(error.value).__name__} at "
                f"position {row} is not supported; object columns may hold None/NaN, bool, int, "
                "float, complex, str, bytes, date/datetime/time/timedelta, Decimal, and lists, "
                "tuples or arrays of those. Convert the column first, e.g. .astype(str)"
            ) from None
        if len(out) >= _CHUNK_BYTES:
            hasher.update(out)
            out.clear()
    hasher.update(out)
    return hasher.digest()


class _UnsupportedValue(Exception):
    def __init__(self, value: object) -> None:
        super().__init__(type(value).__name__)
        self.value = value


def _encode_label(label: object, where: str) -> bytes:
    out = bytearray()
    try:
        _encode_value(label, out)
    except _UnsupportedValue as error:
        raise TypeError(
            f"Cannot fingerprint {where} {label!r}: labels of type {type(error.value).__name__} "
            "are not supported; use str, int, float, bool, datetime or tuples of those"
        ) from None
    return bytes(out)


def _update_tag(hasher: xxhash.xxh3_128, tag: str) -> None:
    hasher.update(_tag_bytes(tag))


@functools.lru_cache(maxsize=256)
def _tag_bytes(tag: str) -> bytes:
    return _encode_label(tag, "dtype tag")


@functools.lru_cache(maxsize=256)
def _numpy_tag(dtype: np.dtype[Any]) -> str:
    return dtype.newbyteorder("<").name


def _is_null(value: object) -> bool:
    """The scalars ``pandas.isna`` treats as missing, without needing pandas."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    if isinstance(value, decimal.Decimal):
        return value.is_nan()
    pd = sys.modules.get("pandas")
    if pd is not None and (value is pd.NA or value is pd.NaT):
        return True
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.floating | np.complexfloating):
            return bool(np.isnan(value))
        if isinstance(value, np.datetime64 | np.timedelta64):
            return bool(np.isnat(value))
    return False


def _put_bytes(out: bytearray, tag: bytes, data: bytes) -> None:
    out += tag
    out += _U64.pack(len(data))
    out += data


def _encode_value(value: object, out: bytearray) -> None:
    """Append a type-tagged, self-delimiting encoding of one scalar (or list/tuple) to ``out``."""
    if _is_null(value):
        out += b"N"
    elif isinstance(value, bool):
        out += b"T" if value else b"F"
    elif isinstance(value, int):
        _put_bytes(out, b"i", value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True))
    elif isinstance(value, float):
        out += b"f" + _F64.pack(value)
    elif isinstance(value, complex):
        out += b"c" + _C128.pack(value.real, value.imag)
    elif isinstance(value, str):
        _put_bytes(out, b"s", value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, bytes | bytearray | memoryview):
        _put_bytes(out, b"b", bytes(value))
    elif isinstance(value, datetime.datetime):  # also pd.Timestamp
        out += b"W" + _DATE.pack(value.year, value.month, value.day)
        out += _clock(value)
    elif isinstance(value, datetime.date):
        out += b"D" + _DATE.pack(value.year, value.month, value.day)
    elif isinstance(value, datetime.time):
        out += b"t" + _clock(value)
    elif isinstance(value, datetime.timedelta):  # also pd.Timedelta
        nanoseconds = int(getattr(value, "nanoseconds", 0))
        total = (value.days * 86_400 + value.seconds) * 10**6 + value.microseconds
        _put_bytes(out, b"d", (total * 1000 + nanoseconds).to_bytes(16, "little", signed=True))
    elif isinstance(value, decimal.Decimal):
        _put_bytes(out, b"m", str(value).encode())
    elif isinstance(value, list | tuple):
        out += (b"L" if isinstance(value, list) else b"U") + _U64.pack(len(value))
        for item in value:
            _encode_value(item, out)
    else:
        _encode_numpy_value(value, out)


def _clock(value: datetime.datetime | datetime.time) -> bytes:
    nanosecond = int(getattr(value, "nanosecond", 0))
    fields = (value.hour, value.minute, value.second, value.microsecond, nanosecond, value.fold)
    tz = "" if value.tzinfo is None else _tz_name(value.tzinfo)
    return _CLOCK.pack(*fields) + _encode_label(tz, "time zone")


def _encode_numpy_value(value: object, out: bytearray) -> None:
    np = sys.modules.get("numpy")
    if np is None:
        raise _UnsupportedValue(value)
    if isinstance(value, np.datetime64 | np.timedelta64):  # never NaT: _is_null caught it
        unit, count = np.datetime_data(value.dtype)
        raw = int(value.view(np.int64))
        single = np.array([value])
        conversion = _ns_conversion(single.dtype)
        nat_chunks = None if conversion is None else _nat_chunks(single.view(np.int64), conversion)
        if conversion is not None and nat_chunks is not None:  # as in arrays: ns when exact
            unit, count = "ns", 1
            raw = int(next(_ns_chunks(single, single.view(np.int64), conversion, nat_chunks))[0])
        _put_bytes(
            out, b"M" if isinstance(value, np.datetime64) else b"E", f"{count}{unit}".encode()
        )
        out += struct.pack("<q", raw)
    elif isinstance(value, np.bool_ | np.number):
        item = value.item()
        if isinstance(item, np.generic):  # longdouble has no Python equivalent
            raise _UnsupportedValue(value)
        _encode_value(item, out)
    elif isinstance(value, np.ndarray) and not _is_masked_array(value):
        sub = _start("ndarray", value.shape)
        _update_array(sub, np.ravel(value, order="C"), "nested array")
        out += b"A" + sub.digest()
    else:
        raise _UnsupportedValue(value)
