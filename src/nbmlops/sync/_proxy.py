"""Reading an artifact through an MLflow server's artifact proxy: one place for the pull of runs
(:mod:`nbmlops.sync.pull`) and of the registry (:mod:`nbmlops.sync.pull_registry`).

Only ``mlflow-artifacts:`` locations are read: anything else (``s3://``, a path on the server's
disk) needs credentials or access nbmlops does not have, so it is refused with what to change on
the server.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from nbmlops.errors import SyncError
from nbmlops.sync.mlflow_rest import MlflowClient


def download(client: MlflowClient, root: str, path: str) -> bytes:
    """The artifact ``path`` under ``root`` (``mlflow-artifacts:/...``), through the proxy."""
    if not root.startswith("mlflow-artifacts:"):
        raise SyncError(
            f"The MLflow server {client.server} keeps artifacts at {root}, which nbmlops cannot "
            "read through the server: start it with --serve-artifacts so artifacts go through "
            "its proxy.",
            server=client.server,
            call="GET mlflow-artifacts",
        )
    folder = urlsplit(root).path.strip("/")
    target = f"/api/2.0/mlflow-artifacts/artifacts/{quote(folder)}/{quote(path)}"
    response = client._send("GET", target)
    if not response.is_success:
        raise SyncError(
            f"The MLflow server {client.server} refused GET artifact {path}: HTTP "
            f"{response.status_code}: {response.text[:300]}",
            server=client.server,
            call=f"GET artifact {path}",
            status=response.status_code,
        )
    return response.content
