"""The ``nbmlops`` command: one click group over the Python API.

Errors of nbmlops become one clean line on stderr and exit code 1 here, at the edge, and
nowhere else.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from nbmlops import api
from nbmlops.errors import NbmlopsError
from nbmlops.headless import execute_notebook

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


def _echo_frame(frame: Any, fmt: str, empty: str) -> None:
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(frame.to_json(orient="records", date_format="iso", indent=2))
    elif frame.empty:
        click.echo(empty)
    else:
        shown = frame.copy()
        for column in shown.columns:
            if str(shown[column].dtype).startswith("datetime64"):
                shown[column] = shown[column].dt.strftime("%Y-%m-%d %H:%M:%S")
        # Nested payloads belong in --format json; a table shows their summary.
        shown = shown.drop(columns=[c for c in ("payload",) if c in shown.columns])
        shown = shown.astype(object).where(shown.notna(), "")  # na_rep skips nullable ints
        width = shutil.get_terminal_size((120, 24)).columns
        click.echo(shown.to_string(index=False, line_width=width))


_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)


@main.command("runs")
@click.option("--filter", "-f", "filter_", help='e.g. "params.lr < 0.1 AND metrics.auc > 0.9"')
@click.option("--experiment", "-e", help="Only runs of this experiment.")
@_FORMAT
@click.option("--limit", "-n", type=int, default=50, show_default=True, help="Rows (table only).")
@click.pass_obj
@_clean_errors
def runs_cmd(
    store: str | None, filter_: str | None, experiment: str | None, fmt: str, limit: int
) -> None:
    """List runs, newest first, with their params, metrics and tags."""
    frame = api.runs(filter_, experiment, store=store)
    total = len(frame)
    if fmt == "table":
        frame = frame.head(limit).drop(columns=["end_time", "user", "notebook", "cell_id"])
        frame["duration_s"] = frame["duration_s"].round(3)
    _echo_frame(frame, fmt, f"No runs in {api.get_store(store).db_path}.")
    if fmt == "table" and total > limit:
        click.echo(f"... {total - limit} more runs (use --limit or --format csv)")


@main.command("show")
@click.argument("run_id", required=False)
@click.pass_obj
@_clean_errors
def show_cmd(store: str | None, run_id: str | None) -> None:
    """Show one run (default: the newest): attributes, params, metrics, tags, datasets,
    artifacts."""
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
    if info["duration_s"] is not None:
        click.echo(f"{'duration':<10} {info['duration_s']:.3f} s")
    if info["error_type"]:
        click.echo(f"{'error':<10} {info['error_type']}: {info['error_message']}")
    _section("params", {k: v for k, v in run.params.items()})
    _section("metrics", {k: _num(v) for k, v in run.metrics.items()})
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
@click.pass_obj
@_clean_errors
def sql_cmd(store: str | None, query: str, fmt: str) -> None:
    """Run one read-only SQL query over the store (tables: docs/schema.md)."""
    _echo_frame(api.sql(query, store=store), fmt, "No rows.")


@main.command("execute")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write the executed notebook here."
)
@click.option("--inplace", is_flag=True, help="Write the outputs back into NOTEBOOK.")
@click.option("--timeout", type=int, default=600, show_default=True, help="Seconds per cell.")
@click.option("--allow-errors", is_flag=True, help="Keep going after a cell raises.")
@click.pass_obj
@_clean_errors
def execute_cmd(
    store: str | None,
    notebook: str,
    output: str | None,
    inplace: bool,
    timeout: int,
    allow_errors: bool,
) -> None:
    """Run a notebook headless in a fresh kernel; its %%track cells are recorded."""
    # nbclient and the kernel machinery take a second to import: only this command needs them.
    from nbclient.exceptions import CellExecutionError

    target = notebook if inplace else output
    try:
        executed = execute_notebook(
            notebook, target, timeout=timeout, allow_errors=allow_errors, store=store
        )
    except CellExecutionError as exc:
        raise click.ClickException(f"{notebook}: a cell failed.\n{exc}") from exc
    cells = sum(c.cell_type == "code" for c in executed.cells)
    click.echo(f"Executed {cells} code cells of {notebook}" + (f" into {target}" if target else ""))


@main.command("models")
@_FORMAT
@click.pass_obj
@_clean_errors
def models_cmd(store: str | None, fmt: str) -> None:
    """List registered models with their latest version and aliases."""
    _echo_frame(api.models(store=store), fmt, "No registered models.")


@main.group("model")
def model_group() -> None:
    """Registered models: show, register, alias, promote, deprecate, delete, history."""


@model_group.command("show")
@click.argument("ref")
@click.pass_obj
@_clean_errors
def model_show_cmd(store: str | None, ref: str) -> None:
    """Show one version: NAME (latest), NAME/VERSION or NAME@ALIAS."""
    record = api.get_model_version(ref, store=store).to_dict()
    width = max(len(k) for k in record)
    for key, value in record.items():
        shown = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
        click.echo(f"{key:<{width}}  {shown}")


@model_group.command("versions")
@click.argument("name")
@_FORMAT
@click.pass_obj
@_clean_errors
def model_versions_cmd(store: str | None, name: str, fmt: str) -> None:
    """List the versions of model NAME."""
    _echo_frame(api.model_versions(name, store=store), fmt, f"No versions of {name}.")


@model_group.command("history")
@click.argument("name")
@_FORMAT
@click.pass_obj
@_clean_errors
def model_history_cmd(store: str | None, name: str, fmt: str) -> None:
    """Every event of model NAME: registrations, alias moves, promotion decisions, deprecations."""
    _echo_frame(api.model_history(name, store=store), fmt, f"No history for {name}.")


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
@click.pass_obj
@_clean_errors
def model_consumers_cmd(store: str | None, name: str, version: int, fmt: str) -> None:
    """Who loaded NAME/VERSION, most recent first."""
    _echo_frame(api.consumers(name, version, store=store), fmt, "Nobody loaded it.")


def _num(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.6g}"


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
        click.echo(f"  {key:<{width}}  {value}")


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
    if value is None:
        return "(none)"
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
