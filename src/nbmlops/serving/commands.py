"""The ``nbmlops serve`` and ``nbmlops pull`` commands (attached to the ``nbmlops`` group by
:mod:`nbmlops.cli`; they read the ``--store`` option from the group's context object)."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from nbmlops._display import parse_duration
from nbmlops.client import ModelClient, ModelClientError
from nbmlops.errors import NbmlopsError
from nbmlops.serving import server
from nbmlops.serving.features import CONTRACT_POLICIES
from nbmlops.serving.service import Settings
from nbmlops.serving.signature import EXTRA_COLUMN_POLICIES
from nbmlops.store import open_store

F = TypeVar("F", bound=Callable[..., Any])


def _clean_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (NbmlopsError, ModelClientError, OSError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


@click.command("serve")
@click.argument("ref")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=5000, show_default=True, help="Port (0: a free one).")
@click.option(
    "--token",
    envvar="NBMLOPS_SERVE_TOKEN",
    help="Require 'Authorization: Bearer TOKEN' on every route but /ping "
    "(or set NBMLOPS_SERVE_TOKEN).",
)
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.option(
    "--extra-columns",
    type=click.Choice(EXTRA_COLUMN_POLICIES),
    default="log",
    show_default=True,
    help="Columns not in the signature: refuse the request, drop them, or drop and log them.",
)
@click.option(
    "--contract",
    type=click.Choice(CONTRACT_POLICIES),
    default="log",
    show_default=True,
    help="A model trained from a feature store training set: a request breaking the data "
    "contract of its training set is refused (400), served and logged, or not checked.",
)
@click.option(
    "--poll-interval", default=5.0, show_default=True, help="Seconds between alias checks."
)
@click.option("--no-log", is_flag=True, help="Do not log predictions to the store.")
@click.option("--log-sample", default=1.0, show_default=True, help="Fraction of requests logged.")
@click.option(
    "--max-body-mb", default=20.0, show_default=True, help="Largest request body (413 above)."
)
@click.option(
    "--profile-window",
    default="1m",
    show_default=True,
    help="Traffic per drift profile of the served inputs (nbmlops monitor reads them).",
)
@click.pass_obj
@_clean_errors
def serve(
    store: str | None,
    ref: str,
    host: str,
    port: int,
    token: str | None,
    workers: int,
    extra_columns: str,
    contract: str,
    poll_interval: float,
    no_log: bool,
    log_sample: float,
    max_body_mb: float,
    profile_window: str,
) -> None:
    """Serve REF (NAME@ALIAS follows the alias, NAME/VERSION pins one) over MLflow's scoring
    protocol: POST /invocations, /ping, /health, /version, the V2 subset, and downloads at
    /models/NAME@ALIAS/artifact. Every request is logged to the store. Ctrl-C stops it."""
    settings = Settings(
        extra_columns=extra_columns,
        contract=contract,
        log_predictions=not no_log,
        log_sample=log_sample,
        poll_interval=poll_interval,
        max_body_bytes=int(max_body_mb * 2**20),
        profile_window=parse_duration(profile_window, what="--profile-window"),
        token=token,
    )
    opened = open_store(store)
    sock = server.bind(host, port)
    url = server.url_of(sock, host)
    click.echo(f"Serving {ref} at {url} (store {opened.home}); Ctrl-C to stop.", err=True)
    if token is None and host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(
            f"Warning: {host} is reachable from other machines and no --token is set: anyone "
            "who can reach it can score and download the model.",
            err=True,
        )
    if not server.run(opened, ref, sock, url, settings=settings, workers=workers):
        raise click.ClickException(f"The server for {ref} did not start (see the log above).")


@click.command("pull")
@click.argument("ref")
@click.option("--to", "to", type=click.Path(file_okay=False), help="Folder (pulling a model).")
@click.option(
    "--url",
    envvar="NBMLOPS_SERVER_URL",
    help="The model server to pull from (or set NBMLOPS_SERVER_URL).",
)
@click.option("--token", envvar="NBMLOPS_SERVE_TOKEN", help="The server's bearer token.")
@click.option("--device-id", help="Recorded as the consumer of the version on the server.")
@click.option("--watch", type=float, help="Keep checking every SECONDS for a new version.")
@click.option("--experiment", help="From an MLflow server: only the runs of this experiment.")
@click.pass_obj
@_clean_errors
def pull(
    store: str | None,
    ref: str,
    to: str | None,
    url: str | None,
    token: str | None,
    device_id: str | None,
    watch: float | None,
    experiment: str | None,
) -> None:
    """Download REF (NAME@ALIAS or NAME/VERSION) from a model server into --to, verified
    against its recorded sha256; with --watch, keep it up to date until interrupted. With REF an
    MLflow tracking server (mlflow://HOST:PORT, http://HOST:PORT) and no --to: import its runs
    into the store (token from MLFLOW_TRACKING_TOKEN); pulling again imports only what is new.
    Exits 1 when a model version was refused (its file changed on the server), so CI notices."""
    if ref.startswith(("mlflow://", "http://", "https://")) and to is None:
        from nbmlops.sync.pull import pull as pull_runs  # httpx: only for a tracking server

        pulled = pull_runs(open_store(store), ref, experiment=experiment)
        click.echo(str(pulled))
        if pulled.refused:
            raise SystemExit(1)
        return
    if to is None or url is None:
        raise click.UsageError(
            "Pulling a model needs --to FOLDER and the server's --url (or NBMLOPS_SERVER_URL); "
            "to pull runs, give an MLflow server's mlflow://HOST:PORT as REF."
        )
    client = ModelClient(url, ref, Path(to), device_id=device_id, token=token)

    def report(path: Path) -> None:
        click.echo(f"{ref}: version {client.version} at {path}")

    if watch is None:
        report(client.get())
        return
    with contextlib.suppress(KeyboardInterrupt):
        client.watch(watch, stop=threading.Event(), on_update=report)
