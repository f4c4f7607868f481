"""Serving: start a model server from Python, list where models are served, read the log.

::

    server = nbm.serve("diabetes@champion", port=0)   # returns at once; runs in a thread
    httpx.post(f"{server.url}/invocations", json={"dataframe_split": ...})
    nbm.predictions("diabetes", since="2026-05-01")   # every request, its inputs and outputs
    nbm.endpoints("diabetes")                         # where each version is served, traffic
    nbm.endpoints("diabetes", at="2026-05-01T12:00Z") # which servers served it then, and what
    server.stop()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbmlops._display import parse_duration
from nbmlops.registry import events
from nbmlops.registry.events import Moment, to_seconds
from nbmlops.serving import endpoints as endpoint_records
from nbmlops.serving import prediction_log, server
from nbmlops.serving.server import ServerHandle
from nbmlops.serving.service import Settings
from nbmlops.store import StoreLike, open_store
from nbmlops.store import predictions as prediction_sql

if TYPE_CHECKING:
    import pandas as pd


def serve(
    ref: str,
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    token: str | None = None,
    extra_columns: str = "log",
    contract: str = "log",
    log_predictions: bool = True,
    log_sample: float = 1.0,
    poll_interval: float = 5.0,
    max_body_bytes: int = 20 * 2**20,
    profile_window: str | float = 60.0,
    store: StoreLike = None,
) -> ServerHandle:
    """Serve ``ref`` (``"name@alias"`` follows the alias; ``"name/3"`` pins a version) over
    MLflow's scoring protocol, from a thread of this process, so a notebook cell returns at
    once; ``handle.url``, ``handle.stop()``.

    Binds 127.0.0.1 unless ``host`` says otherwise (``port=0``: a free port). ``token``: every
    route but /ping then needs ``Authorization: Bearer <token>``. ``extra_columns``: ``"log"``
    serves and records columns not in the signature, ``"ignore"`` drops them, ``"error"``
    refuses the request. ``contract`` (a version trained from a feature store training set):
    ``"reject"`` answers 400 to a request that breaks the data contract of its training set
    (naming the column, row and value), ``"log"`` serves it and records the violation with the
    prediction, ``"off"`` checks nothing; such a version may also be sent only its entity key
    columns, and the server fetches the features online. ``log_predictions``/``log_sample``:
    log every request (or a fraction) to the store, off the request path. ``poll_interval``:
    seconds between checks of the alias.
    ``profile_window`` (seconds or ``"1m"``): the inputs of every answered request are profiled
    per version and window of that length for drift monitoring (``nbm.monitor_drift``); a
    window's profile is written when it closes and when the server stops. Returns once the
    server answers; raises if a pinned version cannot be loaded."""
    settings = Settings(
        extra_columns=extra_columns,
        contract=contract,
        log_predictions=log_predictions,
        log_sample=log_sample,
        poll_interval=poll_interval,
        max_body_bytes=max_body_bytes,
        profile_window=parse_duration(profile_window, what="profile_window"),
        token=token,
    )
    return server.start(open_store(store), ref, host=host, port=port, settings=settings)


def endpoints(
    name: str | None = None, *, at: Moment | None = None, store: StoreLike = None
) -> pd.DataFrame:
    """Where ``name`` is (and was) served: one row per server process with its URL, host,
    pid, the version it serves now, its state (serving, stopped, gone), settings, and its
    traffic from the prediction log: ``requests``, ``errors_4xx``, ``errors_5xx`` and
    ``latency_p50_ms``/``p95``/``p99`` (nearest rank, over the answered requests; logged
    requests only, so a sample under ``log_sample`` < 1); every model's when ``name`` is None.

    ``at`` (UTC seconds, a datetime, naive read as UTC, or an ISO string; needs ``name``): only
    the endpoints that served ``name`` at that moment, ``version`` and ``sha256`` being the
    version each had loaded then (``state`` stays the endpoint's state now). This is the
    endpoint side of :func:`nbmlops.who_served`."""
    st = open_store(store)
    frame = endpoint_records.endpoints_frame(st, name)
    if at is not None:
        if name is None:
            raise TypeError("endpoints(at=...) needs the model's name: endpoints(name, at=...)")
        then = {r.endpoint_id: r for r in events.served_by(st, name, at)}
        frame = frame[frame["endpoint_id"].isin(then)].reset_index(drop=True)
        frame["version"] = frame["endpoint_id"].map(lambda e: then[e].version).astype("Int64")
        frame["sha256"] = frame["endpoint_id"].map(lambda e: then[e].sha256)
    import numpy as np  # heavy: kept out of import nbmlops

    traffic = prediction_sql.traffic_of(st, name)
    quiet = prediction_sql.Traffic("", 0, 0, 0, None, None, None)
    rows = [traffic.get(e, quiet) for e in frame["endpoint_id"]]
    for column in ("requests", "errors_4xx", "errors_5xx"):
        frame[column] = np.array([getattr(r, column) for r in rows], dtype="int64")
    for p in ("p50", "p95", "p99"):
        latencies = [getattr(r, f"{p}_ms") for r in rows]
        frame[f"latency_{p}_ms"] = np.array(latencies, dtype="float64")  # None -> nan
    return frame


def endpoint_events(name: str, *, store: StoreLike = None) -> pd.DataFrame:
    """What the servers of ``name`` did: loaded, load_failed, swapped (alias followed),
    swap_failed (with the reason; the old version kept serving), stopped."""
    return endpoint_records.events_frame(open_store(store), name)


def predictions(
    name: str,
    *,
    since: Moment | None = None,
    version: int | None = None,
    limit: int | None = None,
    store: StoreLike = None,
) -> pd.DataFrame:
    """The logged requests of ``name``, oldest first: request_id, at, version, sha256, status,
    latency_ms, format, n_rows, inputs ({columns, data}), outputs, extra_columns, error,
    endpoint_id. ``since``: UTC seconds, a datetime or an ISO string; ``limit``: the newest
    ``limit`` requests."""
    return prediction_log.predictions_frame(
        open_store(store),
        name,
        since=None if since is None else to_seconds(since),
        version=version,
        limit=limit,
    )
