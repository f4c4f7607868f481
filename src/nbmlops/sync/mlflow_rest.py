"""A thin client for an MLflow tracking server's REST API (https://mlflow.org/docs/latest/rest-api.html).

nbmlops talks to the server over HTTP rather than through the ``mlflow`` package: that package
pins much of what nbmlops depends on, and pushing needs a dozen endpoints. Artifacts go through
the server's artifact proxy (``/api/2.0/mlflow-artifacts/artifacts/...``), which a team server
runs with ``--serve-artifacts`` (the default since MLflow 2), so the client needs no credentials
for the object storage behind it.

A token in ``MLFLOW_TRACKING_TOKEN`` is sent as a bearer token, as MLflow's own client does.
Connection errors and 5xx answers are retried with exponential backoff (:data:`RETRIES`);
anything else, and the last failure, raises :class:`SyncError` naming the server, the call and
what the server said.
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from nbmlops.errors import SyncError

RETRIES = 4
"""Attempts after the first for a call that failed to connect or got a 5xx."""
BACKOFF_S = 0.25
"""The first wait before a retry; doubled each time (0.25, 0.5, 1, 2 s: about 4 s in all)."""
TIMEOUT_S = 60.0

Json = dict[str, Any]


def server_url(uri: str) -> str:
    """The base URL of a server given as ``mlflow://HOST:PORT``, ``http(s)://HOST:PORT[/path]``
    (one spelling per server, the key of what was pushed to it)."""
    parts = urlsplit(uri.strip())
    scheme = {"mlflow": "http", "http": "http", "https": "https"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise SyncError(
            f"{uri!r} is not an MLflow tracking server address: give mlflow://HOST:PORT or "
            "http://HOST:PORT.",
            server=uri,
        )
    return f"{scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


class MlflowClient:
    """Calls to one tracking server over one pooled HTTP connection."""

    def __init__(self, uri: str, *, token: str | None = None, retries: int = RETRIES) -> None:
        self.server = server_url(uri)
        token = token if token is not None else os.environ.get("MLFLOW_TRACKING_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.retries = retries
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=TIMEOUT_S)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MlflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------

    def call(
        self, method: str, endpoint: str, body: Json | None = None, *, ok: tuple[str, ...] = ()
    ) -> Json:
        """``method /api/2.0/mlflow/<endpoint>`` with a JSON body (GET: query parameters).
        MLflow error codes in ``ok`` return ``{"error_code": ...}`` instead of raising."""
        path = f"/api/2.0/mlflow/{endpoint}"
        if method == "GET":
            response = self._send(method, path, params=body)
        else:
            response = self._send(method, path, json=body or {})
        return self._json(response, f"{method} {endpoint}", ok)

    def put_artifact(self, artifact_root: str, path: str, data: bytes) -> None:
        """Upload ``data`` to ``path`` under a run's artifact root (``mlflow-artifacts:/...``)."""
        response = self._send("PUT", self._proxied(artifact_root, path, "write"), content=data)
        self._json(response, f"PUT artifact {path}", ())

    def get_artifact(self, artifact_root: str, path: str) -> bytes:
        """The artifact ``path`` under ``artifact_root`` (``mlflow-artifacts:/...``)."""
        response = self._send("GET", self._proxied(artifact_root, path, "read"))
        if not response.is_success:
            raise SyncError(
                f"The MLflow server {self.server} refused GET artifact {path}: HTTP "
                f"{response.status_code}: {response.text[:300]}",
                server=self.server,
                call=f"GET artifact {path}",
                status=response.status_code,
            )
        return response.content

    def _proxied(self, artifact_root: str, path: str, verb: str) -> str:
        """The artifact proxy's URL path for ``path`` under ``artifact_root``. Only
        ``mlflow-artifacts:`` roots go through the server: anything else (``s3://``, a path on
        the server's disk) needs credentials or access nbmlops does not have."""
        if not artifact_root.startswith("mlflow-artifacts:"):
            raise SyncError(
                f"The MLflow server {self.server} keeps artifacts at {artifact_root}, which "
                f"nbmlops cannot {verb} through the server: start it with --serve-artifacts (and "
                "no --default-artifact-root outside it) so artifacts go through its proxy.",
                server=self.server,
                call=f"{'PUT' if verb == 'write' else 'GET'} mlflow-artifacts",
            )
        # mlflow-artifacts:/1/<run>/artifacts or mlflow-artifacts://host:port/1/<run>/artifacts
        root = urlsplit(artifact_root).path.strip("/")
        return f"/api/2.0/mlflow-artifacts/artifacts/{quote(root)}/{quote(path)}"

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        wait = BACKOFF_S
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise SyncError(
                        f"The MLflow server {self.server} did not answer {method} {path} "
                        f"({type(exc).__name__}: {exc}) after {self.retries + 1} attempts. "
                        "Nothing it did not confirm is marked as pushed: push again once it is "
                        "back.",
                        server=self.server,
                        call=f"{method} {path}",
                    ) from exc
            else:
                if response.status_code < 500 or attempt == self.retries:
                    return response
            time.sleep(wait)
            wait *= 2
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _json(self, response: httpx.Response, call: str, ok: tuple[str, ...]) -> Json:
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {"message": response.text[:500]}
        if response.is_success:
            return body if isinstance(body, dict) else {"value": body}
        code = body.get("error_code") if isinstance(body, dict) else None
        if code in ok:
            return {"error_code": code}
        message = body.get("message") if isinstance(body, dict) else None
        if response.status_code in (401, 403):
            message = (
                f"{message or response.reason_phrase}. Set MLFLOW_TRACKING_TOKEN to a token this "
                "server accepts"
            )
        raise SyncError(
            f"The MLflow server {self.server} refused {call}: HTTP {response.status_code}"
            f"{f' {code}' if code else ''}: {message or response.reason_phrase}",
            server=self.server,
            call=call,
            status=response.status_code,
            code=code,
        )
