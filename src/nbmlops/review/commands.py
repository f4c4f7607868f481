"""The ``nbmlops review`` command group (attached to the ``nbmlops`` group by
:mod:`nbmlops.cli`; the ``--store`` option is read from the group's context object)."""

from __future__ import annotations

import click

from nbmlops.errors import NbmlopsError
from nbmlops.review.changes import review_changes
from nbmlops.review.model import review_model


@click.group("review")
def review() -> None:
    """Review notebooks: a model version against the champion, notebook changes in git."""


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
