import datetime
import decimal
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from nbmlops.fingerprint import Fingerprint, fingerprint, fingerprint_file, is_fingerprintable


def digest(obj: object) -> str:
    return fingerprint(obj).digest


def base() -> pd.DataFrame:
    return pd.DataFrame(
        {"a": [1, 2, 3], "b": ["x", None, "z"], "c": [0.5, np.nan, 0.0]},
        index=pd.RangeIndex(3, name="row"),
    )


def nan_with_payload() -> pd.DataFrame:
    values = np.array([0.5, np.nan, 0.0])
    values.view(np.uint64)[1] = 0xFFF8_0000_0000_0001  # negative quiet NaN with a payload
    return base().assign(c=values)


def with_masked_garbage() -> pd.Series:
    values = pd.array([1, 2, 3], dtype="Int64")
    values[1] = pd.NA  # leaves the 2 under the mask
    return pd.Series(values)


def aware(tz: str, unit: str = "ns") -> pd.DataFrame:
    instants = pd.date_range("2024-03-31", periods=3, freq="h", tz="UTC", unit=unit)
    return pd.DataFrame({"t": instants.tz_convert(tz)})


def instants(unit: str) -> pd.DataFrame:
    """The same instants, before and after 1970 and with a NaT, in a column and in the index."""
    times = pd.to_datetime(
        ["2024-01-01 12:30:05", None, "1969-12-31 23:59:59", "1700-06-01"], format="ISO8601"
    ).as_unit(unit)
    return pd.DataFrame({"t": times}, index=pd.DatetimeIndex(times, name="at"))


def durations(unit: str) -> pd.Series:
    return pd.Series(pd.to_timedelta([90, None, -1, 86_400 * 365 * 200], unit="s").as_unit(unit))


def beyond_ns(*dates: str, unit: str = "s") -> pd.Series:
    """A datetime64[s] column; dates outside 1677-09-21 .. 2262-04-11 have no int64 ns form."""
    return pd.Series(np.array(dates, dtype=f"M8[{unit}]"))


# (left, right, same digest?) -- the documented canonicalisation table
GOLDEN = {
    "column reorder": (base, lambda: base()[["c", "a", "b"]], False),
    "row order": (base, lambda: base().iloc[::-1], False),
    "int32 vs int64": (base, lambda: base().astype({"a": "int32"}), False),
    "Int64 vs float64": (
        lambda: pd.DataFrame({"a": pd.array([1, 2], dtype="Int64")}),
        lambda: pd.DataFrame({"a": [1.0, 2.0]}),
        False,
    ),
    "timezone change": (lambda: aware("UTC"), lambda: aware("Europe/Paris"), False),
    "datetime [ns] vs [us]": (lambda: instants("ns"), lambda: instants("us"), True),
    "datetime [ns] vs [ms]": (lambda: instants("ns"), lambda: instants("ms"), True),
    "datetime [ns] vs [s]": (lambda: instants("ns"), lambda: instants("s"), True),
    "datetime [us], last instant 1 us later": (
        lambda: instants("us"),
        lambda: instants("us").assign(t=lambda d: d.t + pd.to_timedelta([0, 0, 0, 1], unit="us")),
        False,
    ),
    "tz-aware [ns, UTC] vs [us, UTC]": (lambda: aware("UTC"), lambda: aware("UTC", "us"), True),
    "tz-aware [ns, Paris] vs [s, Paris]": (
        lambda: aware("Europe/Paris"),
        lambda: aware("Europe/Paris", "s"),
        True,
    ),
    "timedelta [ns] vs [us]": (lambda: durations("ns"), lambda: durations("us"), True),
    "timedelta [ns] vs [s]": (lambda: durations("ns"), lambda: durations("s"), True),
    "timedelta [s], last value 1 s longer": (
        lambda: durations("s"),
        lambda: durations("s") + pd.to_timedelta([0, 0, 0, 1], unit="s"),
        False,
    ),
    "datetime [s] beyond 2262 vs a date in range": (
        lambda: beyond_ns("2024-01-01", "3000-01-01"),
        lambda: beyond_ns("2024-01-01", "2024-01-02"),
        False,
    ),
    "datetime [s] beyond 2262, one second later": (
        lambda: beyond_ns("2024-01-01", "3000-01-01"),
        lambda: beyond_ns("2024-01-01", "3000-01-01T00:00:01"),
        False,
    ),
    "datetime beyond 2262, [s] vs [ms] (unit hashed)": (
        lambda: beyond_ns("3000-01-01"),
        lambda: beyond_ns("3000-01-01", unit="ms"),
        False,
    ),
    "timedelta [s] of 300 years vs 200 years": (
        lambda: pd.Series(np.array([300 * 365 * 86_400], dtype="m8[s]")),
        lambda: pd.Series(np.array([200 * 365 * 86_400], dtype="m8[s]")),
        False,
    ),
    "reset_index": (base, lambda: base().reset_index(), False),
    "reset_index(drop=True) drops the index name": (
        base,
        lambda: base().reset_index(drop=True),
        False,
    ),
    "reset_index(drop=True) of a shuffled index": (
        lambda: base().rename_axis(None).iloc[[2, 0, 1]],
        lambda: base().rename_axis(None).iloc[[2, 0, 1]].reset_index(drop=True),
        False,
    ),
    "sort then sort_index back to 0..n-1": (
        lambda: base().rename_axis(None),
        lambda: base().rename_axis(None).iloc[[2, 0, 1]].sort_index(),
        True,
    ),
    "index name": (base, lambda: base().rename_axis("id"), False),
    "RangeIndex vs Index 0..n-1": (
        base,
        lambda: base().set_axis(pd.Index([0, 1, 2], name="row")),
        True,
    ),
    "NaN payload": (base, nan_with_payload, True),
    "-0.0 vs 0.0": (base, lambda: base().assign(c=[0.5, np.nan, -0.0]), False),
    "object vs str": (base, lambda: base().astype({"b": object}), True),
    "str vs string": (base, lambda: base().astype({"b": "string"}), True),
    "None vs NaN missing": (base, lambda: base().astype({"b": object}).fillna({"b": np.nan}), True),
    "categorical vs str": (base, lambda: base().astype({"b": "category"}), False),
    "category order": (
        lambda: pd.Series(pd.Categorical(["a", "b"], categories=["a", "b"])),
        lambda: pd.Series(pd.Categorical(["a", "b"], categories=["b", "a"])),
        False,
    ),
    "column rename": (base, lambda: base().rename(columns={"a": "A"}), False),
    "label 0 vs '0'": (
        lambda: pd.DataFrame({0: [1]}),
        lambda: pd.DataFrame({"0": [1]}),
        False,
    ),
    "label split": (
        lambda: pd.DataFrame([[1, 2]], columns=["ab", "c"]),
        lambda: pd.DataFrame([[1, 2]], columns=["a", "bc"]),
        False,
    ),
    "values under Int64 mask": (
        with_masked_garbage,
        lambda: pd.Series(pd.array([1, None, 3], dtype="Int64")),
        True,
    ),
    "big-endian floats": (
        base,
        lambda: base().assign(c=np.array([0.5, np.nan, 0.0], dtype=">f8")),
        True,
    ),
    "attrs": (base, lambda: base().pipe(lambda d: setattr(d, "attrs", {"k": 1}) or d), True),
}


@pytest.mark.parametrize(("left", "right", "same"), GOLDEN.values(), ids=GOLDEN.keys())
def test_golden_vectors(left, right, same):
    assert (digest(left()) == digest(right())) is same


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (base, "a48d60c371e9c1130c95422aa6df7740"),
        (
            lambda: aware("Europe/Paris").assign(k=pd.Categorical(["a", "b", "a"])),
            "3de22bc930ea72480a403ae6b57398ac",
        ),
        (  # the same instants in pandas 3's [us], or in [s]: the digest of pandas 2's [ns]
            lambda: aware("Europe/Paris", "us").assign(k=pd.Categorical(["a", "b", "a"])),
            "3de22bc930ea72480a403ae6b57398ac",
        ),
        (
            lambda: aware("Europe/Paris", "s").assign(k=pd.Categorical(["a", "b", "a"])),
            "3de22bc930ea72480a403ae6b57398ac",
        ),
        (
            lambda: pd.DataFrame(
                {"v": [1.5, -0.0, np.inf], "o": [b"x", (1, "y"), decimal.Decimal("1.10")]},
                index=pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["k", "n"]),
            ),
            "2d620c023ff46bf2a835573456c3c9cc",
        ),
        (lambda: np.arange(12, dtype=np.int32).reshape(3, 4), "eb0f3216bebff099e8ad634d46af9bbf"),
        (lambda: b"", "99aa06d3014798d86001c324468d497f"),  # XXH3-128 of nothing, as xxh128sum
    ],
)
def test_literal_digests_never_change(make, expected):
    assert digest(make()) == expected


def test_digest_same_in_a_fresh_process():
    code = (
        "import pandas as pd, numpy as np; from nbmlops.fingerprint import fingerprint;"
        "print(fingerprint(pd.DataFrame({'s': ['a', None], 'f': [np.nan, 1.0]})).digest)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == digest(pd.DataFrame({"s": ["a", None], "f": [np.nan, 1.0]}))


def test_change_in_last_row_of_a_million():
    frame = pd.DataFrame({"x": np.arange(1_000_000, dtype=np.float64), "s": "abc"})
    changed = frame.copy()
    changed.iloc[-1, 0] = -1.0
    assert digest(frame) != digest(changed)
    assert digest(frame) == digest(frame.copy())


@pytest.mark.parametrize("storage", ["python", "pyarrow"])
@pytest.mark.parametrize(
    "values",
    [["a", None, "é☃", ""], ["a\x00b", "\x01\x02", None], [None, None], []],
    ids=["plain", "control characters", "all missing", "empty"],
)
def test_string_storages_agree_with_object(storage, values):
    as_object = pd.Series(values, dtype=object)
    assert digest(pd.Series(values, dtype=pd.StringDtype(storage))) == digest(as_object)


@pytest.mark.parametrize(
    ("left", "right"),
    [(["a\x00b"], ["a", "b"]), (["\x01\x02"], [None]), (["ab", "c"], ["a", "bc"]), ([""], [None])],
)
def test_string_encoding_is_unambiguous(left, right):
    assert digest(pd.Series(left, dtype=object)) != digest(pd.Series(right, dtype=object))


def test_strings_across_chunk_boundaries_match_one_chunk():
    values = [f"v{i}" if i % 7 else None for i in range(200_000)]
    values[150_000] = "nul\x00inside"
    strings = pd.Series(values, dtype="str")
    assert digest(strings) == digest(strings.astype(object))


@pytest.mark.parametrize(
    "nan_at",
    [[5], list(range(0, 300_000, 100)), [299_999], [0, 131_072, 131_073]],
    ids=["one early", "every 100th", "last", "chunk edges"],
)
def test_nan_canonicalisation_paths_agree(nan_at):
    values = np.random.default_rng(0).random(300_000)
    values[nan_at] = np.nan
    payloads = values.copy()
    payloads.view(np.uint64)[nan_at] = 0xFFF8_0000_0000_0ABC
    strided = pd.Series(np.stack([payloads, payloads], axis=1)[:, 0], copy=False)
    assert not strided.to_numpy().flags.c_contiguous  # so it is hashed through a copy
    assert digest(pd.Series(values)) == digest(pd.Series(payloads)) == digest(strided)


def test_multiindex_levels_are_hashed():
    frame = pd.DataFrame({"k": ["a", "a", "b"], "n": [1, 2, 1], "v": [1.0, 2.0, 3.0]})
    by_kn = frame.set_index(["k", "n"])
    assert digest(by_kn) == digest(frame.set_index(["k", "n"]).copy())
    assert digest(by_kn) != digest(frame.set_index(["n", "k"]))
    assert digest(by_kn) != digest(frame.set_index("k"))


def test_mixed_object_column_is_hashed_by_type():
    mixed = pd.Series([1, "1", 1.0, True, None, datetime.date(2024, 1, 1), [1, (2,)]])
    assert digest(mixed) == digest(mixed.copy())
    assert digest(pd.Series([1, 2], dtype=object)) != digest(pd.Series([1.0, 2.0], dtype=object))


def test_unsupported_object_names_supported_types():
    with pytest.raises(TypeError, match="Cannot fingerprint object of type set; supported: pandas"):
        fingerprint({1, 2})


def test_unsupported_value_names_column_and_position():
    frame = pd.DataFrame({"ok": [1, 2], "bad": ["x", {"k": 1}]})
    with pytest.raises(TypeError, match=r"column 'bad': value of type dict at position 1"):
        fingerprint(frame)


def test_masked_array_is_refused_with_a_fix():
    with pytest.raises(TypeError, match=r"masked array.*arr\.filled\(0\)"):
        fingerprint(np.ma.masked_array([1, 2], mask=[0, 1]))


def test_fingerprint_fields_and_to_dict():
    result = fingerprint(base())
    assert len(result.digest) == 32 and int(result.digest, 16) >= 0
    assert result.to_dict() == {
        "digest": result.digest,
        "kind": "dataframe",
        "n_rows": 3,
        "n_columns": 3,
        "schema": {"a": "int64", "b": str(base().b.dtype), "c": "float64"},
    }
    assert result == fingerprint(base()) and len({result, fingerprint(base())}) == 1


@pytest.mark.parametrize(
    ("obj", "kind", "rows", "columns"),
    [
        (pd.Series([1, 2], name="s"), "series", 2, 1),
        (np.zeros((4, 3)), "ndarray", 4, 3),
        (np.array(1.0), "ndarray", None, None),
        (bytearray(b"ab"), "bytes", None, None),
    ],
)
def test_kind_and_shape(obj, kind, rows, columns):
    result = fingerprint(obj)
    assert (result.kind, result.n_rows, result.n_columns) == (kind, rows, columns)


def test_ndarray_shape_and_nan_canonicalisation():
    flat = np.array([1.0, np.nan, 3.0, 4.0])
    odd_nan = flat.copy()
    odd_nan.view(np.uint64)[1] = 0x7FF0_0000_0000_0001  # signalling NaN
    assert digest(flat) == digest(odd_nan)
    assert digest(flat) != digest(flat.reshape(2, 2))
    assert digest(flat.reshape(2, 2)) == digest(np.asfortranarray(flat.reshape(2, 2)))


def test_file_fingerprint_streams_content(tmp_path: Path):
    content = os.urandom(3 * 1024 * 1024 + 17)  # several 1 MiB chunks
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    first.write_bytes(content)
    second.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))
    result = fingerprint_file(first)
    assert result == Fingerprint(digest(content), "file")
    assert fingerprint(str(first)) == result == fingerprint(first)
    assert fingerprint_file(second).digest != result.digest


def test_missing_file_raises_file_not_found(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        fingerprint(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (pd.DataFrame(), True),
        (pd.Series(dtype=float), True),
        (np.arange(3), True),
        (np.zeros(2, dtype=[("x", "i4")]), False),
        (b"x", True),
        (memoryview(b"x"), True),
        (1.5, False),
        ("/definitely/not/here.csv", False),
    ],
)
def test_is_fingerprintable(obj, expected):
    assert is_fingerprintable(obj) is expected


def test_is_fingerprintable_accepts_an_existing_file(tmp_path: Path):
    (tmp_path / "f").write_bytes(b"x")
    assert is_fingerprintable(tmp_path / "f") and not is_fingerprintable(tmp_path)


def test_import_stays_light():
    code = "import sys, nbmlops.fingerprint; print('pandas' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


DTYPES = {
    "bool": lambda: pd.Series([True, False, False]),
    "uint8": lambda: pd.Series([1, 2, 3], dtype="uint8"),
    "float16": lambda: pd.Series([1, np.nan, 3], dtype="float16"),
    "complex": lambda: pd.Series([1 + 2j, complex(np.nan, 1), 3j]),
    "datetime": lambda: pd.Series(pd.to_datetime(["2024-01-01", None, "2024-01-03"])),
    "timedelta": lambda: pd.Series(pd.to_timedelta([1, 2, 3], unit="s")),
    "period": lambda: pd.Series(pd.period_range("2024-01", periods=3, freq="M")),
    "interval": lambda: pd.Series(pd.interval_range(0, 3)),
    "sparse": lambda: pd.Series(pd.arrays.SparseArray([0.0, 1.0, 2.0])),
    "boolean": lambda: pd.Series([True, None, False], dtype="boolean"),
    "Float64": lambda: pd.Series([0.5, None, 1.5], dtype="Float64"),
    "category of ints": lambda: pd.Series([1, 2, 3], dtype="category"),
    "mixed objects": lambda: pd.Series([b"a", np.int8(1), datetime.timedelta(1)]),
    "nested arrays": lambda: pd.Series([np.zeros(2), np.ones(2), np.arange(2.0)]),
}


@pytest.mark.parametrize("make", DTYPES.values(), ids=DTYPES.keys())
def test_every_dtype_hashes_its_last_row(make):
    series = make()
    first_three = series.iloc[[0, 1, 2]].reset_index(drop=True)
    last_changed = series.iloc[[0, 1, 0]].reset_index(drop=True)
    assert digest(first_three) == digest(first_three.copy())
    assert digest(first_three) != digest(last_changed)


def test_arrow_dtypes():
    ints = pd.Series([1, None, 3], dtype=pd.ArrowDtype(pa.int64()))
    assert digest(ints) != digest(pd.Series([1, None, 3], dtype="Int64"))
    assert digest(ints) != digest(pd.Series([1, None, 4], dtype=pd.ArrowDtype(pa.int64())))
    text = pd.Series(["a", None], dtype=pd.ArrowDtype(pa.large_string()))
    assert digest(text) == digest(pd.Series(["a", None], dtype=object))


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_datetime_and_timedelta_units_hash_as_nanoseconds(unit):
    assert digest(instants(unit)) == digest(instants("ns"))
    assert digest(instants(unit).t) == digest(instants("ns").t)
    assert digest(durations(unit)) == digest(durations("ns"))
    for tz in ("UTC", "Europe/Paris"):
        assert digest(aware(tz, unit)) == digest(aware(tz))
    assert digest(instants(unit).t.dt.tz_localize("UTC")) != digest(instants("ns").t)


def test_numpy_units_hash_as_nanoseconds():
    days = np.array(["2024-01-01", "NaT", "1700-06-01", "1969-12-29"], dtype="M8[D]")
    expected = digest(days.astype("M8[ns]"))
    for unit in ("D", "h", "m", "s", "ms", "us", "10ms", "ns"):
        assert digest(days.astype(f"M8[{unit}]")) == expected, unit
    picos = np.array([1000, -2000, np.iinfo(np.int64).min]).view("M8[ps]")  # [ps] spans 106 days
    assert digest(picos) == digest(np.array([1, -2, np.iinfo(np.int64).min]).view("M8[ns]"))
    weeks = np.array([0, -3, 2000, np.iinfo(np.int64).min]).view("M8[W]")
    assert digest(weeks) == digest(weeks.astype("M8[ns]"))
    months = np.array(["2024-01", "NaT", "1677-10", "2262-04"], dtype="M8[M]")
    assert digest(months) == digest(months.astype("M8[D]")) == digest(months.astype("M8[ns]"))
    years = np.array(["1678", "2262", "NaT"], dtype="M8[Y]")
    assert digest(years) == digest(years.astype("M8[ns]"))
    big_endian = np.array([1, 2, np.iinfo(np.int64).min], dtype=">i8").view(">M8[s]")
    assert digest(big_endian) == digest(big_endian.astype("<M8[ns]"))
    span = np.array([90, -1, np.iinfo(np.int64).min]).view("m8[m]")
    assert digest(span) == digest(span.astype("m8[ns]")) == digest(span.astype("m8[us]"))


def test_values_without_an_exact_ns_form_keep_unit_and_raw_counts():
    limit = (2**63 - 1) // 10**9  # the largest int64 ns count of whole seconds
    edges = np.array([-limit, limit]).view("M8[s]")
    assert digest(edges) == digest(np.array([-limit * 10**9, limit * 10**9]).view("M8[ns]"))
    beyond = np.array([-limit, limit + 1]).view("M8[s]")
    assert digest(beyond) != digest(edges)
    assert digest(beyond) != digest(np.array([-limit, limit + 1]).view("M8[ns]"))  # same ints
    assert digest(beyond) != digest(beyond.view("m8[s]"))
    nat = np.iinfo(np.int64).min
    with_nat = np.array([nat, -limit, nat, limit]).view("M8[s]")
    assert digest(with_nat) == digest(with_nat.astype("M8[ns]"))
    below = np.array([-limit - 1, limit]).view("M8[s]")
    assert digest(below) != digest(below.astype("M8[ns]"))  # numpy wraps
    below_with_nat = np.array([nat, -limit - 1, nat, limit]).view("M8[s]")
    assert digest(below_with_nat) != digest(below_with_nat.astype("M8[ns]"))  # numpy wraps
    # numpy wraps silently past the ns range; calendar units are checked against their own edges
    for unit, edge in (("M", 3507), ("Y", 292)):
        inside = np.array([-edge, edge]).view(f"M8[{unit}]")
        assert digest(inside) == digest(inside.astype("M8[ns]"))
        outside = np.array([-edge, edge + 1]).view(f"M8[{unit}]")
        assert digest(outside) != digest(outside.astype("M8[ns]"))
        assert digest(outside) != digest(np.array([-edge, edge + 2]).view(f"M8[{unit}]"))
    # a sub-nanosecond remainder: 1.5 ns is neither 1 ns nor 2 ns
    picos = np.array([1500]).view("M8[ps]")
    assert (
        len(
            {
                digest(picos),
                digest(np.array([1]).view("M8[ns]")),
                digest(np.array([2]).view("M8[ns]")),
            }
        )
        == 3
    )
    # a month or a year of duration has no fixed length: never converted
    assert digest(np.array([12]).view("m8[M]")) != digest(np.array([1]).view("m8[Y]"))


def test_datetime_conversion_across_chunks_and_nats():
    seconds = pd.Series(pd.date_range("2000-01-01", periods=300_000, freq="s", unit="s"))
    seconds[[0, 131_071, 131_072, 299_999]] = pd.NaT
    nanos = seconds.dt.as_unit("ns")
    strided = pd.Series(np.stack([seconds.to_numpy()] * 2, axis=1)[:, 0], copy=False)
    assert not strided.to_numpy().flags.c_contiguous
    assert digest(seconds) == digest(nanos) == digest(strided)
    later = seconds.copy()
    later[299_998] += pd.Timedelta(1, "s")
    assert digest(later) != digest(seconds)
    assert digest(pd.Series([pd.NaT] * 3, dtype="M8[s]")) == digest(
        pd.Series([pd.NaT] * 3, dtype="M8[ns]")
    )


def test_datetime_scalars_in_object_columns_follow_the_same_rule():
    def column(*values):
        return pd.Series([*values, "x"], dtype=object)

    assert digest(column(np.datetime64("2024-01-01T00:00:01", "s"))) == digest(
        column(np.datetime64("2024-01-01T00:00:01", "ns"))
    )
    assert digest(column(np.timedelta64(3, "ms"))) == digest(column(np.timedelta64(3000, "us")))
    assert digest(column(np.datetime64("3000-01-01", "s"))) != digest(
        column(np.datetime64("3000-01-01", "ms"))
    )
    assert digest(column(np.datetime64("3000-01-01", "s"))) != digest(
        column(np.datetime64("2024-01-01", "s"))
    )


def test_arrow_timestamps_and_durations_ignore_the_unit():
    times = pd.to_datetime(["2024-01-01 00:00:01", None], format="ISO8601")
    by_unit = [pd.Series(times, dtype=pd.ArrowDtype(pa.timestamp(u))) for u in ("s", "us", "ns")]
    assert len({digest(series) for series in by_unit}) == 1
    utc = pd.Series(times.tz_localize("UTC"), dtype=pd.ArrowDtype(pa.timestamp("us", "UTC")))
    assert digest(utc) != digest(by_unit[0])
    one_second = pd.to_timedelta([1, None], unit="s")
    spans = [pd.Series(one_second, dtype=pd.ArrowDtype(pa.duration(u))) for u in ("s", "ms")]
    assert digest(spans[0]) == digest(spans[1])
    assert digest(spans[0]) != digest(pd.Series([1, None], dtype=pd.ArrowDtype(pa.duration("ms"))))
    far = pd.Series([pd.Timestamp("3000-01-01")], dtype=pd.ArrowDtype(pa.timestamp("s")))
    assert digest(far) != digest(pd.Series([pd.Timestamp("2024-01-01")], dtype=far.dtype))


def test_same_digests_without_pyarrow():
    """pyarrow is a dev dependency, but the module must neither need nor import it."""
    make = (
        "pd.DataFrame({'s': ['a', None, 'é'], 'o': pd.Series([1, 'b', None], dtype=object),"
        " 't': pd.to_datetime(['2024-01-01', None, '1969-07-20']),"
        " 'd': pd.to_timedelta([1, 2, None], unit='s'), 'f': [0.5, np.nan, -0.0]})"
    )
    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "import numpy as np, pandas as pd\n"
        "from nbmlops.fingerprint import fingerprint\n"
        f"print(fingerprint({make}).digest)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == digest(eval(make))


def test_duplicate_and_non_string_labels():
    frame = pd.DataFrame([[1, 2, 3]], columns=["x", "x", 7])
    assert fingerprint(frame).schema == {"x": "int64", "7": "int64"}
    assert digest(frame) != digest(frame.set_axis(["x", "x", "7"], axis=1))
