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
from dataclasses import replace
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from nbmlops import api, panels
from nbmlops._version import __version__
from nbmlops.capture import environment
from nbmlops.capture.cell import TRACK_PREFIX, Summary, TrackOptions
from nbmlops.capture.environment import resolve_notebook
from nbmlops.capture.notebook import (
    FRONT_END_TARGET,
    NotebookSnapshot,
    SnapshotError,
    find_by_source,
    from_front_end,
    from_saved_file,
)
from nbmlops.capture.progress import render_summary
from nbmlops.capture.run import DEFAULT_EXPERIMENT
from nbmlops.capture.session import CaptureSession, CellStart
from nbmlops.evaluation.evaluate import evaluate
from nbmlops.feature_store.validation import check_training_inputs


def _warn(message: str) -> None:
    # What went wrong may quote a captured value holding a lone surrogate, which no stream
    # can encode: it is shown escaped rather than failing the hook.
    text = f"nbmlops warning: {message}\n".encode("utf-8", "backslashreplace").decode()
    sys.stderr.write(text)


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
        if (sync := api.sync_status()) is not None:
            lines.append(f"sync        {sync}")
        print("\n".join(lines))

    @line_magic
    def runs(self, line: str) -> Any:
        """%runs [FILTER]: the runs panel, e.g. ``%runs metrics.accuracy > 0.9``."""
        return panels.runs_panel(line.strip() or None)

    @line_magic
    def models(self, line: str) -> Any:
        """%models [NAME]: the registry panel."""
        return panels.models_panel(line.strip() or None)

    @line_magic
    def datasets(self, line: str) -> Any:
        """%datasets [NAME]: named datasets; with NAME its versions, who used each, diffs."""
        return panels.datasets_panel(line.strip() or None)

    @line_magic
    def features(self, line: str) -> Any:
        """%features [VIEW]: feature views; with VIEW its definition, versions and what each
        changed, definition diffs, freshness (staleness vs its TTL) and the models using it."""
        return panels.features_panel(line.strip() or None)

    @magic_arguments()
    @argument("name", nargs="?", help="The registered model (default: the first one).")
    @argument("--window", "-w", help="Window of each point: '5m', '1h', '1d' (default: to fit).")
    @argument("--since", help="Show from this moment (ISO date or time, UTC).")
    @line_magic
    def monitor(self, line: str) -> Any:
        """%monitor [NAME] [--window 1h] [--since 2026-05-01]: a model in production, the
        served vs offline metric per version, label coverage, drift share of served traffic,
        alerts and retrains on one time axis."""
        args = parse_argstring(self.monitor, line)
        return panels.monitor_panel(args.name, window=args.window, since=args.since)

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
        """%cellhistory [RUN]: every version of a cell, named by a run id, a cell id or a run
        name (its newest run); default: the last tracked cell."""
        target = line.strip()
        if not target:
            last = self.tracker.last_summary
            if last is None:
                raise UsageError(
                    "%cellhistory needs a run id, a cell id or a run name, or a tracked cell "
                    "run before it."
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


class LiveDisplay:
    """The board of a tracked cell's live line in a Jupyter kernel (see
    :mod:`nbmlops.capture.progress`): one ``display_data`` with a ``display_id``, then
    ``update_display_data`` for each new text. Front ends replace the output in place, and
    nbclient (``nbmlops execute``, the example notebooks) does the same in the notebook it
    saves, so only the last text remains: the summary line, or with ``--quiet`` an output with
    no data, which front ends show as nothing (there is no message to remove one output)."""

    def __init__(self) -> None:
        self._handle: Any = None

    @property
    def shown(self) -> bool:
        return self._handle is not None

    def write(self, text: str) -> None:
        # raw: the data as given, without the shell's formatters (this may run in the progress
        # thread, where only the kernel's thread-safe publishing is called).
        from IPython.display import display

        data = {"text/plain": text} if text else {}
        if self._handle is None:
            self._handle = display(data, raw=True, display_id=True)
        else:
            self._handle.update(data, raw=True)


class FrontEndLink:
    """The comm over which the nbmlops JupyterLab extension tells this kernel which notebook it
    runs (``{"kind": "path", "path"}``, after a rename too) and, just before a ``%%track`` cell
    is sent, the notebook as the front end holds it (``{"kind": "snapshot", "path", "notebook",
    "dirty"}``). Comm messages travel on the shell channel, so a snapshot sent before an
    execute request is handled before that cell runs.

    The kernel registers the comm target when nbmlops is loaded, and opens a comm itself only
    in a kernel jupyter_server started (``JPY_SESSION_NAME`` is set), where the extension may be
    listening (a front end that reloads finds it with a ``comm_info`` request and opens its
    own). nbclient, papermill and ``jupyter nbconvert --execute`` have no handler for it and
    would log "No handler found for comm target 'nbmlops'" (issue #13). Outside a Jupyter kernel
    this does nothing.
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

        comm.get_comm_manager().register_target(self.TARGET, self._on_open)
        if not os.environ.get("JPY_SESSION_NAME"):
            return
        link = comm.create_comm(
            target_name=self.TARGET,
            data={"kind": "hello", "protocol": self.PROTOCOL, "version": __version__},
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
    """The extension in one kernel: its hooks, the front-end link and the capture session."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.experiment: str | None = None
        self.capture = CaptureSession(evaluator=evaluate, feature_checker=check_training_inputs)
        self.last_summary: Summary | None = None
        self.front_end = FrontEndLink()
        self._found_notebook: str | None = None
        self._display: LiveDisplay | None = None  # the running tracked cell's live line

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

    def notebook(self, source: str | None = None) -> str | None:
        """The notebook this kernel runs: what the front end or the environment says, else the
        one notebook in the working directory holding ``source`` (a cell about to run), found
        once and kept."""
        if self.front_end.path:
            return self.front_end.path
        told = resolve_notebook(
            os.environ.get("JPY_SESSION_NAME"),
            self._text_variable("__vsc_ipynb_file__"),
            self._text_variable("__session__"),
        )
        if told or self._found_notebook or source is None:
            return told or self._found_notebook
        self._found_notebook = find_by_source(Path.cwd(), source)
        return self._found_notebook

    def _text_variable(self, name: str) -> str | None:
        value = self.shell.user_ns.get(name)
        return value if isinstance(value, str) else None

    def default_experiment(self, notebook: str | None) -> str:
        if self.experiment:
            return self.experiment
        return Path(notebook).stem if notebook else DEFAULT_EXPERIMENT

    # -- events ------------------------------------------------------------------------------

    def pre_run_cell(self, info: Any) -> None:
        if self.front_end.problem:
            self.capture.note(self.front_end.problem)
            self.front_end.problem = None
        raw = info.raw_cell or ""
        options = _track_options(raw)
        notebook = snapshot = None
        try:
            notebook = self.notebook(raw)
            if options is not None:
                snapshot = self.front_end.snapshot_for(notebook)
        except Exception as exc:
            self.capture.note(f"could not find the notebook ({type(exc).__name__}: {exc})")
        cell = CellStart(
            source=raw,
            front_end_id=info.cell_id,
            notebook=notebook,
            execution_count=self.shell.execution_count - 1 if info.store_history else None,
            options=options,
            experiment=self.default_experiment(notebook),
            snapshot=snapshot,
            board=self._new_display(options),
        )
        self.capture.begin(cell, self.shell.user_ns)
        if self.capture.tracking:
            self._post_execute_first()

    def _new_display(self, options: TrackOptions | None) -> LiveDisplay | None:
        """A live line for a tracked cell, in a Jupyter kernel only: a terminal or a plain
        shell has no output to update in place."""
        in_kernel = getattr(self.shell, "kernel", None) is not None
        self._display = LiveDisplay() if options is not None and in_kernel else None
        return self._display

    def post_execute(self) -> None:
        self.capture.collect_figures()

    def post_run_cell(self, result: Any) -> None:
        report = self.capture.finish(result.error_in_exec or result.error_before_exec)
        display, self._display = self._display, None
        line = ""
        if report.summary is not None:
            self.last_summary = report.summary
            line = "" if report.quiet else render_summary(report.summary)
        if display is not None and display.shown:  # the live line becomes the summary
            try:
                display.write(line)
            except Exception as exc:
                report = replace(report, notes=(*report.notes, f"the summary line: {exc}"))
        elif line:
            print(line)
        if report.notes:  # at most one warning per cell
            _warn(". ".join(report.notes) + ".")


_tracker: Tracker | None = None


def load(shell: Any) -> None:
    global _tracker
    if _tracker is not None:
        _tracker.unregister()
    _tracker = Tracker(shell)
    _tracker.register()
    environment.warm_up(Path.cwd())
    api.sync_in_background(quiet=True)  # NBMLOPS_MLFLOW_URI or [sync] in nbmlops.toml


def unload(shell: Any) -> None:
    global _tracker
    if _tracker is not None:
        _tracker.unregister()
        _tracker = None
