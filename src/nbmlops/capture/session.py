"""The capture session of one kernel: every executed cell goes through :meth:`begin` and
:meth:`finish`, tracked or not.

What it keeps between cells is the state behind the stale-input guard: which cell version last
bound each variable, and the latest version each cell ran. What it writes per cell is one
``cell_executions`` row (the cell history): for a ``%%track`` cell together with the run's
outcome, in the run's last transaction; for any other cell on its own. The cell's outcome is
read once, as a :class:`~nbmlops.capture.run.Status`, and the execution's ``ok``/``error``
word derives from it there. While a tracked cell runs, its live progress line
(:mod:`nbmlops.capture.progress`) is kept on the board the interface gives, if any; it is
stopped first thing in :meth:`finish`, whatever the cell or its capture did.

Nothing here raises into the user's cell: what goes wrong becomes a note, and the notes of one
cell come back together in :class:`CellReport` for the interface to show as one warning.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import Any

from nbmlops.capture import analysis
from nbmlops.capture.cell import (
    CellContext,
    Evaluator,
    FeatureChecker,
    Summary,
    TrackedCell,
    TrackOptions,
    body_of,
    identify_cell,
    is_derived_id,
    saved_cells,
    source_hash,
)
from nbmlops.capture.liveness import hostname
from nbmlops.capture.notebook import NotebookSnapshot
from nbmlops.capture.progress import Board, LiveLine
from nbmlops.capture.run import Status
from nbmlops.store import open_store
from nbmlops.store.cells import CellExecution, record_execution


@dataclass(frozen=True)
class CellStart:
    """What the front end tells about a cell about to run."""

    source: str
    front_end_id: str | None
    notebook: str | None
    execution_count: int | None  # None: not stored in the history (e.g. a widget callback)
    options: TrackOptions | None  # None: not a %%track cell
    experiment: str  # the default experiment of tracked cells
    snapshot: NotebookSnapshot | None = None  # the notebook as the front end holds it
    board: Board | None = None  # where a long tracked cell shows its live line; None: nowhere


@dataclass(frozen=True)
class CellReport:
    """What became of one cell's capture: the run summary of a tracked cell, and the notes for
    the one warning (empty when all went well)."""

    summary: Summary | None
    quiet: bool
    notes: tuple[str, ...]


@dataclass
class Definition:
    """The cell version that last bound a variable."""

    cell_id: str
    source_hash: str
    at: float


def stale_inputs(
    loads: dict[str, int],
    this_cell: str,
    definitions: dict[str, Definition],
    latest_versions: dict[str, tuple[str, float]],
    notebook: str | None,
) -> dict[str, str]:
    """Variables this cell reads whose defining cell has been edited since it last ran.

    ``latest_versions`` maps a cell id to its last executed source hash and when; the saved
    notebook, when newer, is the more recent word on a cell's source.
    """
    saved: dict[str, str] = {}
    notebook_mtime = 0.0
    if notebook:
        try:
            notebook_mtime = os.stat(notebook).st_mtime
        except OSError:
            notebook_mtime = 0.0
        saved = {cid: source_hash(src) for cid, src in saved_cells(notebook)}
    stale: dict[str, str] = {}
    for name in loads:
        definition = definitions.get(name)
        if definition is None or definition.cell_id == this_cell:
            continue
        current, ran_at = latest_versions.get(definition.cell_id, (definition.source_hash, 0.0))
        if definition.cell_id in saved and notebook_mtime > ran_at:
            current = saved[definition.cell_id]
        if current != definition.source_hash:
            stale[name] = definition.cell_id
    return stale


def _sentence(exc: BaseException) -> str:
    return str(exc).rstrip(".")


class CaptureSession:
    """Capture across the cells of one kernel process (see the module docstring).

    ``evaluator`` evaluates the models a tracked cell scores (``nbmlops.evaluation``'s
    ``evaluate``, which lives above capture: the interface passes it in); None: none are.
    ``feature_checker`` checks the data a training cell reads against the feature store
    (``nbmlops.feature_store.validation``, passed in the same way); None: nothing is checked."""

    def __init__(
        self,
        evaluator: Evaluator | None = None,
        feature_checker: FeatureChecker | None = None,
    ) -> None:
        self.evaluator = evaluator
        self.feature_checker = feature_checker
        self.session_id = f"{hostname()}:{os.getpid()}:{int(time.time())}"
        self.definitions: dict[str, Definition] = {}
        self.latest_versions: dict[str, tuple[str, float]] = {}
        self.named_cells: dict[str, str] = {}  # run name -> the notebook's id of its cell
        self._context: CellContext | None = None
        self._tracked: TrackedCell | None = None
        self._live: LiveLine | None = None
        self._started = 0.0
        self._started_perf = 0.0
        self._notes: list[str] = []
        self._history_failing = False

    def note(self, text: str) -> None:
        """Add to the current cell's warning."""
        self._notes.append(text)

    def begin(self, cell: CellStart, namespace: dict[str, Any]) -> None:
        """Before the cell runs: identify it and, for a ``%%track`` cell, start its run (and its
        live line, when the cell has a board)."""
        self._stop_live()  # a cell that never finished (an extension's hook failed between)
        self._started, self._started_perf = time.time(), time.perf_counter()
        self._context = self._tracked = None
        run_name = cell.options.name if cell.options else None
        try:
            context = CellContext(
                source=cell.source,
                notebook=cell.notebook,
                cell_id=identify_cell(
                    cell.source, cell.front_end_id, cell.notebook, run_name, self.named_cells
                ),
                execution_count=cell.execution_count,
                session=self.session_id,
            )
        except Exception as exc:
            self.note(f"could not identify this cell ({type(exc).__name__}: {exc})")
            return
        self._context = context
        if run_name and not is_derived_id(context.cell_id):
            self.named_cells[run_name] = context.cell_id
        if cell.options is None:
            return
        try:
            tracked = TrackedCell(
                open_store(None),
                context,
                cell.options,
                namespace,
                default_experiment=cell.experiment,
                snapshot=cell.snapshot,
                evaluator=self.evaluator,
                feature_checker=self.feature_checker,
            )
            tracked.stale = stale_inputs(
                tracked.analysis.loads,
                context.cell_id,
                self.definitions,
                self.latest_versions,
                context.notebook,
            )
            tracked.begin()
            self._tracked = tracked
        except Exception as exc:
            self.note(f"this run is not tracked: {_sentence(exc)}. The cell ran as usual")
            return
        if cell.board is not None:
            try:
                self._live = LiveLine(tracked, cell.board, self._started_perf)
                self._live.start()
            except Exception as exc:  # e.g. no thread can be started: the run goes on without
                self._live = None
                self.note(f"no live progress line: {_sentence(exc)}")

    def _stop_live(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            problem = live.stop()
            if problem:
                self.note(problem)

    @property
    def tracking(self) -> bool:
        """Whether the cell that runs now is being tracked."""
        return self._tracked is not None

    def collect_figures(self) -> None:
        """Right after the user's code, before an inline backend closes its figures."""
        if self._tracked is not None:
            try:
                self._tracked.collect_figures()
            except Exception as exc:
                self._tracked.problems.append(f"figures: {exc}")

    def finish(self, error: BaseException | None) -> CellReport:
        """After the cell ran (``error``: what it raised, if anything): record it."""
        self._stop_live()
        context, tracked = self._context, self._tracked
        self._context = self._tracked = None
        summary = None
        if context is not None:
            execution = CellExecution(
                session=self.session_id,
                notebook=context.notebook,
                cell_id=context.cell_id,
                source=context.source,
                source_hash=context.source_hash,
                execution_count=context.execution_count,
                start_time=self._started,
                duration_s=time.perf_counter() - self._started_perf,
                status=Status.of(error).execution_status,
            )
            if tracked is not None:
                summary = self._finish_run(tracked, error, execution)
            if summary is None:
                self._record(execution)
            self._remember(context, tracked)
        notes, self._notes = tuple(self._notes), []
        quiet = tracked is not None and tracked.options.quiet
        return CellReport(summary, quiet, notes)

    def _finish_run(
        self, tracked: TrackedCell, error: BaseException | None, execution: CellExecution
    ) -> Summary | None:
        assert tracked.run is not None
        try:
            summary = tracked.finish(error, replace(execution, run_id=tracked.run.run_id))
        except Exception as exc:
            self.note(f"could not record the outcome of this run: {_sentence(exc)}")
            return None
        if summary.stale:
            names = ", ".join(f"{n} (from cell {c})" for n, c in sorted(summary.stale.items()))
            self.note(f"this run read variables whose cell was edited since it ran: {names}")
        if summary.problems:
            self.note(f"some items were not captured ({'; '.join(summary.problems[:5])})")
        return summary

    def _record(self, execution: CellExecution) -> None:
        try:
            record_execution(open_store(None), execution)
            self._history_failing = False
        except Exception as exc:
            if not self._history_failing and not self._notes:  # once, until it works again
                self.note(f"cell history is not being recorded: {_sentence(exc)}")
            self._history_failing = True

    def _remember(self, context: CellContext, tracked: TrackedCell | None) -> None:
        """Which cell version bound each variable, for the stale-inputs check."""
        digest = context.source_hash
        cell_analysis = (
            tracked.analysis if tracked else analysis.analyze_cell(body_of(context.source))
        )
        for name in cell_analysis.stores:
            self.definitions[name] = Definition(context.cell_id, digest, self._started)
        self.latest_versions[context.cell_id] = (digest, self._started)
