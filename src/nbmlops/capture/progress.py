"""The one line a ``%%track`` cell shows: live while a long cell runs, its summary after.

While the cell runs longer than :data:`GRACE_S`, a daemon thread rewrites one line about every
:data:`INTERVAL_S`, e.g. ``run 3f2a1c 'mlp' running 12 s · losses 0.0123 (step 4,512)``: the
latest value and step of each metric the cell logged (``nbm.log_metric``, kept per key by the
run as it is logged, so a tick never scans the buffer) and of each list, ``{epoch: value}`` dict
or dict of lists the cell is filling (the curves :mod:`nbmlops.capture.pytorch` records after
the cell). When the cell ends, the same line becomes :func:`render_summary`'s, so the summary is
shown once. A cell shorter than the grace period shows nothing more than before.

Why a thread and not a hook in the loop: the loop is the user's code and stays as it is; the
only per-step cost is one dict assignment in ``log_metric`` (issue #20 item 2: <= 1% on a
10,000-step loop, benchmarks/bench_track.py case 7).

What the thread may touch: it runs while the user's code mutates the same objects, so it reads
only what one C call returns under the GIL (a dict copy, a list's last item) and converts only
plain Python and NumPy numbers. It never calls into user objects (no ``.item()`` or ``float()``
on a tensor: those run the library's code on another thread, mid-step). An item that is not such
a number is skipped for that tick.

Where the line goes is the interface's business (a :class:`Board`; :mod:`nbmlops.magics` shows
it in a Jupyter kernel as one display updated in place). The thread runs in a copy of the
context of the thread that started the cell, taken then: ipykernel 7 keeps the request being
answered (the parent header its output is sent with) in a context variable, and a thread without
it falls back to the parent any thread set last: with kernel subshells, another request may be
handled while the cell runs, and the line would land there. A failure in the thread stops the line
and becomes a note for the cell's one warning, never an exception in the cell.
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from nbmlops.capture.cell import Summary, TrackedCell

GRACE_S = 2.0  # a cell shorter than this shows no live line
INTERVAL_S = 1.0
JOIN_TIMEOUT_S = 5.0
SHOWN = 4  # metrics shown on a line, the others counted
THREAD_NAME = "nbmlops-progress"

Point = tuple[str, int, float | None]  # metric, step, value (None: NaN)


class Board(Protocol):
    """Where the line is shown: the first ``write`` shows it, the next ones replace it."""

    def write(self, text: str) -> None: ...


def _number(value: float | None) -> str:
    return "nan" if value is None else f"{value:.4g}"


def _head(run_id: str, name: str | None, state: str) -> str:
    return f"run {run_id}" + (f" {name!r}" if name else "") + f" {state}"


def _counted(shown: list[str], total: int) -> list[str]:
    more = total - len(shown)
    return [*shown[:-1], shown[-1] + f" +{more}"] if shown and more > 0 else shown


def progress_line(run_id: str, name: str | None, elapsed_s: float, points: list[Point]) -> str:
    """The live line: the run, how long it has run, the latest value and step of each metric."""
    shown = [f"{key} {_number(value)} (step {step:,})" for key, step, value in points[:SHOWN]]
    head = _head(run_id, name, f"running {elapsed_s:.0f} s")
    return " · ".join([head, *_counted(shown, len(points))])


def render_summary(summary: Summary) -> str:
    """The line after a tracked cell: what the run recorded.

    An evaluation the cell made shows its badge: a flagged one beside the metric of the cell it
    qualifies (``mae=32.6 (leaky: 18 rows seen in training)``), the others, and one whose metric
    is not on the line, as ``evaluated: unseen``."""
    parts = [_head(summary.run_id, summary.name, f"{summary.status} in {summary.duration_s:.2f} s")]
    logged = summary.logged
    if logged.params:
        parts.append(f"{logged.params} params")
    notes = list(summary.evaluations)
    if logged.metrics:
        shown = []
        for key, value in list(logged.metrics.items())[:SHOWN]:
            flagged = [n for n in notes if n.badge != "unseen" and key in n.metrics]
            shown.append(f"{key}={value:.4g}" + (f" ({flagged[0].detail})" if flagged else ""))
            if flagged:
                notes.remove(flagged[0])
        parts.append(" ".join(_counted(shown, len(logged.metrics))))
    if notes:
        parts.append("evaluated: " + "; ".join(dict.fromkeys(n.detail for n in notes)))
    if logged.inputs or logged.outputs:
        parts.append(f"data {logged.inputs} in / {logged.outputs} out")
    if logged.models:
        parts.append(f"{logged.models} model" + ("s" if logged.models > 1 else ""))
    if summary.figures:
        parts.append(f"{summary.figures} figure" + ("s" if summary.figures > 1 else ""))
    return " · ".join(parts)


def _plain(value: object) -> float | None:
    """A plain Python or NumPy real number as a float, else None (nothing else is called)."""
    kind = type(value)
    if kind is int or kind is float:
        return float(value)  # type: ignore[arg-type]
    if kind.__module__ == "numpy" and kind.__name__ != "ndarray":  # float64, int32, ...
        dtype = getattr(value, "dtype", None)
        if getattr(dtype, "kind", "") in ("i", "u", "f"):
            return float(value)  # type: ignore[arg-type]
    return None


def _last(values: list[object]) -> tuple[int, float] | None:
    try:
        step, item = len(values) - 1, values[-1]
    except IndexError:  # emptied meanwhile
        return None
    number = _plain(item)
    return None if number is None or step < 0 else (step, number)


def last_points(name: str, obj: object) -> list[Point]:
    """The latest point of each curve ``obj`` holds, read as the module docstring says: a list
    (step: its index), a dict ``{epoch: value}`` (its last entry), a dict of lists."""
    if type(obj) is list:
        last = _last(obj)
        return [] if last is None else [(name, *last)]
    if type(obj) is not dict or not obj:
        return []
    items = list(obj.items())  # one C call: the dict may grow meanwhile
    key, value = items[-1]
    if type(key) is int:
        number = _plain(value)
        return [] if number is None else [(name, key, number)]
    points: list[Point] = []
    for key, value in items:
        if type(key) is str and type(value) is list:
            last = _last(value)
            if last is not None:
                points.append((f"{name}.{key}", *last))
    return points


class LiveLine:
    """The live line of one tracked cell: :meth:`start` when it starts, :meth:`stop` when it
    ends (on every path), before the summary replaces the line."""

    def __init__(
        self,
        tracked: TrackedCell,
        board: Board,
        started: float,
    ) -> None:
        self.tracked = tracked
        self.board = board
        self.started = started  # time.perf_counter() when the cell started, as its summary's
        self.problem: str | None = None
        params = {p.name for p in tracked.analysis.params}
        self._curves = [name for name in tracked.analysis.mutated if name not in params]
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        context = contextvars.copy_context()  # see the module docstring
        self._thread = threading.Thread(
            target=context.run, args=(self._loop,), name=THREAD_NAME, daemon=True
        )
        self._thread.start()

    def stop(self) -> str | None:
        """Stop the thread and wait for it; what went wrong in it, if anything."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                return f"the live progress line did not stop within {JOIN_TIMEOUT_S:.0f} s"
        return self.problem

    def text(self) -> str:
        """The line now."""
        tracked, run = self.tracked, self.tracked.run
        assert run is not None
        logged = run.latest_points()
        points: list[Point] = [(key, step, value) for key, (step, value) in logged.items()]
        for name in self._curves:  # as after the cell: a key the cell logged is not a curve
            found = last_points(name, tracked.namespace.get(name))
            points += (point for point in found if point[0] not in logged)
        elapsed = time.perf_counter() - self.started
        return progress_line(run.run_id, tracked.options.name, elapsed, points)

    def _loop(self) -> None:
        if self._done.wait(GRACE_S):
            return
        try:
            while True:
                self.board.write(self.text())
                if self._done.wait(INTERVAL_S):
                    return
        except Exception as exc:
            self.problem = f"the live progress line stopped ({type(exc).__name__}: {exc})"
