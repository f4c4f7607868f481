"""The prediction log writer: requests are queued in memory and written in batches by a thread.

The request path only appends a small dict to a bounded queue (``put_nowait``); encoding the
rows as JSON, hashing the body and the SQLite transaction happen on the writer thread, with a
store connection of its own and a short busy timeout. So a slow, full or locked store never
fails or slows a request: when the queue is full a record is dropped, and when a batch cannot be
written it is dropped after one retry; both are counted (:attr:`PredictionLog.stats`, ``GET
/health``, the endpoint's ``stopped`` event), never hidden.

The writer also folds the input rows of every answered request into window profiles of the
served traffic (:mod:`nbmlops.monitoring.traffic`, one ``traffic_profiles`` row per version
and minute), which drift checks of served traffic read instead of the logged bodies. That
happens before sampling: with ``sample`` < 1 a request left out of the log is still queued,
marked as not logged, so that its rows are profiled.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xxhash

from nbmlops.errors import StoreError
from nbmlops.registry.model_version import check_name, resolve
from nbmlops.serving.formats import RequestError, decode_invocation, decode_v2
from nbmlops.serving.signature import InputSchema
from nbmlops.store import Store
from nbmlops.store import predictions as sql
from nbmlops.store import traffic as traffic_sql

if TYPE_CHECKING:
    import pandas as pd

    from nbmlops.monitoring.traffic import TrafficProfiler

logger = logging.getLogger("nbmlops.serving")

# A locked store should cost the writer a second, not the busy timeout of a notebook's writes.
WRITER_BUSY_TIMEOUT_S = 1.0


@dataclass
class LogStats:
    """What the log did: rows written, dropped (queue full or store unwritable), in the queue,
    and input rows profiled into written traffic profiles."""

    logged: int = 0
    dropped: int = 0
    queued: int = 0
    last_error: str | None = None
    profiled: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "logged": self.logged,
            "dropped": self.dropped,
            "queued": self.queued,
            "last_error": self.last_error,
            "profiled": self.profiled,
        }


class PredictionLog:
    """Batched, best-effort writer of ``predictions`` rows for one server process.

    ``sample``: the fraction of requests logged (1.0: every one). A request body of up to
    ``max_body`` bytes is kept as sent (``format`` says how to read it); a larger one keeps a
    sample of ``max_rows`` rows (format ``sample``); the digest always covers the whole body.
    ``profile_window``: seconds per traffic profile (every answered request's rows).
    """

    def __init__(
        self,
        home: Path,
        *,
        capacity: int = 10_000,
        batch: int = 500,
        interval: float = 0.2,
        sample: float = 1.0,
        max_rows: int = 100,
        max_body: int = 64 * 1024,
        profile_window: float = 60.0,
    ) -> None:
        if not 0.0 <= sample <= 1.0:
            raise ValueError(f"log_sample={sample!r} must be a fraction between 0 and 1.")
        if not profile_window > 0:
            raise ValueError(f"profile_window={profile_window!r} must be positive seconds.")
        self.profile_window = float(profile_window)
        # Traffic profiles a locked store refused, tried again on the writer's next round.
        self._unwritten: list[traffic_sql.TrafficRow] = []
        self.home = home
        self.sample = sample
        self.max_rows = max_rows
        self.max_body = max_body
        self.batch = batch
        self.interval = interval
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=capacity)
        self._stats = LogStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stats(self) -> LogStats:
        """A copy of the counters (``queued`` as of now)."""
        with self._lock:
            return dataclasses.replace(self._stats, queued=self._queue.qsize())

    def submit(self, record: dict[str, Any]) -> None:
        """Queue one request's record (never blocks, never raises). A record the sample
        leaves out is still queued when it has rows to profile, marked ``logged=False``."""
        if self.sample < 1.0 and random.random() >= self.sample:
            if record.get("status") != 200 or record.get("frame") is None:
                return
            record["logged"] = False
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            with self._lock:
                self._stats.dropped += 1

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="nbmlops-prediction-log", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> LogStats:
        """Write what is queued (up to ``timeout`` seconds) and stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.stats

    def _run(self) -> None:
        # Imported here, on the writer thread: it loads pandas and the drift package, which
        # nbm.serve's module (and nbm.predictions, nbm.endpoints with it) must not.
        from nbmlops.monitoring.traffic import TrafficProfiler

        profiler = TrafficProfiler(self.profile_window)
        store = Store(self.home, busy_timeout=WRITER_BUSY_TIMEOUT_S)
        try:
            while True:
                stopping = self._stop.wait(self.interval)
                while self._queue.qsize():
                    self._write(store, self._take(), profiler)
                    # After every batch: under sustained load the queue never drains, and the
                    # windows must close all the same (a no-op while none is due).
                    self._write_profiles(store, profiler, everything=False)
                self._write_profiles(store, profiler, everything=stopping)
                if stopping:
                    return
        finally:
            store.close()

    def _take(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        while len(records) < self.batch:
            try:
                records.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return records

    def _write(
        self, store: Store, records: list[dict[str, Any]], profiler: TrafficProfiler
    ) -> None:
        for r in records:
            if r.get("status") == 200 and r.get("frame") is not None:
                self._profile(store, profiler, r)
        rows = [self._row(r) for r in records if r.pop("logged", True)]
        if not rows:
            return
        for attempt in (1, 2):
            try:
                sql.insert_predictions(store, rows)
            except StoreError as exc:
                if attempt == 1:
                    continue
                with self._lock:
                    self._stats.dropped += len(rows)
                    self._stats.last_error = str(exc)
                logger.warning("nbmlops: %d logged predictions dropped: %s", len(rows), exc)
            else:
                with self._lock:
                    self._stats.logged += len(rows)
                return

    def _profile(self, store: Store, profiler: TrafficProfiler, record: dict[str, Any]) -> None:
        try:
            profiler.add(
                store,
                record["name"],
                record["version"],
                record["endpoint_id"],
                record["at"],
                record["frame"],
            )
        except Exception as exc:  # one odd request must not stop the log
            self._profile_failed(exc)

    def _write_profiles(self, store: Store, profiler: TrafficProfiler, *, everything: bool) -> None:
        """Write the traffic profiles of the windows that closed (all of them at stop)."""
        try:
            self._unwritten += profiler.close(store, time.time(), everything=everything)
        except Exception as exc:  # a bug in profiling must not stop the log
            self._profile_failed(exc)
        if not self._unwritten:
            return
        try:
            traffic_sql.insert_profiles(store, self._unwritten)
        except StoreError as exc:
            self._profile_failed(exc)
            return
        with self._lock:
            self._stats.profiled += sum(r.n_rows for r in self._unwritten)
        self._unwritten = []

    def _profile_failed(self, exc: Exception) -> None:
        with self._lock:
            self._stats.last_error = f"traffic profile: {exc}"
        logger.warning("nbmlops: served inputs not profiled: %s", exc)

    def _row(self, record: dict[str, Any]) -> dict[str, Any]:
        frame = record.pop("frame", None)
        body = record.pop("body", b"")
        outputs = record.get("outputs")
        extra = record.get("extra_columns")
        if len(body) <= self.max_body and record.get("format"):
            # The body as sent: no encoding on the writer's share of the GIL (re-encoding 100
            # rows cost 2.5 ms a request); predictions() decodes it by its format.
            inputs = body.decode("utf-8", "replace")
        elif frame is not None:
            shown = frame.sample(min(len(frame), self.max_rows), random_state=0).sort_index()
            inputs = json.dumps(
                {
                    "dataframe_split": {
                        "columns": [str(c) for c in shown.columns],
                        "data": shown.to_numpy().tolist(),
                    },
                    "sampled_from": len(frame),
                },
                default=str,
            )
            record["format"] = "sample"
        else:
            inputs = None
        return {
            **record,
            "inputs": inputs,
            "inputs_digest": xxhash.xxh3_128_hexdigest(body) if body else None,
            "outputs": None if outputs is None else json.dumps(outputs, default=str),
            "extra_columns": json.dumps(extra) if extra else None,
        }


def predictions_frame(
    store: Store,
    name: str,
    *,
    since: float | None = None,
    version: int | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """The logged requests of ``name`` (oldest first; the newest ``limit``), decoded:
    ``inputs`` as ``{"columns": [...], "data": [[...]]}`` whatever format the request used,
    ``outputs`` and ``extra_columns`` as lists."""
    import pandas as pd  # heavy: kept out of import nbmlops

    check_name(name)
    rows = sql.predictions_of(store, name, since=since, version=version, limit=limit)
    frame = pd.DataFrame(rows, columns=["prediction_id", *sql.COLUMNS])
    frame["at"] = pd.to_datetime(frame["at"], unit="s", utc=True)
    frame["version"] = frame["version"].astype("Int64")
    # Rows sent without names (instances as lists, V2 tensors) read back with the signature's.
    signatures: dict[int | None, tuple[str, ...] | None] = {
        v: InputSchema.of(name, resolve(store, f"{name}/{v}").signature).columns
        for v in {int(v) for v in frame["version"].dropna()}
    }
    decoded = [
        _inputs(t, f, signatures.get(None if pd.isna(v) else int(v)))
        for t, f, v in zip(frame["inputs"], frame["format"], frame["version"], strict=True)
    ]
    frame["inputs"] = pd.Series(decoded, index=frame.index, dtype=object)
    for column in ("outputs", "extra_columns"):
        frame[column] = [json.loads(v) if isinstance(v, str) else None for v in frame[column]]
    frame["error"] = frame["error"].astype(object).where(frame["error"].notna(), None)
    return frame


def _inputs(text: object, fmt: object, columns: tuple[str, ...] | None) -> dict[str, Any] | None:
    if not isinstance(text, str) or not isinstance(fmt, str):
        return None
    data = text.encode()
    try:
        if fmt == "v2":
            decoded = decode_v2(data, "application/json")
        elif fmt == "csv":
            decoded = decode_invocation(data, "text/csv")
        else:
            payload = json.loads(text)
            if fmt == "sample":
                payload = {"dataframe_split": payload["dataframe_split"]}
            decoded = decode_invocation(json.dumps(payload).encode(), "application/json")
    except (RequestError, ValueError, KeyError):
        return {"raw": text}  # logged with a 4xx: kept as it came
    frame = decoded.frame
    names = [str(c) for c in frame.columns]
    if decoded.positional and columns is not None and len(columns) == len(names):
        names = list(columns)
    return {"columns": names, "data": frame.to_numpy().tolist()}
