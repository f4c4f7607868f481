"""Team use through an MLflow tracking server (issue #19): push what this store holds.

nbm.push_to_mlflow("mlflow://127.0.0.1:5000")   # runs and registered models, only what is new
"""

from __future__ import annotations

from collections.abc import Callable

from nbmlops.store import StoreLike
from nbmlops.sync.pull import PullReport, pull
from nbmlops.sync.push import PushReport, push


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
    read-only; pulling again imports only what is new; a run of this store is left alone."""
    return pull(store, uri, experiment=experiment, token=token)
