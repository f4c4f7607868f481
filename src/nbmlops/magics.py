"""IPython glue: ``%%track``, ``%nbmlops``, and the hooks that record every executed cell.

A ``%%track`` cell is not run by the magic. An input transformer blanks the ``%%track`` line
(keeping line numbers) when its arguments parse, so IPython runs the body as an ordinary cell:
same namespace effects, same displayed value, same traceback, top-level ``await`` included.
Capture runs in the ``pre_run_cell`` / ``post_execute`` / ``post_run_cell`` events around it.
The ``track`` magic itself is only reached when the arguments do not parse, and then raises the
``UsageError`` that names the bad argument before any of the cell runs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from nbmlops import api, panels
from nbmlops.capture import analysis, environment
from nbmlops.capture.cell import (
    TRACK_PREFIX,
    CellContext,
    Definition,
    Summary,
    TrackedCell,
    TrackOptions,
    body_of,
    identify_cell,
    resolve_notebook,
    stale_inputs,
)
from nbmlops.capture.liveness import hostname
from nbmlops.capture.notebook import (
    FRONT_END_TARGET,
    NotebookSnapshot,
    SnapshotError,
    from_front_end,
    from_saved_file,
)
from nbmlops.capture.run import DEFAULT_EXPERIMENT


def _warn(message: str) -> None:
    sys.stderr.write(f"nbmlops warning: {message}\n")


def _sentence(exc: BaseException) -> str:
    return str(exc).rstrip(".")


@magics_class
class NbmlopsMagics(Magics):
    def __init__(self, shell: Any, tracker: Tracker) -> None:
        super().__init__(shell)
        self.tracker = tracker

    @magic_arguments()
    @argument("name", nargs="?", help="Name of the run (default: none).")
    @argument("--experiment", "-e", help="Experiment of the run (default: the notebook's name).")
    @argument("--params", nargs="+", default=[], metavar="VAR", help="Variables to log as params.")
    @argument(
        "--metrics", nargs="+", default=[], metavar="VAR", help="Variables to log as metrics."
    )
    @argument(
        "--data", nargs="+", default=[], metavar="VAR", help="Variables to log as input datasets."
    )
    @argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="A tag; repeatable.")
    @argument(
        "--no-auto",
        action="store_true",
        help="Record only what is named and what nbm.log_* logs; no automatic capture.",
    )
    @argument("--quiet", "-q", action="store_true", help="No summary line after the cell.")
    @cell_magic
    def track(self, line: str, cell: str) -> None:
        """Record every run of this cell: code version, params, data, metrics, models, figures.

        Put ``%%track`` on the first line of a cell. Each run becomes a run in the nbmlops store
        (list them with ``nbm.runs()`` or ``nbmlops runs``).
        """
        parse_track_line(f"{TRACK_PREFIX} {line}")
        raise UsageError(
            "%%track must be the first line of a cell that IPython runs itself "
            "(not inside another cell magic)."
        )

    @magic_arguments()
    @argument("--experiment", "-e", help="Set the default experiment for tracked cells.")
    @argument("--store", help="Use the store at this path from now on.")
    @line_magic
    def nbmlops(self, line: str) -> Any:
        """Show the store, the current experiment and what the last tracked run captured."""
        args = parse_argstring(self.nbmlops, line)
        if args.store:
            api.set_store(args.store)
        if args.experiment:
            self.tracker.experiment = args.experiment
        store = api.get_store()
        notebook = self.tracker.notebook()
        lines = [
            f"store       {store.db_path}",
            f"experiment  {self.tracker.default_experiment(notebook)}",
            f"notebook    {notebook or '(unknown: set NBMLOPS_NOTEBOOK)'}",
        ]
        last = self.tracker.last_summary
        lines.append(f"last run    {render_summary(last) if last else '(none yet)'}")
        print("\n".join(lines))

    @line_magic
    def runs(self, line: str) -> Any:
        """%runs [FILTER]: the runs panel, e.g. ``%runs metrics.accuracy > 0.9``."""
        return panels.runs_panel(line.strip() or None)

    @line_magic
    def models(self, line: str) -> Any:
        """%models [NAME]: the registry panel."""
        return panels.models_panel(line.strip() or None)

    @magic_arguments()
    @argument(
        "reference",
        nargs="?",
        help="A DataFrame variable, a registered model (name@alias, name/3), a saved "
        "reference id or a dataset fingerprint. Without REF and CUR the panel opens with "
        "choosers.",
    )
    @argument("current", nargs="?", help="A DataFrame variable.")
    @argument("--columns", nargs="+", default=None, metavar="COL", help="Columns to check.")
    @line_magic
    def drift(self, line: str) -> Any:
        """%drift [REF CUR] [--columns ...]: the drift panel; with REF and CUR, CUR checked
        against REF at once."""
        args = parse_argstring(self.drift, line)
        namespace: dict[str, Any] = self.tracker.shell.user_ns
        if args.reference is None:
            return panels.drift_panel(namespace=namespace)
        if args.current is None:
            raise UsageError(
                "%drift: give both the reference and the current data (%drift REF CUR), or "
                "neither to choose them in the panel."
            )
        if args.current not in namespace:
            raise UsageError(f"%drift: no variable named {args.current!r} for the current data.")
        reference = namespace.get(args.reference, args.reference)
        return panels.drift_panel(
            reference, namespace[args.current], args.columns, namespace=namespace
        )

    @line_magic
    def cellhistory(self, line: str) -> Any:
        """%cellhistory [RUN_OR_CELL]: every version of a cell (default: the last tracked)."""
        target = line.strip()
        if not target:
            last = self.tracker.last_summary
            if last is None:
                raise UsageError(
                    "%cellhistory needs a run id or cell id, or a tracked cell run before it."
                )
            target = last.run_id
        return panels.cell_history_panel(target, shell=self.shell)


def _options_from(args: Any) -> TrackOptions:
    tags: dict[str, str] = {}
    for pair in args.tag:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--tag expects KEY=VALUE, got {pair!r}")
        tags[key] = value
    return TrackOptions(
        name=args.name,
        experiment=args.experiment,
        params=tuple(args.params),
        metrics=tuple(args.metrics),
        data=tuple(args.data),
        tags=tuple(tags.items()),
        auto=not args.no_auto,
        quiet=args.quiet,
    )


@functools.lru_cache(maxsize=256)
def parse_track_line(first_line: str) -> TrackOptions:
    """Options of a ``%%track ...`` line; ``UsageError`` naming the bad argument otherwise.

    Cached: the transformer and the pre-run hook both ask, on every run of the cell.
    """
    rest = first_line.strip()[len(TRACK_PREFIX) :]
    if rest and not rest[0].isspace():
        raise UsageError(f"Unknown magic {first_line.split()[0]!r}; did you mean %%track?")
    return _options_from(parse_argstring(NbmlopsMagics.track, rest.strip()))


def _track_options(raw_cell: str) -> TrackOptions | None:
    first = raw_cell.lstrip("\n").partition("\n")[0]
    if not first.lstrip().startswith(TRACK_PREFIX):
        return None
    try:
        return parse_track_line(first)
    except UsageError:
        return None


def strip_track_line(lines: list[str]) -> list[str]:
    """IPython input transformer: a valid ``%%track`` line becomes a blank line."""
    if lines and lines[0].lstrip().startswith(TRACK_PREFIX) and _track_options(lines[0]):
        return ["\n", *lines[1:]]
    return lines


strip_track_line.has_side_effects = False  # type: ignore[attr-defined]


def render_summary(summary: Summary) -> str:
    parts = [f"run {summary.run_id}"]
    if summary.name:
        parts[0] += f" {summary.name!r}"
    parts[0] += f" {summary.status} in {summary.duration_s:.2f} s"
    if summary.params:
        parts.append(f"{summary.params} params")
    if summary.metrics:
        shown = " ".join(f"{k}={v:.4g}" for k, v in list(summary.metrics.items())[:4])
        more = len(summary.metrics) - 4
        parts.append(shown + (f" +{more}" if more > 0 else ""))
    if summary.inputs or summary.outputs:
        parts.append(f"data {summary.inputs} in / {summary.outputs} out")
    if summary.models:
        parts.append(f"{summary.models} model" + ("s" if summary.models > 1 else ""))
    if summary.figures:
        parts.append(f"{summary.figures} figure" + ("s" if summary.figures > 1 else ""))
    return " · ".join(parts)


class FrontEndLink:
    """The comm over which the nbmlops JupyterLab extension tells this kernel which notebook it
    runs (``{"kind": "path", "path"}``, after a rename too) and, just before a ``%%track`` cell
    is sent, the notebook as the front end holds it (``{"kind": "snapshot", "path", "notebook",
    "dirty"}``). Comm messages travel on the shell channel, so a snapshot sent before an
    execute request is handled before that cell runs.

    The kernel opens a comm when nbmlops is loaded (a front end that reloads finds it with a
    ``comm_info`` request and opens its own). Outside a Jupyter kernel this does nothing.
    """

    TARGET = FRONT_END_TARGET
    PROTOCOL = 1

    def __init__(self) -> None:
        self.path: str | None = None
        self.snapshot: NotebookSnapshot | None = None
        self.problem: str | None = None
        self._comms: list[Any] = []

    def open(self, shell: Any) -> None:
        if getattr(shell, "kernel", None) is None:
            return
        import comm

        import nbmlops

        comm.get_comm_manager().register_target(self.TARGET, self._on_open)
        link = comm.create_comm(
            target_name=self.TARGET,
            data={"kind": "hello", "protocol": self.PROTOCOL, "version": nbmlops.__version__},
        )
        link.on_msg(self._on_message)
        self._comms.append(link)

    def close(self) -> None:
        for link in self._comms:
            with contextlib.suppress(Exception):  # a kernel shutting down: nothing to tell
                link.close()
        self._comms = []

    def _on_open(self, link: Any, message: dict[str, Any]) -> None:
        link.on_msg(self._on_message)
        self._comms.append(link)
        self._receive(message["content"].get("data") or {})

    def _on_message(self, message: dict[str, Any]) -> None:
        self._receive(message["content"].get("data") or {})

    def _receive(self, data: Any) -> None:
        kind = data.get("kind") if isinstance(data, dict) else None
        try:
            if kind == "path":
                if isinstance(data.get("path"), str):
                    self.path = data["path"]
            elif kind == "snapshot":
                self.snapshot = from_front_end(data)
                self.path = self.snapshot.path or self.path
            elif kind != "hello":
                raise SnapshotError(f"unknown message kind {kind!r}")
        except SnapshotError as exc:
            self.problem = f"the JupyterLab extension sent a message nbmlops cannot use ({exc})"

    def snapshot_for(self, notebook: str | None) -> NotebookSnapshot | None:
        """The front end's snapshot of ``notebook``, else the notebook as last saved."""
        if self.snapshot is not None and self.snapshot.path in (None, notebook):
            return self.snapshot
        return from_saved_file(notebook)


class Tracker:
    """The extension's state in one kernel: hooks, the cell being tracked, variable origins."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.experiment: str | None = None
        self.session = f"{hostname()}:{os.getpid()}:{int(time.time())}"
        self.definitions: dict[str, Definition] = {}
        self.latest_versions: dict[str, tuple[str, float]] = {}
        self.last_summary: Summary | None = None
        self._tracked: TrackedCell | None = None
        self._context: CellContext | None = None
        self._started = 0.0
        self._started_perf = 0.0
        self._history_failing = False
        self._notes: list[str] = []
        self.front_end = FrontEndLink()

    # -- registration ------------------------------------------------------------------------

    def register(self) -> None:
        shell = self.shell
        shell.register_magics(NbmlopsMagics(shell, self))
        shell.events.register("pre_run_cell", self.pre_run_cell)
        shell.events.register("post_run_cell", self.post_run_cell)
        shell.events.register("post_execute", self.post_execute)
        shell.input_transformers_cleanup.append(strip_track_line)
        self.front_end.open(shell)

    def unregister(self) -> None:
        shell = self.shell
        for event, callback in (
            ("pre_run_cell", self.pre_run_cell),
            ("post_run_cell", self.post_run_cell),
            ("post_execute", self.post_execute),
        ):
            if callback in shell.events.callbacks[event]:
                shell.events.unregister(event, callback)
        while strip_track_line in shell.input_transformers_cleanup:
            shell.input_transformers_cleanup.remove(strip_track_line)
        self.front_end.close()

    def _post_execute_first(self) -> None:
        # The inline backend closes figures in its own post_execute callback; ours must run
        # before it to see them.
        callbacks = self.shell.events.callbacks["post_execute"]
        if callbacks and callbacks[0] != self.post_execute:
            callbacks.remove(self.post_execute)
            callbacks.insert(0, self.post_execute)

    # -- identity ----------------------------------------------------------------------------

    def notebook(self) -> str | None:
        if self.front_end.path:
            return self.front_end.path
        return resolve_notebook(
            os.environ.get("JPY_SESSION_NAME"), self.shell.user_ns.get("__vsc_ipynb_file__")
        )

    def default_experiment(self, notebook: str | None) -> str:
        if self.experiment:
            return self.experiment
        return Path(notebook).stem if notebook else DEFAULT_EXPERIMENT

    # -- events ------------------------------------------------------------------------------

    def pre_run_cell(self, info: Any) -> None:
        self._started, self._started_perf = time.time(), time.perf_counter()
        self._tracked = None
        self._context = None
        self._notes = []
        if self.front_end.problem:
            self._notes.append(self.front_end.problem)
            self.front_end.problem = None
        try:
            raw = info.raw_cell or ""
            options = _track_options(raw)
            notebook = self.notebook()
            count = self.shell.execution_count - 1 if info.store_history else None
            context = CellContext(
                source=raw,
                notebook=notebook,
                cell_id=identify_cell(
                    raw, info.cell_id, notebook, options.name if options else None
                ),
                execution_count=count,
                session=self.session,
            )
            self._context = context
        except Exception as exc:
            self._notes.append(f"could not identify this cell ({type(exc).__name__}: {exc})")
            return
        if options is None:
            return
        try:
            tracked = TrackedCell(
                api.get_store(),
                context,
                options,
                self.shell.user_ns,
                default_experiment=self.default_experiment(notebook),
                snapshot=self.front_end.snapshot_for(notebook),
            )
            tracked.stale = stale_inputs(
                tracked.analysis.loads,
                context.cell_id,
                self.definitions,
                self.latest_versions,
                notebook,
            )
            tracked.begin()
            self._tracked = tracked
            self._post_execute_first()
        except Exception as exc:
            self._notes.append(f"this run is not tracked: {_sentence(exc)}. The cell ran as usual")

    def post_execute(self) -> None:
        if self._tracked is not None:
            try:
                self._tracked.collect_figures()
            except Exception as exc:
                self._tracked.problems.append(f"figures: {exc}")

    def post_run_cell(self, result: Any) -> None:
        error = result.error_in_exec or result.error_before_exec
        tracked, context = self._tracked, self._context
        self._tracked = self._context = None
        if context is None:
            self._flush_notes()
            return
        execution = self._execution_row(context, error)
        recorded = False
        if tracked is not None:
            try:
                summary = tracked.finish(error, execution)
                recorded = True
                self.last_summary = summary
                if not tracked.options.quiet:
                    print(render_summary(summary))
                if summary.stale:
                    names = ", ".join(
                        f"{n} (from cell {c})" for n, c in sorted(summary.stale.items())
                    )
                    self._notes.append(
                        f"this run read variables whose cell was edited since it ran: {names}"
                    )
                if summary.problems:
                    shown = "; ".join(summary.problems[:5])
                    self._notes.append(f"some items were not captured ({shown})")
            except Exception as exc:
                self._notes.append(f"could not record the outcome of this run: {_sentence(exc)}")
        self._remember(context, tracked)
        if not recorded:
            self._record_execution(execution, context.source)
        self._flush_notes()

    def _flush_notes(self) -> None:
        if self._notes:  # at most one warning per cell
            _warn(". ".join(self._notes) + ".")
        self._notes = []

    def _execution_row(self, context: CellContext, error: BaseException | None) -> dict[str, Any]:
        status = "ok"
        if isinstance(error, KeyboardInterrupt):
            status = "interrupted"
        elif error is not None:
            status = "error"
        return {
            "session": self.session,
            "notebook": context.notebook,
            "cell_id": context.cell_id,
            "source_hash": context.source_hash,
            "execution_count": context.execution_count,
            "start_time": self._started,
            "duration_s": time.perf_counter() - self._started_perf,
            "status": status,
            "run_id": None,
        }

    def _remember(self, context: CellContext, tracked: TrackedCell | None) -> None:
        """Which cell version bound each variable, for the stale-inputs check."""
        digest = context.source_hash
        cell_analysis = (
            tracked.analysis if tracked else analysis.analyze_cell(body_of(context.source))
        )
        for name in cell_analysis.stores:
            self.definitions[name] = Definition(context.cell_id, digest, self._started)
        self.latest_versions[context.cell_id] = (digest, self._started)

    def _record_execution(self, execution: dict[str, Any], source: str) -> None:
        try:
            api.get_store().record_cell_execution(execution, source)
            self._history_failing = False
        except Exception as exc:
            if not self._history_failing and not self._notes:  # once, until it works again
                self._notes.append(f"cell history is not being recorded: {_sentence(exc)}")
            self._history_failing = True


_tracker: Tracker | None = None


def load(shell: Any) -> None:
    global _tracker
    if _tracker is not None:
        _tracker.unregister()
    _tracker = Tracker(shell)
    _tracker.register()
    environment.warm_up(Path.cwd())


def unload(shell: Any) -> None:
    global _tracker
    if _tracker is not None:
        _tracker.unregister()
        _tracker = None
