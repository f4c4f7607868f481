"""Team use through an MLflow tracking server (issue #19): push what this store holds.

nbm.push_to_mlflow("mlflow://127.0.0.1:5000")   # runs and registered models, only what is new
nbm.sync_status()                              # the background push NBMLOPS_MLFLOW_URI turns on

The sync package is imported inside the functions: it loads httpx (150 ms), and
:func:`sync_in_background` is called by every ``start_run``, which must stay quick where no
server is configured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nbmlops.store import StoreLike, store_at

if TYPE_CHECKING:
    from nbmlops.sync.background import SyncStatus
    from nbmlops.sync.pull import PullReport
    from nbmlops.sync.push import PushReport


def push_to_mlflow(
    uri: str,
    *,
    experiment: str | None = None,
    filter: str | None = None,
    token: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    store: StoreLike = None,
) -> PushReport:
    """Push runs (all, or those of ``experiment`` / matching ``filter``) and the registered
    models to the MLflow tracking server at ``uri`` (``mlflow://HOST:PORT``, ``http://...``;
    ``token`` or MLFLOW_TRACKING_TOKEN). Params, every metric step, tags, the cell source and
    notebook, datasets (our fingerprint as digest), models, versions, aliases and the decision
    history; what MLflow cannot hold losslessly is kept as an artifact and listed in the
    report. Pushing again sends only what is new; an interrupted push resumes."""
    from nbmlops.sync.push import push  # httpx: see the module docstring

    return push(store, uri, experiment=experiment, filter=filter, token=token, progress=progress)


def pull_from_mlflow(
    uri: str,
    *,
    experiment: str | None = None,
    token: str | None = None,
    store: StoreLike = None,
) -> PullReport:
    """Import the runs of the MLflow tracking server at ``uri`` (all experiments, or
    ``experiment``), ours pushed earlier and others', so ``nbm.runs()``, the filters and the
    panels compare them with local runs. Pulled runs carry ``tags.nbmlops.pulled_from`` and are
    read-only; pulling again imports only what is new; a run of this store is left alone.
    Then the registered models: new versions verified by sha256 before anything is stored (a
    mismatch is listed in ``report.refused``), their events replayed; MLflow-native versions
    are counted, not imported."""
    from nbmlops.sync.pull import pull  # httpx: see the module docstring

    return pull(store, uri, experiment=experiment, token=token)


def sync_in_background(store: StoreLike = None, *, quiet: bool = False) -> SyncStatus | None:
    """Push every run of ``store`` that ends from now on to the MLflow server that
    ``NBMLOPS_MLFLOW_URI`` or ``[sync] mlflow = "mlflow://HOST:PORT"`` in the nearest
    nbmlops.toml names, on a thread of its own (after a catch-up of what the server lacks);
    None when neither is set. ``%load_ext nbmlops`` and ``start_run`` call it (``quiet``: a bad
    setting is one warning, not an error); calling it again costs nothing."""
    from nbmlops.sync import background  # httpx: see the module docstring

    pusher = background.start(store_at(store).home, quiet=quiet)
    return None if pusher is None else pusher.status()


def sync_status(store: StoreLike = None) -> SyncStatus | None:
    """How the background push of ``store`` stands (runs pending, the last success and the
    last error), or None when it is not running in this process."""
    from nbmlops.sync import background  # httpx: see the module docstring

    pusher = background.running(store_at(store).home)
    return None if pusher is None else pusher.status()
