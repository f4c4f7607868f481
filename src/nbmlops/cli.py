"""The ``nbmlops`` command: one click group over the Python API.

Errors of nbmlops become one clean line on stderr and exit code 1 here, at the edge, and
nowhere else.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import json
import shutil
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from nbmlops import _display, api
from nbmlops.errors import NbmlopsError
from nbmlops.headless import execute_notebook, parameter_value
from nbmlops.review.commands import review as review_group
from nbmlops.serving.commands import pull as pull_command
from nbmlops.serving.commands import serve as serve_command
from nbmlops.store import open_store
from nbmlops.store import reviews as review_store

F = TypeVar("F", bound=Callable[..., Any])


def _clean_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except NbmlopsError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    "store",
    type=click.Path(file_okay=True, dir_okay=True),
    envvar="NBMLOPS_HOME",
    help="Store folder (.nbmlops), its nbmlops.db, or a project folder. "
    "Default: NBMLOPS_HOME, else the nearest .nbmlops/ upwards.",
)
@click.version_option(package_name="nbmlops")
@click.pass_context
def main(ctx: click.Context, store: str | None) -> None:
    """nbmlops: list, inspect and compare the runs recorded in a store."""
    ctx.obj = store


RUN_HEADERS = {"run_id": "id", "start_time": "start", "end_time": "end", "duration_s": "duration"}
"""The runs table's short headers; ``--columns`` takes either name."""
MAX_CELL = 32  # a table cell longer than this is cut (the whole value: --wide or --format)
MIN_WRAP = 24  # the wrapped column (a history's summary) keeps at least this width


@dataclass(frozen=True)
class _Layout:
    """How a table command lays out its frame: the columns it shows first (names, always
    shown, then globs in order of preference), those it shows only in --wide (or when named),
    the column it wraps, and short headers."""

    first: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    wrap: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    noun: str = "rows"
    keep_empty: bool = False
    """Show columns with no value in any row (an SQL query's columns were asked for)."""
    once: tuple[str, ...] = ()
    """Columns said once above the table when every row has the same value."""
    short: dict[str, int] = field(default_factory=dict)
    """Columns cut to this many characters (prefixes that still name the row, like git's)."""


def _echo_frame(
    frame: Any,
    fmt: str,
    empty: str,
    *,
    columns: str | None = None,
    wide: bool = False,
    layout: _Layout | None = None,
) -> None:
    layout = layout or _Layout()
    frame = frame.drop(columns=[c for c in ("payload",) if c in frame.columns])
    chosen = _choose_columns(frame, columns, layout) if columns else None
    if chosen is not None:
        frame = frame[chosen]
    if fmt == "csv":
        click.echo(_with_text_booleans(frame).to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(frame.to_json(orient="records", date_format="iso", indent=2))
    elif frame.empty:
        click.echo(empty)
    else:
        width = shutil.get_terminal_size((100, 24)).columns
        for line in _table_lines(
            frame, layout, explicit=chosen is not None, wide=wide, width=width
        ):
            click.echo(line)


def _choose_columns(frame: Any, spec: str, layout: _Layout) -> list[str]:
    """The columns ``--columns`` names, in its order: names (or short headers) and globs."""
    by_header = {layout.headers.get(c, c): c for c in frame.columns}
    chosen: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if any(ch in part for ch in "*?["):
            chosen += [c for c in frame.columns if fnmatch.fnmatchcase(c, part)]
            continue
        name = by_header.get(part, part)
        if name not in frame.columns:
            near = difflib.get_close_matches(
                part, list(dict.fromkeys([*by_header, *frame.columns]))
            )
            hint = f"did you mean {', '.join(near)}? " if near else ""
            raise NbmlopsError(
                f"No column {part!r} here; {hint}Columns: {_shortlist(list(by_header), 12)}; "
                "globs such as 'metrics.*' work too."
            )
        chosen.append(name)
    return list(dict.fromkeys(chosen))


def _with_text_booleans(frame: Any) -> Any:
    """Booleans as true/false in CSV, as in every text nbmlops shows."""
    shown = frame.copy()
    for column in shown.columns:
        values = shown[column].dropna().tolist()
        if values and all(isinstance(v, bool) for v in values):
            shown[column] = shown[column].astype(object).map(_display.value, na_action="ignore")
    return shown


def _cells(series: Any) -> list[str]:
    if str(series.dtype).startswith("datetime64"):
        return [_display.when(v, zone=False) for v in series]
    missing = series.isna().tolist()
    render = _display.duration if series.name == "duration_s" else _display.value
    return ["" if gone else render(v) for v, gone in zip(series.tolist(), missing, strict=True)]


def _table_lines(
    frame: Any, layout: _Layout, *, explicit: bool, wide: bool, width: int
) -> list[str]:
    """The frame as a table for a terminal ``width`` wide. Unless ``wide`` or the columns were
    named: empty columns are dropped, long cells cut, the wrap column wrapped and, when not all
    columns fit, the table made compact (short ids, ``metrics.`` above its key) and the
    columns that still do not fit left out (said below the table), in the layout's order."""
    order = list(frame.columns)
    if not explicit:
        first = [c for p in layout.first for c in order if fnmatch.fnmatchcase(c, p)]
        order = list(dict.fromkeys(first + order))
        if not wide:
            order = [c for c in order if c not in layout.hidden]
    headers = {c: layout.headers.get(c, c) for c in order}
    cells = {c: _cells(frame[c]) for c in order}
    if not explicit and not wide and not layout.keep_empty:
        order = [c for c in order if any(cells[c])]
    fit = not wide and not explicit
    wrap = layout.wrap if fit and layout.wrap in order else None
    above: list[str] = []
    if fit:
        for c in order:
            if c != wrap:
                cells[c] = [v if len(v) <= MAX_CELL else v[: MAX_CELL - 1] + "…" for v in cells[c]]
        if len(frame) > 1:
            above = [c for c in layout.once if c in order and len(set(cells[c])) == 1]
            order = [c for c in order if c not in above]
    shown, left_out, used = _fit(order, headers, cells, layout, wrap, width if fit else None)
    if left_out:  # compact: as narrow as the values allow, then fit again
        headers = {c: h.replace(".", ".\n", 1) for c, h in headers.items()}
        cells.update({c: [v[:n] for v in cells[c]] for c, n in layout.short.items() if c in cells})
        shown, left_out, used = _fit(order, headers, cells, layout, wrap, width)
    lines = [f"all {len(frame)} {layout.noun}: " + ", ".join(f"{c} {cells[c][0]}" for c in above)]
    lines = lines if above else []
    lines += _display.table(
        [headers[c] for c in shown],
        [list(row) for row in zip(*(cells[c] for c in shown), strict=True)],
        right=[str(frame[c].dtype)[:1] in "iufI" or c == "duration_s" for c in shown],
        wrap=shown.index(wrap) if wrap else None,
        wrap_width=width - used - 2,
    )
    if left_out:
        note = (
            f"({len(left_out)} more column{'s' if len(left_out) > 1 else ''}: "
            f"{_shortlist(left_out)}; show them with --wide or --columns)"
        )
        lines += textwrap.wrap(note, width, break_on_hyphens=False)
    return lines


def _fit(
    order: list[str],
    headers: dict[str, str],
    cells: dict[str, list[str]],
    layout: _Layout,
    wrap: str | None,
    width: int | None,
) -> tuple[list[str], list[str], int]:
    """The columns shown (the layout's named first ones always, the wrap column last), those
    left out, and the width the shown ones take apart from the wrap column."""
    need = {c: max(len(x) for x in [*headers[c].split("\n"), *cells[c]]) for c in order}
    keep = len([p for p in layout.first if p in order]) or 1
    room = None if width is None else width - (MIN_WRAP + 2 if wrap else 0)
    shown: list[str] = []
    left_out: list[str] = []
    used = -2
    for c in order:
        if c == wrap:
            continue
        if room is None or used + 2 + need[c] <= room or len(shown) < keep:
            shown.append(c)
            used += 2 + need[c]
        else:
            left_out.append(layout.headers.get(c, c))
    return shown + ([wrap] if wrap else []), left_out, used


def _shortlist(names: list[str], limit: int = 4) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)


_COLUMNS = click.option(
    "--columns",
    "-c",
    help="Columns to show, comma-separated, in order: names or globs, e.g. "
    "'name,metrics.*'. Default: what fits the terminal.",
)
_WIDE = click.option(
    "--wide", "-w", is_flag=True, help="Every column, values uncut, however wide the table."
)

_RUNS = _Layout(
    first=("run_id", "experiment", "name", "status", "start_time", "duration_s", "metrics.*"),
    hidden=("end_time", "user", "notebook", "cell_id"),
    headers=RUN_HEADERS,
    noun="runs",
    once=("experiment", "status"),
    short={"run_id": 8},
)
_MODELS = _Layout(noun="models")
_SQL = _Layout(keep_empty=True)
_VERSIONS = _Layout(first=("version", "aliases", "status", "metrics.*"), noun="versions")
_HISTORY = _Layout(
    first=("at", "kind", "version", "alias"),
    hidden=("event_id", "host"),
    wrap="summary",
    noun="events",
    once=("actor",),
)


@main.command("runs")
@click.option("--filter", "-f", "filter_", help='e.g. "params.lr < 0.1 AND metrics.auc > 0.9"')
@click.option("--experiment", "-e", help="Only runs of this experiment.")
@_FORMAT
@_COLUMNS
@_WIDE
@click.option("--limit", "-n", type=int, default=50, show_default=True, help="Rows (table only).")
@click.pass_obj
@_clean_errors
def runs_cmd(
    store: str | None,
    filter_: str | None,
    experiment: str | None,
    fmt: str,
    columns: str | None,
    wide: bool,
    limit: int,
) -> None:
    """List runs, newest first: id, experiment, name, status, start, duration, then the
    metrics, params and tags that fit the terminal (--wide: all of them)."""
    frame = api.runs(filter_, experiment, store=store)
    total = len(frame)
    if fmt == "table":
        frame = frame.head(limit)
    empty = f"No runs in {api.get_store(store).db_path}."
    _echo_frame(frame, fmt, empty, columns=columns, wide=wide, layout=_RUNS)
    if fmt == "table" and total > limit:
        click.echo(f"... {total - limit} more runs (use --limit or --format csv)")


@main.command("show")
@click.argument("run_id", required=False)
@click.pass_obj
@_clean_errors
def show_cmd(store: str | None, run_id: str | None) -> None:
    """Show one run (default: the newest): attributes, its newest verified re-run and the
    latest review of a model version it trained, params, metrics, tags, datasets, artifacts."""
    if run_id is None:
        newest = api.runs(store=store)["run_id"].head(1).tolist()
        if not newest:
            raise NbmlopsError(f"No runs in {api.get_store(store).db_path}.")
        run_id = newest[0]
    run = api.get_run(run_id, store=store)
    info = run.info
    click.echo(f"run        {info['run_id']}")
    for key in ("experiment", "name", "status", "user", "host", "notebook", "cell_id"):
        if info.get(key) is not None:
            click.echo(f"{key:<10} {info[key]}")
    click.echo(f"{'start':<10} {_display.when(info['start_time'])}")
    if info["duration_s"] is not None:
        click.echo(f"{'duration':<10} {_display.duration(info['duration_s'])}")
    if info["error_type"]:
        click.echo(f"{'error':<10} {info['error_type']}: {info['error_message']}")
    opened = open_store(store, create=False)
    rerun = review_store.latest_reruns(opened, [run.run_id]).get(run.run_id)
    if rerun is not None:
        _wrapped_field("re-run", _rerun_line(rerun))
    review = review_store.latest_review_of_run(opened, run.run_id)
    if review is not None:
        approvals = api.model_approvals(review["name"], review["version"], store=opened)
        _wrapped_field("review", _review_line(review, len(approvals)))
    _section("params", run.params)
    _section("metrics", run.metrics)
    _section("tags", run.tags)
    _section(
        "datasets",
        {f"{d['role']} {d['name']}": f"{d['dataset_id'][:16]} {_shape(d)}" for d in run.datasets},
    )
    _section(
        "artifacts",
        {
            f"{a['kind']} {a['name']}": f"{a['sha256'][:16]} {a['size']} bytes"
            for a in run.artifacts
        },
    )


def _wrapped_field(key: str, text: str) -> None:
    """``key`` and a long ``text``, folded to a terminal's width under the value column (a path
    is never split); one line when the output goes to a pipe or a file, for grep and scripts."""
    if not sys.stdout.isatty():
        click.echo(f"{key:<10} {text}")
        return
    width = max(shutil.get_terminal_size((80, 24)).columns, 40)
    lines = textwrap.wrap(
        text,
        width,
        initial_indent=f"{key:<10} ",
        subsequent_indent=" " * 11,
        break_long_words=False,
        break_on_hyphens=False,
    )
    click.echo("\n".join(lines))


def _rerun_line(rerun: dict[str, Any]) -> str:
    """``reproduced, 3 metrics within 1e-06 (<when> by <who>)``; for ``differs`` the first
    difference and how many more, for ``could_not_run`` the reason."""
    outcome, differences = rerun["outcome"], rerun["differences"] or []
    if outcome == "reproduced":
        n = len(rerun["metrics"] or {})
        text = f"reproduced, {n} metric{'' if n == 1 else 's'} within {rerun['tolerance']:g}"
    elif outcome == "differs":
        more = f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""
        text = f"differs: {differences[0] if differences else 'no difference recorded'}{more}"
    elif outcome == "unverified":
        text = "ran again, nothing verified: the run recorded no metrics"
    else:
        text = f"could not run: {rerun['reason']}"
    by = f" by {rerun['actor']}" if rerun["actor"] else ""
    return f"{text} ({_display.when(rerun['finished_at'])}{by})"


def _review_line(review: dict[str, Any], approvals: int) -> str:
    """``name/2 reviewed <when> against name/1 (review 3): <headline>; N approvals; <html>``."""
    lines = review["summary"].get("lines") or []
    headline = f": {lines[0]}" if lines else ""
    against = review["against"] or "nothing"
    html = f"; {Path(review['path']) / 'review.html'}" if review["path"] else ""
    return (
        f"{review['name']}/{review['version']} reviewed {_display.when(review['created_at'])} "
        f"against {against} (review {review['review_id']}){headline}; "
        f"{approvals} approval{'' if approvals == 1 else 's'}{html}"
    )


@main.command("notebook")
@click.argument("run_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the .ipynb.",
)
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.pass_obj
@_clean_errors
def notebook_cmd(store: str | None, run_id: str, output: Path, force: bool) -> None:
    """Write the notebook a run belonged to, as it was when the run started (unsaved edits
    included where the JupyterLab extension sent them), to OUTPUT."""

    run = api.get_run(run_id, store=store)
    notebook = run.notebook()
    if notebook is None:
        raise NbmlopsError(f"Run {run.run_id} stored no notebook (it did not run in a notebook).")
    if output.exists() and not force:
        raise NbmlopsError(f"{output} exists; pass --force to overwrite it.")
    output.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    origin = next(a["meta"] for a in run.artifacts if a["kind"] == "notebook")
    click.echo(
        f"wrote {output}: the notebook of run {run.run_id} as it was at its start "
        f"(from the {origin.get('origin', 'store')})"
    )


@main.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--all", "show_all", is_flag=True, help="Also list values that are the same.")
@click.pass_obj
@_clean_errors
def diff_cmd(store: str | None, run_a: str, run_b: str, show_all: bool) -> None:
    """Compare two runs: params, metrics, datasets, environment and cell source."""
    a, b = api.get_run(run_a, store=store), api.get_run(run_b, store=store)
    click.echo(f"--- {a.run_id}\n+++ {b.run_id}")
    _diff_section("params", a.params, b.params, show_all)
    _diff_section("metrics", a.metrics, b.metrics, show_all)
    _diff_section(
        "datasets",
        {f"{d['role']} {d['name']}": d["dataset_id"][:16] for d in a.datasets},
        {f"{d['role']} {d['name']}": d["dataset_id"][:16] for d in b.datasets},
        show_all,
    )
    env_a, env_b = a.environment or {}, b.environment or {}
    _diff_section(
        "environment",
        _flat_env(env_a),
        _flat_env(env_b),
        show_all,
    )
    src_a, src_b = a.cell_source, b.cell_source
    if src_a is not None or src_b is not None:
        lines = list(
            difflib.unified_diff(
                (src_a or "").splitlines(),
                (src_b or "").splitlines(),
                f"{a.run_id} cell source",
                f"{b.run_id} cell source",
                lineterm="",
            )
        )
        click.echo("\ncell source" + ("" if lines else ": same"))
        for line in lines:
            click.echo("  " + line)


@main.command("sql")
@click.argument("query")
@_FORMAT
@_WIDE
@click.pass_obj
@_clean_errors
def sql_cmd(store: str | None, query: str, fmt: str, wide: bool) -> None:
    """Run one read-only SQL query over the store (tables: docs/schema.md)."""
    _echo_frame(api.sql(query, store=store), fmt, "No rows.", wide=wide, layout=_SQL)


@main.command("execute")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write the executed notebook here."
)
@click.option(
    "--inplace",
    is_flag=True,
    help="Write the outputs back into NOTEBOOK (up to the failing cell when one fails).",
)
@click.option(
    "--parameters",
    "-p",
    "params",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="Set a variable of the cell tagged 'parameters' (papermill's -p): True, False, None "
    "and numbers are read as such, anything else as text.",
)
@click.option("--timeout", type=int, default=600, show_default=True, help="Seconds per cell.")
@click.option("--allow-errors", is_flag=True, help="Keep going after a cell raises.")
@click.pass_obj
@_clean_errors
def execute_cmd(
    store: str | None,
    notebook: str,
    output: str | None,
    inplace: bool,
    params: tuple[tuple[str, str], ...],
    timeout: int,
    allow_errors: bool,
) -> None:
    """Run a notebook headless in a fresh kernel; its %%track cells are recorded."""
    # nbclient and the kernel machinery take a second to import: only this command needs them.
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    target = notebook if inplace else output
    try:
        executed = execute_notebook(
            notebook,
            target,
            parameters={name: parameter_value(value) for name, value in params} or None,
            timeout=timeout,
            allow_errors=allow_errors,
            store=store,
        )
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        stopped = {CellTimeoutError: "a cell timed out", DeadKernelError: "the kernel died"}
        what = stopped.get(type(exc), "a cell failed")
        kept = f" The executed copy, up to that cell, is in {target}." if target else ""
        raise click.ClickException(f"{notebook}: {what}.{kept}\n{exc}") from exc
    except ValueError as exc:  # a parameter name that is no variable, a file that is no notebook
        raise click.ClickException(f"{notebook}: {exc}") from exc
    cells = sum(c.cell_type == "code" for c in executed.cells)
    click.echo(f"Executed {cells} code cells of {notebook}" + (f" into {target}" if target else ""))


@main.command("models")
@_FORMAT
@_COLUMNS
@_WIDE
@click.pass_obj
@_clean_errors
def models_cmd(store: str | None, fmt: str, columns: str | None, wide: bool) -> None:
    """List registered models with their latest version and aliases."""
    frame = api.models(store=store)
    _echo_frame(frame, fmt, "No registered models.", columns=columns, wide=wide, layout=_MODELS)


@main.group("model")
def model_group() -> None:
    """Registered models: show, register, alias, promote, deprecate, delete, history."""


@model_group.command("show")
@click.argument("ref")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.pass_obj
@_clean_errors
def model_show_cmd(store: str | None, ref: str, fmt: str) -> None:
    """Show one version: NAME (latest), NAME/VERSION or NAME@ALIAS, and where it is served
    (each endpoint's URL, state: serving, stopped or gone, and since when it serves it)."""
    record = api.get_model_version(ref, store=store).to_dict()
    record["served_at"] = _served_at(store, record["name"], record["version"])
    if fmt == "json":
        click.echo(json.dumps(record, indent=2, ensure_ascii=False))
        return
    record["created_at"] = _display.when(record["created_at"])
    record["size"] = f"{record['size']:,} bytes"
    for endpoint in record["served_at"]:
        endpoint["since"] = _display.when(endpoint["since"])
    for line in _display.block(record):
        click.echo(line)


def _served_at(store: str | None, name: str, version: int) -> list[dict[str, Any]]:
    """The endpoints whose current (or, stopped, last) version is ``version``: url, state and
    since (UTC seconds: when that endpoint loaded or swapped to it)."""
    endpoints = api.endpoints(name, store=store)
    mine = endpoints[endpoints["version"] == version]
    if mine.empty:
        return []
    events = api.endpoint_events(name, store=store)
    loads = events[events["kind"].isin(["loaded", "swapped"])]
    since = loads.groupby("endpoint_id")["at"].max().to_dict()
    rows = zip(mine["endpoint_id"], mine["url"], mine["state"], strict=True)
    return [{"url": u, "state": s, "since": since[e].timestamp()} for e, u, s in rows]


@model_group.command("versions")
@click.argument("name")
@_FORMAT
@_COLUMNS
@_WIDE
@click.pass_obj
@_clean_errors
def model_versions_cmd(
    store: str | None, name: str, fmt: str, columns: str | None, wide: bool
) -> None:
    """List the versions of model NAME."""
    frame = api.model_versions(name, store=store)
    _echo_frame(frame, fmt, f"No versions of {name}.", columns=columns, wide=wide, layout=_VERSIONS)


@model_group.command("history")
@click.argument("name")
@_FORMAT
@_COLUMNS
@_WIDE
@click.pass_obj
@_clean_errors
def model_history_cmd(
    store: str | None, name: str, fmt: str, columns: str | None, wide: bool
) -> None:
    """Every event of model NAME: registrations, alias moves, promotion decisions, deprecations."""
    frame = api.model_history(name, store=store)
    _echo_frame(frame, fmt, f"No history for {name}.", columns=columns, wide=wide, layout=_HISTORY)


@model_group.command("register")
@click.argument("run_id")
@click.argument("name")
@click.option("--artifact", help="Which model of the run, when it logged several.")
@click.option("--description", help="A description of this version.")
@click.pass_obj
@_clean_errors
def model_register_cmd(
    store: str | None, run_id: str, name: str, artifact: str | None, description: str | None
) -> None:
    """Register the model logged by RUN_ID as a new version of NAME."""
    version = api.register_model(run_id, name, description, artifact=artifact, store=store)
    click.echo(f"{version.name}/{version.version} sha256 {version.sha256[:16]} ({version.format})")


@model_group.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=int, required=False)
@click.option("--remove", is_flag=True, help="Remove the alias instead of setting it.")
@click.pass_obj
@_clean_errors
def model_alias_cmd(
    store: str | None, name: str, alias: str, version: int | None, remove: bool
) -> None:
    """Point NAME@ALIAS at VERSION (or remove the alias)."""
    if remove:
        api.remove_alias(name, alias, store=store)
        click.echo(f"{name}@{alias} removed")
        return
    if version is None:
        raise click.UsageError("VERSION is needed unless --remove is given.")
    api.set_alias(name, alias, version, store=store)
    click.echo(f"{name}@{alias} -> {name}/{version}")


@model_group.command("promote")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False), help="Rules file.")
@click.option("--dry-run", is_flag=True, help="Evaluate the rules; record and move nothing.")
@click.pass_obj
@_clean_errors
def model_promote_cmd(
    store: str | None, name: str, version: int, rules_path: str | None, dry_run: bool
) -> None:
    """Evaluate the promotion rules for NAME/VERSION; move the alias only if all pass.

    Exits with status 1 when a rule fails."""
    decision = api.promote(name, version, rules_path=rules_path, dry_run=dry_run, store=store)
    click.echo(str(decision))
    if not decision.passed:
        sys.exit(1)


@model_group.command("who-served")
@click.argument("name")
@click.argument("alias")
@click.option("--at", "at", required=True, help="A moment: ISO time or epoch seconds.")
@click.pass_obj
@_clean_errors
def model_who_served_cmd(store: str | None, name: str, alias: str, at: str) -> None:
    """Which version NAME@ALIAS pointed at, at a past moment."""
    moment: str | float = float(at) if at.replace(".", "", 1).isdigit() else at
    version = api.who_served(name, alias, moment, store=store)
    click.echo(f"{name}/{version.version}" if version else f"{name}@{alias} pointed nowhere")


@model_group.command("deprecate")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--reason", required=True, help="Why; shown to whoever loads it.")
@click.pass_obj
@_clean_errors
def model_deprecate_cmd(store: str | None, name: str, version: int, reason: str) -> None:
    """Deprecate NAME/VERSION: it stays loadable, with a warning."""
    api.deprecate_model_version(name, version, reason, store=store)
    click.echo(f"{name}/{version} deprecated: {reason}")


@model_group.command("delete")
@click.argument("name")
@click.argument("version", type=int)
@click.option(
    "--window-days",
    type=float,
    default=30,
    show_default=True,
    help="Refuse while someone loaded it within this many days.",
)
@click.option("--reason", help="Recorded in the history.")
@click.pass_obj
@_clean_errors
def model_delete_cmd(
    store: str | None, name: str, version: int, window_days: float, reason: str | None
) -> None:
    """Delete NAME/VERSION (refused while an alias points at it or it is still in use)."""
    api.delete_model_version(name, version, window=window_days * 86400, reason=reason, store=store)
    click.echo(f"{name}/{version} deleted")


@model_group.command("consumers")
@click.argument("name")
@click.argument("version", type=int)
@_FORMAT
@_WIDE
@click.pass_obj
@_clean_errors
def model_consumers_cmd(store: str | None, name: str, version: int, fmt: str, wide: bool) -> None:
    """Who loaded NAME/VERSION, most recent first."""
    frame = api.consumers(name, version, store=store)
    _echo_frame(frame, fmt, "Nobody loaded it.", wide=wide, layout=_Layout(noun="consumers"))


@main.command("monitor")
@click.option("--once", is_flag=True, help="Evaluate the alerts once (the default).")
@click.option("--every", metavar="DURATION", help="Evaluate every DURATION ('5m') until Ctrl-C.")
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(dir_okay=False),
    help="The rules file (default: nbmlops.toml from the store's folder upwards).",
)
@click.option("--check", is_flag=True, help="Only check the rules file's tables; evaluate none.")
@click.pass_obj
def monitor_cmd(
    store: str | None, once: bool, every: str | None, rules_path: str | None, check: bool
) -> None:
    """Evaluate the [alerts.<name>] tables of nbmlops.toml: fire, notify, retrain.

    One line per alert: FIRED, HELD (fired within its cooldown), QUIET (a condition did not
    hold, the first such is shown) or ERROR. Exit status, for cron: 0 nothing fired, 1 an alert
    fired, 2 an error (the rules file, the store, an alert or its retrain), 3 both. With
    --every the rounds go on until Ctrl-C, which exits with 0."""
    # The monitoring modules import numpy: imported here so that other commands start faster.
    from nbmlops.api import _alerts
    from nbmlops.monitoring.monitor import error_text

    if once and every is not None:
        raise click.UsageError("Give --once or --every, not both.")
    width = min(shutil.get_terminal_size((80, 24)).columns, 200)
    try:
        if check:
            checked = _alerts.check_alerts(rules_path, store=store)
            click.echo(
                f"{checked.path}: {len(checked.rules.models)} [rules.*] and "
                f"{len(checked.alerts)} [alerts.*] tables, all well-formed"
            )
            for warning in checked.warnings():
                click.echo(f"Warning: {warning}", err=True)
            return
        if every is None:
            result = _alerts.monitor(rules=rules_path, store=store)
            click.echo("\n".join(result.lines(width)))
            sys.exit(result.exit_code)
        _alerts.monitor(
            every=every,
            rules=rules_path,
            store=store,
            on_round=lambda r: click.echo("\n".join(r.lines(width))),
        )
    except Exception as exc:  # exit 2 says "an error" to cron; a traceback's 1 says "fired"
        click.echo(f"Error: {error_text(exc)}", err=True)
        sys.exit(2)


@main.group("data")
def data_group() -> None:
    """Named datasets (issue #16): list, show, diff, checkout, add."""


_SIZES = {"n_rows": "rows", "n_bytes": "bytes"}  # of a table; n_rows counts files of files
_DATASETS = _Layout(
    first=("name", "kind", "versions", "n_rows", "n_bytes", "stored_bytes", "updated_at"),
    hidden=("key", "latest", "uri"),
    headers={**_SIZES, "stored_bytes": "on disk", "updated_at": "updated"},
    noun="datasets",
)
_DATASET_VERSIONS = _Layout(
    first=("version", "mode", "n_rows", "n_bytes", "added_bytes", "actor", "created_at", "run_id"),
    hidden=("fingerprint", "delta_version", "host"),
    headers={
        **_SIZES,
        "added_bytes": "added",
        "actor": "who",
        "created_at": "when",
        "run_id": "run",
    },
    noun="versions",
    once=("actor",),
    short={"run_id": 8},
)
_DATASET_USAGE = _Layout(
    first=("run_id", "how", "at", "models"),
    headers={"run_id": "run", "variable": "as"},
    noun="runs",
    short={"run_id": 8},
)


@data_group.command("list")
@_FORMAT
@_COLUMNS
@_WIDE
@click.pass_obj
@_clean_errors
def data_list_cmd(store: str | None, fmt: str, columns: str | None, wide: bool) -> None:
    """List named datasets: kind, versions, rows and bytes of the latest, bytes on disk for all
    versions, last update."""
    frame = api.datasets(store=store)
    empty = "No datasets; save one with nbmlops.save_dataset(df, NAME) or `nbmlops data add`."
    _echo_frame(frame, fmt, empty, columns=columns, wide=wide, layout=_DATASETS)


@data_group.command("show")
@click.argument("ref")
@_FORMAT
@_WIDE
@click.pass_obj
@_clean_errors
def data_show_cmd(store: str | None, ref: str, fmt: str, wide: bool) -> None:
    """NAME: its versions, oldest first (rows, bytes, what each added on disk, mode, who, when,
    the run that saved it). NAME@V (or NAME@latest, NAME@2026-11-30T12:00): that version and
    the runs and models that used it."""
    import pandas as pd

    if "@" not in ref:
        versions = api.dataset_versions(ref, store=store)
        frame = pd.DataFrame([vars(v) for v in versions]).drop(columns=["store", "schema"])
        frame["mode"] = [
            v.mode if v.restored_from is None else f"{v.mode} of @{v.restored_from}"
            for v in versions
        ]
        frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s", utc=True)
        frame = frame.drop(columns=["name", "kind", "key", "location", "restored_from"])
        _echo_frame(frame, fmt, "", wide=wide, layout=_DATASET_VERSIONS)
        return
    version = api.get_dataset(ref, store=store)
    usage = api.dataset_usage(version.ref, store=store)
    if fmt == "json":
        record = {k: v for k, v in vars(version).items() if k != "store"}
        record["used_by"] = json.loads(usage.to_json(orient="records", date_format="iso"))
        click.echo(json.dumps(record, indent=2, ensure_ascii=False, default=str))
        return
    for line in _display.block(_version_facts(version)):
        click.echo(line)
    click.echo("\nused by")
    usage["models"] = usage["models"].map(", ".join)
    _echo_frame(usage, fmt, "  no run used it yet", wide=wide, layout=_DATASET_USAGE)


# A removed or added row's values are one JSON dict in old or new: cut to fit 80 columns.
_DIFF = _Layout(noun="changes", short={"old": 20, "new": 20})


@data_group.command("diff")
@click.argument("old")
@click.argument("new")
@click.option(
    "--limit",
    type=int,
    default=10_000,
    show_default=True,
    help="Changed rows to list (the counts cover all of them).",
)
@_FORMAT
@_WIDE
@click.pass_obj
@_clean_errors
def data_diff_cmd(store: str | None, old: str, new: str, limit: int, fmt: str, wide: bool) -> None:
    """What changed from version OLD to NEW (customers@2 customers@3): for a table, rows added,
    removed and changed by its key, with the changed columns' old and new values, and schema
    changes; for files, the files added, removed and changed. The summary comes first, then
    one line per change (--format csv or json: the changes only)."""
    diff = api.dataset_diff(old, new, limit=limit, store=store)
    if fmt == "table":
        for line in textwrap.wrap(str(diff), shutil.get_terminal_size((100, 24)).columns):
            click.echo(line)
        click.echo("")
    _echo_frame(diff.to_frame(), fmt, "No changes.", wide=wide, layout=_DIFF)


@data_group.command("checkout")
@click.argument("ref")
@click.option(
    "--to",
    "to",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The folder to write the files into (created if missing).",
)
@click.option("--force", is_flag=True, help="Overwrite files there that have other content.")
@click.pass_obj
@_clean_errors
def data_checkout_cmd(store: str | None, ref: str, to: Path, force: bool) -> None:
    """Write the files of version REF (raw@3, raw@latest) into a folder, byte-identical to what
    was saved; files already there with other content are refused unless --force."""
    version = api.get_dataset(ref, store=store)
    target = api.checkout_dataset(version.ref, to, force=force, store=store)
    click.echo(f"{version.ref}: {version.n_rows:,} files, {version.n_bytes:,} bytes in {target}")


@data_group.command("add")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.argument("name")
@click.option(
    "--table",
    is_flag=True,
    help="Read PATH (.parquet or .csv) into a table dataset, versioned by rows, instead of "
    "storing its files.",
)
@click.option("--key", "key", multiple=True, help="With --table: the key column (repeatable).")
@click.option("--dvc", is_flag=True, help="Also write a DVC pointer PATH.dvc next to PATH.")
@click.pass_obj
@_clean_errors
def data_add_cmd(
    store: str | None, path: Path, name: str, table: bool, key: tuple[str, ...], dvc: bool
) -> None:
    """Save the file or folder PATH as the next version of dataset NAME: its files stored once
    by content (unchanged files are not stored again); with --table, a .parquet or .csv file
    read as the next version of a table dataset."""
    if table and dvc:
        raise click.UsageError("--dvc is for files; a --table dataset has no DVC pointer.")
    if key and not table:
        raise click.UsageError("--key is for --table datasets: files are matched by path.")
    if table:
        version = api.save_dataset(_read_table(path), name, key=list(key) or None, store=store)
    else:
        version = api.save_dataset(path, name, dvc=dvc, store=store)
    click.echo(f"{version} ({version.added_bytes:,} bytes added on disk)")
    if dvc:
        click.echo(f"wrote {path.absolute()}.dvc")


def _read_table(path: Path) -> Any:
    """The DataFrame of a .parquet or .csv file, for ``data add --table``."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv") or not path.is_file():
        raise NbmlopsError(
            f"{path} is not a .parquet or .csv file; --table reads one of those (without "
            "--table, a file or folder is saved as files)."
        )
    try:
        return pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
    except (ValueError, OSError) as exc:  # pandas' ParserError, pyarrow's ArrowInvalid
        raise NbmlopsError(f"Could not read {path} as a table: {exc}") from exc


def _version_facts(version: Any) -> dict[str, Any]:
    """What ``data show NAME@V`` says about a version, in the order people ask."""
    what = "rows" if version.kind == "table" else "files"
    facts = {
        "dataset": f"{version.ref} ({version.kind})",
        what: f"{version.n_rows:,}" if version.n_rows is not None else None,
        "bytes": f"{version.n_bytes:,} ({version.added_bytes:,} added on disk)",
        "mode": version.mode
        + (f" of @{version.restored_from}" if version.restored_from is not None else ""),
        "key": version.key,
        "columns": version.columns,
        "saved": f"{_display.when(version.created_at)} by {version.actor} on {version.host}",
        "run": version.run_id,
        "fingerprint": version.fingerprint,
        "location": version.location,
        "delta version": version.delta_version,
    }
    return {k: v for k, v in facts.items() if v not in (None, [])}


def _shape(dataset: dict[str, Any]) -> str:
    if dataset.get("n_rows") is None:
        return str(dataset["kind"])
    return f"{dataset['kind']} {dataset['n_rows']}x{dataset.get('n_columns') or 1}"


def _section(title: str, values: dict[str, Any]) -> None:
    if not values:
        return
    click.echo(f"\n{title}")
    width = max(len(k) for k in values)
    for key, value in values.items():
        click.echo(f"  {key:<{width}}  {_display.value(value)}")


def _flat_env(env: dict[str, Any]) -> dict[str, Any]:
    flat = {k: env.get(k) for k in ("python", "platform", "git_commit", "git_branch", "git_dirty")}
    flat.update({f"package {k}": v for k, v in env.get("packages", {}).items()})
    return flat


def _diff_section(title: str, a: dict[str, Any], b: dict[str, Any], show_all: bool) -> None:
    keys = sorted(set(a) | set(b))
    changed = [k for k in keys if _shown(a.get(k)) != _shown(b.get(k))]
    click.echo(f"\n{title}" + ("" if changed else ": same"))
    for key in keys:
        va, vb = _shown(a.get(key)), _shown(b.get(key))
        if va != vb:
            click.echo(f"  {key}: {va} -> {vb}")
        elif show_all:
            click.echo(f"  {key}: {va}")


def _shown(value: Any) -> str:
    return "(none)" if value is None else _display.value(value)


@main.group("features")
def features_group() -> None:
    """Feature views (issue #17): list, show, materialize."""


_FEATURE_VIEWS = _Layout(
    first=("name", "version", "entity", "ttl", "online", "stale", "models"),
    hidden=("keys", "owner", "updated_at"),
    headers={"version": "latest", "updated_at": "updated"},
    noun="views",
)
_FEATURE_VERSIONS = _Layout(
    first=("version", "defined", "online", "changed"),
    hidden=("owner",),
    wrap="changed",
    noun="versions",
    once=("owner",),
)


@features_group.command("list")
@_FORMAT
@_COLUMNS
@_WIDE
@click.pass_obj
@_clean_errors
def features_list_cmd(store: str | None, fmt: str, columns: str | None, wide: bool) -> None:
    """List feature views: the latest version, entity, TTL, the age of the online values of
    the version served (stale: older than its TTL, every value expired), the models trained
    from them, features, source and owner."""
    from nbmlops.feature_store.status import age_text, view_status

    frame = api.features(store=store)
    opened = open_store(store, create=False)
    served = [view_status(opened, name).served for name in frame["name"]]
    frame["ttl"] = [_display.duration(t) if t else "none" for t in frame.pop("ttl_seconds")]
    frame["online"] = ["never" if f is None else age_text(f.age_seconds) for f in served]
    frame["stale"] = [f is not None and f.stale for f in served]
    frame["source"] = frame.pop("source_kind")
    for column in ("keys", "features", "models"):
        frame[column] = frame[column].map(", ".join)
    empty = "No feature views; define one with @nbmlops.feature_view(...)."
    _echo_frame(frame, fmt, empty, columns=columns, wide=wide, layout=_FEATURE_VIEWS)


@features_group.command("show")
@click.argument("ref")
@click.option(
    "--against",
    type=int,
    help="The version to diff the definition against (default: the one before).",
)
@click.pass_obj
@_clean_errors
def features_show_cmd(store: str | None, ref: str, against: int | None) -> None:
    """Show view VIEW (its latest version) or VIEW@N: the definition and its code, every
    version with what it changed, the definition diff from the version before (or
    --against), the freshness of the online values, and the models trained from the view."""
    import pandas as pd

    from nbmlops.feature_store.changes import code_lines, definition_diff
    from nbmlops.feature_store.status import view_status

    name, version = _view_ref(ref)
    opened = open_store(store, create=False)
    status = view_status(opened, name, version)
    view = status.view
    for line in _display.block(_view_facts(view, len(status.versions))):
        click.echo(line)
    code = code_lines(view, shutil.get_terminal_size((80, 24)).columns - 2)
    if code:
        click.echo("\ncode (as recorded: no comments, docstring or decorator)")
        click.echo("\n".join(f"  {line}" for line in code))
    click.echo("\nversions")
    frame = pd.DataFrame(
        {
            "version": [v.version for v in status.versions],
            "defined": [pd.Timestamp(v.created_at, unit="s", tz="UTC") for v in status.versions],
            "owner": [v.owner for v in status.versions],
            "online": ["yes" if f.materialized else "" for f in status.freshness],
            "changed": list(status.changes),
        }
    )
    _echo_frame(frame, "table", "", layout=_FEATURE_VERSIONS)
    base = (view.version - 1) if against is None else against
    if base >= 1 and base != view.version:
        old = next((v for v in status.versions if v.version == base), None)
        if old is None:
            known = ", ".join(str(v.version) for v in status.versions)
            raise NbmlopsError(f"--against {base}: {name} has no version {base} (has {known}).")
        click.echo(f"\ndefinition diff {old.ref} -> {view.ref}")
        width = shutil.get_terminal_size((80, 24)).columns - 2
        click.echo("\n".join(f"  {line}" for line in definition_diff(old, view, width)))
    served = status.served
    click.echo("\nfreshness (the version online reads use)")
    if served is None:
        click.echo(f"  never materialised: nbmlops features materialize {name}")
    else:
        click.echo("\n".join(_display.block(served.facts(), indent=2)))
        if served.view != status.versions[-1].ref:
            click.echo(f"  ({status.versions[-1].ref} is not materialised yet)")
    click.echo("\nused by models")
    click.echo("\n".join(f"  {m}" for m in status.model_refs()) or "  none yet")


@features_group.command("materialize")
@click.argument("ref")
@click.option(
    "--end",
    metavar="ISO",
    help="Materialise event times up to this moment (ISO date or time; no zone: UTC). "
    "Default: now.",
)
@click.pass_obj
@_clean_errors
def features_materialize_cmd(store: str | None, ref: str, end: str | None) -> None:
    """Copy the latest value per entity of view VIEW (or VIEW@N) into the online store,
    from the end of its last materialisation up to --end; say how fresh it is then."""
    import datetime as dt

    from nbmlops.feature_store.status import freshness

    until = None
    if end is not None:
        try:
            until = dt.datetime.fromisoformat(end)
        except ValueError:
            raise click.BadParameter(
                f"{end!r} is not an ISO date or time, e.g. 2026-05-01 or 2026-05-01T12:00",
                param_hint="--end",
            ) from None
    _view_ref(ref)  # refuses VIEW@x (get_feature_view reads it as the latest)
    report = api.materialize(ref, end=until, store=store)
    width = shutil.get_terminal_size((80, 24)).columns
    click.echo("\n".join(textwrap.wrap(str(report), width)))
    name, version = report.view.split("@")
    opened = open_store(store, create=False)
    fresh = freshness(opened, api.get_feature_view(name, int(version), store=opened))
    click.echo("\n".join(textwrap.wrap(f"{report.view} values: {fresh.summary()}", width)))


def _view_ref(ref: str) -> tuple[str, int | None]:
    """VIEW or VIEW@N."""
    if "@" not in ref:
        return ref, None
    name, number = ref.split("@", 1)
    if not number.isdigit():
        raise NbmlopsError(f"{ref!r}: after '@' put a version number, e.g. {name}@2.")
    return name, int(number)


def _view_facts(view: Any, versions: int) -> dict[str, Any]:
    """What ``features show`` says first about a view version."""
    facts = {
        "view": f"{view.ref} (of {versions} version{'s' if versions > 1 else ''})",
        "entity": f"{view.entity} (keys: {', '.join(view.keys)})",
        "timestamp": view.timestamp,
        "created": view.created,
        "ttl": _display.duration(view.ttl_seconds) if view.ttl_seconds else "none",
        "source": view.source_kind
        + (f" {view.source}" if view.source and view.source_kind != "function" else ""),
        "features": dict(view.features),
        "description": view.description,
        "defined": f"{_display.when(view.created_at)} by {view.owner}",
        "fingerprint": view.fingerprint,
    }
    return {k: v for k, v in facts.items() if v not in (None, "", [])}


@main.command("push")
@click.argument("uri")
@click.option("--experiment", "-e", help="Only runs of this experiment (same name there).")
@click.option("--filter", "-f", "filter_", help='Only these runs, e.g. "metrics.auc > 0.9".')
@click.pass_obj
@_clean_errors
def push_cmd(store: str | None, uri: str, experiment: str | None, filter_: str | None) -> None:
    """Push runs and registered models to an MLflow tracking server (URI: mlflow://HOST:PORT or
    http://HOST:PORT; token from MLFLOW_TRACKING_TOKEN). Pushing again sends only what is new."""
    with click.progressbar(length=0, label="Pushing runs", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(1)

        report = api.push_to_mlflow(
            uri, experiment=experiment, filter=filter_, progress=progress, store=store
        )
    click.echo(str(report))


@main.command("rerun")
@click.argument("run")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=1e-6,
    show_default=True,
    help="Metrics match when |a - b| <= tolerance * max(1, |a|).",
)
@click.option("--timeout", type=int, default=600, show_default=True, help="Seconds per cell.")
@click.pass_obj
@_clean_errors
def rerun_cmd(store: str | None, run: str, tolerance: float, timeout: int) -> None:
    """Re-run RUN (a run id, or a model version such as diabetes@champion: its training run) in
    a fresh kernel from what was recorded (the cells its kernel executed
    before it, then its cell) and compare its inputs and metrics. Exit status 1 unless it
    reproduced, so CI can require it."""
    result = api.rerun(run, tolerance, timeout=timeout, store=store)
    click.echo(str(result))
    for title, lines in (
        ("differences", result.differences),
        ("nondeterminism", result.nondeterminism),
    ):
        if lines:
            click.echo(f"{title}:")
            for line in lines:
                click.echo(f"  - {line}")
    if result.outcome != "reproduced":
        sys.exit(1)


main.add_command(serve_command)
main.add_command(pull_command)
main.add_command(review_group)

if __name__ == "__main__":
    sys.exit(main())
