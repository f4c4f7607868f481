"""The ``nbmlops review`` command group (attached to the ``nbmlops`` group by
:mod:`nbmlops.cli`; the ``--store`` option is read from the group's context object)."""

from __future__ import annotations

import click

from nbmlops import api
from nbmlops.errors import NbmlopsError
from nbmlops.review.changes import review_changes
from nbmlops.review.model import review_model
from nbmlops.store import open_store


@click.group("review")
def review() -> None:
    """Review notebooks (a model version against the champion, notebook changes in git),
    rule changes with their backtest, approvals."""


@review.command("model")
@click.argument("name_version")
@click.option(
    "--against",
    default="champion",
    show_default=True,
    help="An alias (the version it points at; for the champion itself, the one it replaced), "
    "a version number or NAME/VERSION.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False),
    help="Folder for review.ipynb and review.html (default: <store>/reviews/...).",
)
@click.pass_obj
def model(store: str | None, name_version: str, against: str, output: str | None) -> None:
    """Generate, execute and record the review notebook of NAME/VERSION (dry-run rules)."""
    try:
        done = review_model(name_version, against, output_dir=output, store=store)
    except NbmlopsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(done))


@review.command("changes")
@click.argument("rev_range", required=False)
@click.option("--repo", default=".", show_default=True, help="The git repository.")
@click.option("--markdown", is_flag=True, help="Print a pull-request comment (Markdown).")
@click.option(
    "--output",
    type=click.Path(file_okay=False),
    help="Folder for review.ipynb and review.html (default: <store>/reviews/...).",
)
@click.pass_obj
def changes(
    store: str | None, rev_range: str | None, repo: str, markdown: bool, output: str | None
) -> None:
    """Review the notebooks changed in REV_RANGE (default: the working tree against HEAD;
    A..B, A...B): each changed cell (code, outputs only, metadata only) and how the metrics of
    tracked cells moved between the runs of their old and new code."""
    try:
        done = review_changes(rev_range, repo=repo, store=store, output_dir=output)
    except NbmlopsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(done.to_markdown() if markdown else str(done))


@review.command("rules")
@click.argument("rev_range", required=False)
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False), help="The rules file.")
@click.option("--markdown", is_flag=True, help="Print a pull-request comment (Markdown).")
@click.pass_obj
@click.pass_context
def rules(
    ctx: click.Context,
    store: str | None,
    rev_range: str | None,
    rules_path: str | None,
    markdown: bool,
) -> None:
    """Review a change of nbmlops.toml over REV_RANGE (default: the working tree against HEAD;
    A..B): the diff and every past promotion decision and alert firing re-evaluated under the
    new rules. Exit status 1 when a past decision would have gone the other way."""
    # The alert backtest loads pandas: kept out of every other command's start-up.
    from nbmlops.monitoring.alert_backtest import review_rules

    try:
        done = review_rules(open_store(store, create=False), rev_range, path=rules_path)
    except NbmlopsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(done.to_markdown() if markdown else str(done))
    ctx.exit(done.exit_code)


@review.command("approve")
@click.argument("name_version")
@click.option(
    "--by",
    required=True,
    help="Who approves (promotion rules may refuse the version's own creator).",
)
@click.option("--comment", help="Why, or on what condition.")
@click.option("--review", "review_id", type=int, help="The review id the approval is based on.")
@click.pass_obj
def approve(
    store: str | None, name_version: str, by: str, comment: str | None, review_id: int | None
) -> None:
    """Record that --by approves NAME/VERSION (promotion rules may require approvals)."""
    try:
        done = api.approve_model(
            name_version, by=by, comment=comment, review_id=review_id, store=store
        )
    except NbmlopsError as exc:
        raise click.ClickException(str(exc)) from exc
    own = " (by its own creator: rules may refuse it)" if done.self_approval else ""
    click.echo(f"Approval {done.approval_id}: {done.ref} approved by {done.by}{own}")
