"""Throughput of nbmlops.fingerprint against the machine's XXH3-128 ceiling.

    .venv/bin/python benchmarks/bench_fingerprint.py             # 16 x 8M numeric (~1 GB)
    .venv/bin/python benchmarks/bench_fingerprint.py --rows 1000000

Reports GB/s for a numeric frame (8 float64 + 8 int64 columns), the same frame with NaNs in every
1 MiB chunk of the float columns (the worst case for NaN canonicalisation), xxh3_128 over the raw
column buffers alone, GB/s for a datetime frame (6 datetime64 + 2 timedelta64 columns) in ``[ns]``
(hashed from the buffers), in ``[us]`` (pandas 3's default, converted to ns chunk by chunk), in
``[us]`` with 1% NaT, and with one date beyond 2262 per column (no ns form: range check, then the
raw counts), and MB/s of UTF-8 content for string columns. Best of 3, one thread.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import xxhash

from nbmlops.fingerprint import fingerprint


def best_of(repeats: int, func: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def numeric_frame(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    columns: dict[str, np.ndarray] = {}
    for i in range(8):
        columns[f"f{i}"] = rng.random(rows)
        columns[f"i{i}"] = rng.integers(-(10**9), 10**9, rows)
    return pd.DataFrame(columns)


def with_nans(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = frame.copy()
    for name in out.columns:
        if name.startswith("f"):
            values = out[name].to_numpy(copy=True)
            values[rng.random(len(values)) < 0.01] = np.nan
            out[name] = values
    return out


def raw_ceiling(frame: pd.DataFrame) -> str:
    hasher = xxhash.xxh3_128()
    for name in frame.columns:
        values = frame[name].to_numpy()
        hasher.update((values.view(np.int64) if values.dtype.kind in "mM" else values).data)
    return hasher.hexdigest()


def datetime_frame(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """6 datetime64[us] columns (2000..2030) and 2 timedelta64[us] columns, as pandas 3 builds."""
    start, span = np.datetime64("2000-01-01", "us").astype(np.int64), 30 * 365 * 86_400 * 10**6
    columns: dict[str, np.ndarray] = {}
    for i in range(6):
        columns[f"t{i}"] = (start + rng.integers(0, span, rows)).view("M8[us]")
    for i in range(2):
        columns[f"d{i}"] = rng.integers(-span, span, rows).view("m8[us]")
    return pd.DataFrame(columns)


def with_nats(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = frame.copy()
    for name in out.columns:
        values = out[name].to_numpy(copy=True)
        values[rng.random(len(values)) < 0.01] = np.datetime64("NaT") if name[0] == "t" else None
        out[name] = values
    return out


def beyond_ns(frame: pd.DataFrame) -> pd.DataFrame:
    """The last value of each column moved past 2262: the whole column keeps its unit."""
    out = frame.copy()
    for name in out.columns:
        values = out[name].to_numpy(copy=True)
        far = np.datetime64("2500-01-01") if name[0] == "t" else np.timedelta64(300 * 365, "D")
        values[-1] = far
        out[name] = values
    return out


def string_frame(rows: int, rng: np.random.Generator) -> tuple[pd.DataFrame, int]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = np.array(
        ["".join(rng.choice(letters, rng.integers(3, 20))) for _ in range(50_000)], dtype=object
    )
    words = vocabulary[rng.integers(0, len(vocabulary), rows)]
    with_missing = words.copy()
    with_missing[rng.random(rows) < 0.05] = None
    ids = np.array([f"user-{i:09d}" for i in range(rows)], dtype=object)
    frame = pd.DataFrame({"word": words, "maybe": with_missing, "id": ids})
    frame = frame.astype("str")  # pandas 3 default string dtype
    content = sum(len(s) for col in ("word", "id") for s in frame[col].tolist())
    content += sum(len(s) for s in with_missing.tolist() if s is not None)
    return frame, content


def bench_numeric(rows: int, repeats: int, rng: np.random.Generator) -> None:
    frame = numeric_frame(rows, rng)
    nbytes = int(frame.memory_usage(index=False).sum())
    print(f"numeric frame: {frame.shape[1]} columns x {len(frame):,} rows = {nbytes / 1e9:.2f} GB")
    ceiling = best_of(repeats, lambda: raw_ceiling(frame))
    print(f"  xxh3_128 over raw column buffers  {nbytes / ceiling / 1e9:6.1f} GB/s  (ceiling)")
    for label, subject in (("numeric frame", frame), ("1% NaN in floats", with_nans(frame, rng))):
        seconds = best_of(repeats, lambda subject=subject: fingerprint(subject))
        print(
            f"  fingerprint({label + ')':21s} {nbytes / seconds / 1e9:6.1f} GB/s  "
            f"({ceiling / seconds:.0%} of ceiling)"
        )


def bench_datetimes(rows: int, repeats: int, rng: np.random.Generator) -> None:
    micros = datetime_frame(rows, rng)
    nanos = micros.astype(
        {name: str(dtype).replace("[us]", "[ns]") for name, dtype in micros.dtypes.items()}
    )
    nbytes = int(micros.memory_usage(index=False).sum())
    print(
        f"datetime frame: 6 datetime64 + 2 timedelta64 columns x {rows:,} rows "
        f"= {nbytes / 1e9:.2f} GB"
    )
    ceiling = best_of(repeats, lambda: raw_ceiling(micros))
    print(f"  xxh3_128 over raw column buffers  {nbytes / ceiling / 1e9:6.1f} GB/s  (ceiling)")
    cases = (
        ("[ns] columns", nanos),
        ("[us] columns", micros),
        ("[us], 1% NaT", with_nats(micros, rng)),
        ("[us], one > 2262", beyond_ns(micros)),
    )
    assert (
        fingerprint(nanos).digest == fingerprint(micros).digest != fingerprint(cases[3][1]).digest
    )
    for label, subject in cases:
        seconds = best_of(repeats, lambda subject=subject: fingerprint(subject))
        print(
            f"  fingerprint({label + ')':21s} {nbytes / seconds / 1e9:6.1f} GB/s  "
            f"({ceiling / seconds:.0%} of ceiling)"
        )


def bench_strings(rows: int, repeats: int, rng: np.random.Generator) -> None:
    strings, content = string_frame(rows, rng)
    print(
        f"string frame: 3 str columns x {len(strings):,} rows, {content / 1e6:.0f} MB of text, "
        f"5% missing in one column; str storage: {strings['word'].dtype.storage}"
    )
    for label, subject in (("str columns", strings), ("object columns", strings.astype(object))):
        seconds = best_of(repeats, lambda subject=subject: fingerprint(subject))
        print(
            f"  fingerprint({label + ')':21s} {content / seconds / 1e6:6.0f} MB/s  "
            f"({strings.size / seconds / 1e6:.1f} M values/s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8_000_000, help="rows of the numeric frame")
    parser.add_argument("--datetime-rows", type=int, default=4_000_000, help="rows of datetimes")
    parser.add_argument("--string-rows", type=int, default=2_000_000, help="rows of string frame")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"pandas {pd.__version__}, numpy {np.__version__}, xxhash {xxhash.VERSION}")
    bench_numeric(args.rows, args.repeats, rng)
    bench_datetimes(args.datetime_rows, args.repeats, rng)
    bench_strings(args.string_rows, args.repeats, rng)


if __name__ == "__main__":
    main()
