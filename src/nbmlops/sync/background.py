"""Every finished run pushes itself to an MLflow tracking server in the background (issue #19
item 4), for training spread over several machines that share one server.

Turned on by ``NBMLOPS_MLFLOW_URI=mlflow://HOST:PORT`` in the environment or, in the nearest
``nbmlops.toml`` from the store's folder upwards (the file of the promotion rules)::

    [sync]
    mlflow = "mlflow://HOST:PORT"     # the environment variable wins over the file

``%load_ext nbmlops`` and ``nbm.start_run`` attach it (once per store and process); from then on
each run of that store that ends is put on a queue by a hook (:data:`finished_hooks
<nbmlops.capture.run.finished_hooks>`), which only appends its id: the cell never waits for the
server nor fails because of it. A daemon thread, with a store connection of its own, pushes the
queued runs with :func:`~nbmlops.sync.push.push` (``run_ids=``: those runs and every model with
something new); push is idempotent, so a run queued twice or already there costs nothing.

- A failed push (server down, refused, store busy) keeps the runs queued and is retried after
  :data:`BACKOFF_S` seconds, doubled on each failure up to :data:`MAX_BACKOFF_S`; the last error
  is kept for :func:`status` (and ``%nbmlops``).
- At start the thread first pushes everything of the store the server lacks (a catch-up): runs
  that ended while the server was down in an earlier session, or before sync was turned on.
- At interpreter exit the queue gets at most :data:`EXIT_FLUSH_S` seconds, then is given up
  silently: the next session's catch-up sends what is left. (A script's run that is ended by
  nbmlops' own exit hook, not by the script, ends after that flush and waits for the next
  session too.)
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nbmlops._display import when
from nbmlops.capture.run import Run, finished_hooks
from nbmlops.errors import NbmlopsError, RulesFileError, SyncError
from nbmlops.registry.rules_file import find_rules_file, key_line, read_document, table_line
from nbmlops.store import Store

ENV = "NBMLOPS_MLFLOW_URI"
SYNC_KEYS = ("mlflow",)
"""The keys of the ``[sync]`` table."""
BACKOFF_S = 2.0
"""The wait before retrying a failed push; doubled on each failure in a row."""
MAX_BACKOFF_S = 60.0
EXIT_FLUSH_S = 2.5
"""How long interpreter exit waits for the queue to drain."""
BATCH = 500
"""Runs per push: the filter of run ids stays far under the filter language's value limit."""
# A cell writing the store should cost the pusher a retry, never the cell a wait.
BUSY_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class SyncSetting:
    """Where runs are pushed and which setting said so (the variable, or ``path:line``)."""

    uri: str
    server: str  # the base URL, the key of what was pushed (sync_* tables)
    source: str


@dataclass(frozen=True)
class SyncStatus:
    """How the background push stands: ``pending`` runs queued (not confirmed by the server),
    ``catching_up`` while the start-up push of older runs has not succeeded, ``pushed`` runs
    confirmed this session, the time of the last successful push and the last error (None once
    a push succeeds again)."""

    uri: str
    server: str
    source: str
    pending: int
    catching_up: bool
    pushed: int
    last_success: float | None
    last_error: str | None

    def __str__(self) -> str:
        parts = [f"{self.pending} run{'' if self.pending == 1 else 's'} pending"]
        if self.catching_up:
            parts.append("catch-up of earlier runs pending")
        parts.append(
            f"last pushed {when(self.last_success)}" if self.last_success else "nothing pushed yet"
        )
        if self.last_error:
            parts.append(f"last error, retried by itself: {self.last_error}")
        return f"{self.uri} ({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _server(uri: str) -> str:
    # httpx (150 ms) comes with the client: loaded only where a server is configured, since
    # start_run asks for the setting in every process.
    from nbmlops.sync.mlflow_rest import server_url

    return server_url(uri)


def sync_setting(home: Path) -> SyncSetting | None:
    """The server runs of the store at ``home`` push themselves to, or None: :data:`ENV`, else
    ``[sync] mlflow`` in the nearest ``nbmlops.toml`` from ``home`` upwards. A bad address is a
    SyncError naming the variable; a malformed ``[sync]`` table a RulesFileError with its line."""
    given = os.environ.get(ENV, "").strip()
    if given:
        try:
            return SyncSetting(given, _server(given), ENV)
        except SyncError as exc:
            raise SyncError(f"{ENV}: {exc} Runs are recorded here only.", server=given) from None
    path = find_rules_file(home)
    if path is None:
        return None
    _, lines, document = read_document(path)
    table = document.get("sync")
    if table is None:
        return None
    header = table_line(lines, ("sync",))
    if not isinstance(table, dict):
        raise RulesFileError(
            '[sync] must be a table with mlflow = "mlflow://HOST:PORT"',
            path,
            header or key_line(lines, "sync"),
        )
    for key in table:
        if key not in SYNC_KEYS:
            raise RulesFileError(
                f"unknown key {key!r} in [sync]; the keys are {', '.join(SYNC_KEYS)}",
                path,
                key_line(lines, key, header) or header,
            )
    uri = table.get("mlflow")
    if uri is None:
        return None
    line = key_line(lines, "mlflow", header) or header
    if not isinstance(uri, str):
        raise RulesFileError(
            f'[sync] mlflow must be a string "mlflow://HOST:PORT", not {uri!r}', path, line
        )
    try:
        return SyncSetting(uri, _server(uri), f"{path}:{line}")
    except SyncError as exc:
        raise RulesFileError(f"[sync] mlflow: {exc}", path, line) from None


class BackgroundPush:
    """The queue and the thread that push the finished runs of one store to one server."""

    def __init__(self, home: Path, setting: SyncSetting) -> None:
        self.home = home
        self.setting = setting
        self._pending: dict[str, None] = {}  # run ids, in the order they ended
        self._changed = threading.Condition()
        self._catching_up = True
        self._busy = False  # a push is under way
        self._pushed = 0
        self._last_success: float | None = None
        self._last_error: str | None = None
        self._retry_at = 0.0
        self._stopping = False
        self._thread = threading.Thread(
            target=self._work, name=f"nbmlops-sync {setting.server}", daemon=True
        )

    def start(self) -> BackgroundPush:
        finished_hooks.append(self.enqueue)
        atexit.register(self._flush_at_exit)
        self._thread.start()
        return self

    def enqueue(self, run: Run) -> None:
        """The hook called as a run of any store ends: queue it if it is this store's."""
        if run.store.home != self.home:
            return
        with self._changed:
            self._pending[run.run_id] = None
            self._changed.notify()

    def status(self) -> SyncStatus:
        with self._changed:
            return SyncStatus(
                uri=self.setting.uri,
                server=self.setting.server,
                source=self.setting.source,
                pending=len(self._pending),
                catching_up=self._catching_up,
                pushed=self._pushed,
                last_success=self._last_success,
                last_error=self._last_error,
            )

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the queue (and the catch-up) to be pushed, retrying
        at once rather than after the backoff; whether everything was."""
        deadline = time.monotonic() + timeout
        with self._changed:
            self._retry_at = 0.0
            self._changed.notify_all()
            while self._pending or self._catching_up or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._changed.wait(left)
        return True

    def stop(self, timeout: float = EXIT_FLUSH_S) -> None:
        """Stop queueing and end the thread (what is queued is left for the next catch-up)."""
        if self.enqueue in finished_hooks:
            finished_hooks.remove(self.enqueue)
        atexit.unregister(self._flush_at_exit)
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join(timeout)

    def _flush_at_exit(self) -> None:
        # Interpreter exit: give up silently, the next session catches up.
        with contextlib.suppress(Exception):
            self.flush(EXIT_FLUSH_S)

    # -- the thread ---------------------------------------------------------------------------

    def _work(self) -> None:
        store = Store(self.home, busy_timeout=BUSY_TIMEOUT_S)
        backoff = BACKOFF_S
        try:
            while True:
                with self._changed:
                    while not self._stopping and not self._due():
                        self._changed.wait(self._wait_s())
                    if self._stopping:
                        return
                    catch_up = self._catching_up
                    # Taken before the push reads the store: each was queued once its end was
                    # written, so the push sees it ended (a run queued later is pushed next).
                    taken = list(self._pending) if catch_up else list(self._pending)[:BATCH]
                    self._busy = True
                # No store yet: nothing was recorded, so there is nothing to catch up.
                nothing = catch_up and not store.exists()
                error = None if nothing else self._push(store, None if catch_up else taken)
                with self._changed:
                    self._busy = False
                    if nothing:
                        self._catching_up = False
                    elif error is None:
                        for run_id in taken:
                            self._pending.pop(run_id, None)
                        self._pushed += len(taken)
                        self._catching_up = False
                        self._last_success, self._last_error = time.time(), None
                        backoff = BACKOFF_S
                    else:
                        self._last_error = error
                        self._retry_at = time.monotonic() + backoff
                        backoff = min(backoff * 2, MAX_BACKOFF_S)
                    self._changed.notify_all()
        finally:
            store.close()

    def _due(self) -> bool:
        return (self._catching_up or bool(self._pending)) and time.monotonic() >= self._retry_at

    def _wait_s(self) -> float | None:
        if self._catching_up or self._pending:
            return max(self._retry_at - time.monotonic(), 0.0)
        return None  # nothing to do until a run ends

    def _push(self, store: Store, run_ids: list[str] | None) -> str | None:
        """One push (everything the server lacks when ``run_ids`` is None); the error, if any."""
        from nbmlops.sync.push import push  # httpx: see _server

        try:
            push(store, self.setting.uri, run_ids=run_ids)
        except Exception as exc:  # the thread must outlive any failure; it is shown, not raised
            return str(exc) if isinstance(exc, NbmlopsError) else f"{type(exc).__name__}: {exc}"
        return None


_started: dict[tuple[Path, str], BackgroundPush] = {}
_decided: dict[tuple[Path, str], BackgroundPush | None] = {}
_lock = threading.Lock()


def start(home: Path, *, quiet: bool = False) -> BackgroundPush | None:
    """The background push of the store at ``home`` to the configured server, started on the
    first call (None: no server configured). A bad setting raises, or with ``quiet`` (the
    automatic start by ``%load_ext nbmlops`` and ``start_run``) is one warning and no push.
    The setting is read once per store, process and value of :data:`ENV`."""
    key = (home, os.environ.get(ENV, ""))
    with _lock:
        if key in _decided:
            return _decided[key]
        try:
            setting = sync_setting(home)
        except NbmlopsError as exc:
            if not quiet:
                raise
            warnings.warn(f"nbmlops does not push runs in the background: {exc}", stacklevel=3)
            setting = None
        pusher = None
        if setting is not None:
            pusher = _started.get((home, setting.server))
            if pusher is None:
                pusher = _started[(home, setting.server)] = BackgroundPush(home, setting).start()
        _decided[key] = pusher
        return pusher


def running(home: Path) -> BackgroundPush | None:
    """The background push started for the store at ``home`` (the first, if several)."""
    return next((p for (h, _), p in _started.items() if h == home), None)


def stop_all() -> None:
    """Stop every background push of this process and forget the settings read."""
    with _lock:
        pushers = list(_started.values())
        _started.clear()
        _decided.clear()
    for pusher in pushers:
        pusher.stop()


__all__ = ["BackgroundPush", "SyncSetting", "SyncStatus", "start", "stop_all", "sync_setting"]
