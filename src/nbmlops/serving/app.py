"""The ASGI app: MLflow's scoring protocol, the V2 subset, model downloads, and its OpenAPI doc.

Built on Starlette rather than FastAPI. Measured on this 2-core VM (uvicorn, one keep-alive
client, a route that reads and parses a JSON body): Starlette 0.54-0.61 ms p50, FastAPI
0.72-0.82 ms p50 for the same handler. FastAPI's free OpenAPI document would not describe these
routes anyway: the scoring body is a union of four shapes that the server validates itself (to
answer 400 naming the column, as MLflow does, not pydantic's 422), so the document is written
out in :mod:`nbmlops.serving.openapi` either way.

Routes (all but ``/ping`` need ``Authorization: Bearer <token>`` when a token is set):

* ``POST /invocations``: MLflow's protocol (see :mod:`nbmlops.serving.formats`);
* ``GET /ping`` (200 once a model is loaded), ``GET /health`` (200 only when loaded *and*
  self-tested; its JSON says what is served and what the prediction log did), ``GET /version``;
* ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2/models/{name}``,
  ``POST /v2/models/{name}/infer``;
* ``GET /models/{name}@{alias}/artifact`` and ``GET /models/{name}/{version}/artifact``: the
  artifact's bytes, ``ETag`` = its sha256, ``If-None-Match`` -> 304; an ``X-Device-ID`` header
  records the device as a consumer of the version (``nbm.consumers``);
* ``POST /labels``: ground truth for served requests, ``{"request_ids": [...], "labels":
  [...], "rows": [...]}`` (``rows`` optional: row 0 of each request), stored as
  ``nbm.log_labels`` stores it; the answer counts the labels matched to this model's logged
  requests and lists the unknown request ids (kept all the same: the log is written in batches);
  refused (403) on a server bound beyond 127.0.0.1 without a token;
* ``GET /openapi.json``.

``predict`` runs on the event loop, not a worker thread: moving the forest's 9-12 ms predict to
Starlette's thread pool gave 61-68 req/s against 82-92 inline (16 clients, this 2-core VM), and a
linear model's 0.2 ms predict would only pay the thread hop.

A version trained from a feature store training set may be sent its entity keys instead of its
features, and its inputs are checked against the training set's data contract
(:mod:`nbmlops.serving.features`).

Every response to a scoring request names the model (``X-Model-Name``, ``X-Model-Version``,
``X-Model-Digest``) and the request (``X-Request-ID``: the client's, or one generated).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from nbmlops._version import __version__
from nbmlops.capture.liveness import hostname
from nbmlops.errors import InvalidValueError, NbmlopsError, StoreLockedError
from nbmlops.monitoring.labels import log_labels
from nbmlops.registry.model_version import resolve
from nbmlops.serving import openapi
from nbmlops.serving.features import FeatureNotes, logged_body, response_status
from nbmlops.serving.formats import (
    Decoded,
    RequestError,
    decode_invocation,
    decode_v2,
    error_body,
    v2_datatype,
)
from nbmlops.serving.service import ModelService, Served
from nbmlops.store import registry as registry_sql

logger = logging.getLogger("nbmlops.serving")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_JSON = "application/json"


def _error(exc: RequestError, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(exc.body()), exc.status, headers, media_type=_JSON)


class BearerAuth:
    """Pure ASGI middleware: every route but ``/ping`` needs ``Authorization: Bearer <token>``
    (401 when it is missing or not a bearer token, 403 when the token is wrong)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/ping":
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        if not header or scheme.lower() != b"bearer":
            problem = RequestError(
                401, "This server needs a token: send the header 'Authorization: Bearer <token>'."
            )
            response = _error(problem, {"WWW-Authenticate": "Bearer"})
        elif not hmac.compare_digest(given.strip(), self.token):
            response = _error(RequestError(403, "The bearer token is not valid for this server."))
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


def create_app(service: ModelService) -> ASGIApp:
    """The ASGI app serving ``service``; its lifespan starts and stops the service."""
    settings = service.settings

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    async def read_body(request: Request) -> bytes:
        limit = settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        too_big = RequestError(
            413, f"The request body is larger than this server's limit of {limit} bytes."
        )
        if declared.isdigit() and int(declared) > limit:
            raise too_big
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    def request_id(request: Request) -> str:
        given = request.headers.get("x-request-id")
        if given is None:
            return secrets.token_hex(16)
        if not _REQUEST_ID.fullmatch(given):
            raise RequestError(
                400,
                "X-Request-ID must be 1-128 letters, digits or . _ : - (got "
                f"{given[:40]!r}); leave it out to have one generated.",
            )
        return given

    def loaded() -> Served:
        served = service.current
        if served is None:
            raise RequestError(503, f"No model is being served yet: {service.error}.")
        return served

    async def score(
        request: Request,
        decode: Callable[[bytes, str | None], Decoded],
        render: Callable[[Served, str, list[Any], FeatureNotes], dict[str, Any]],
    ) -> Response:
        started, at = time.perf_counter(), time.time()
        rid = secrets.token_hex(16)
        served, decoded, body = service.current, None, b""
        extra: list[str] = []
        outputs: list[Any] | None = None
        headers = {"X-Request-ID": rid}
        notes, frame = FeatureNotes(), None  # frame: the rows as scored (features fetched)
        try:
            rid = headers["X-Request-ID"] = request_id(request)
            served = loaded()
            headers.update(served.headers)
            body = await read_body(request)
            decoded = decode(body, request.headers.get("content-type"))
            frame = scored = decoded.frame
            if served.features is not None:
                frame, scored = served.features.complete(
                    service.store, frame, decoded.positional, notes
                )
            model_input, extra = served.schema.prepare(
                scored, decoded.positional, settings.extra_columns
            )
            if served.features is not None:
                served.features.check(model_input, settings.contract, notes)
            outputs = _predict(served, model_input)
            if extra and settings.extra_columns == "log":
                headers["X-Nbmlops-Extra-Columns"] = ",".join(extra)
            if notes.violated:
                headers["X-Nbmlops-Contract-Violations"] = ",".join(notes.violated)
            response = Response(
                json.dumps(render(served, rid, outputs, notes)), 200, headers, media_type=_JSON
            )
            status, error = 200, None
        except RequestError as exc:
            response, status, error = _error(exc, headers), exc.status, exc.message
        if status == 200:
            error = notes.logged()
        if notes.status is not None and frame is not None:
            body = logged_body(frame)  # the inputs as scored: the keys and the values fetched
        if settings.log_predictions:
            service.log.submit(
                {
                    "request_id": rid,
                    "endpoint_id": service.endpoint_id,
                    "name": service.name,
                    "version": None if served is None else served.version.version,
                    "sha256": None if served is None else served.version.sha256,
                    "at": at,
                    "status": status,
                    "latency_ms": (time.perf_counter() - started) * 1000,
                    "format": None if decoded is None else decoded.format,
                    "n_rows": None if decoded is None else len(decoded.frame),
                    "frame": frame,
                    "body": body,
                    "outputs": outputs,
                    "extra_columns": extra if settings.extra_columns == "log" else None,
                    "error": error,
                }
            )
        return response

    def mlflow_body(
        _served: Served, _rid: str, outputs: list[Any], notes: FeatureNotes
    ) -> dict[str, Any]:
        return {"predictions": outputs, **response_status(notes)}

    def v2_body(
        served: Served, rid: str, outputs: list[Any], notes: FeatureNotes
    ) -> dict[str, Any]:
        fetched = response_status(notes)
        return {
            **({"parameters": fetched} if fetched else {}),
            "model_name": served.version.name,
            "model_version": str(served.version.version),
            "id": rid,
            "outputs": [
                {
                    "name": "predict",
                    "shape": [len(outputs)],
                    "datatype": v2_datatype(outputs),
                    "data": outputs,
                }
            ],
        }

    async def invocations(request: Request) -> Response:
        return await score(request, decode_invocation, mlflow_body)

    async def v2_infer(request: Request) -> Response:
        if request.path_params["name"] != service.name:
            return _not_served(request.path_params["name"], service)
        return await score(request, decode_v2, v2_body)

    async def ping(_request: Request) -> Response:
        return Response("\n" if service.current else "", 200 if service.current else 503)

    async def health(_request: Request) -> Response:
        served = service.current
        body: dict[str, Any] = {
            "status": "ok" if served else "unavailable",
            "ref": service.ref,
            "endpoint_id": service.endpoint_id,
            "prediction_log": service.stats.to_dict(),
        }
        if served is None:
            body["reason"] = service.error
        else:
            body.update(
                version=served.version.version,
                sha256=served.version.sha256,
                self_test="passed" if served.schema.example() is not None else "no signature",
            )
        return JSONResponse(body, 200 if served else 503)

    async def version(_request: Request) -> Response:
        served = service.current
        return JSONResponse(
            {
                "nbmlops": __version__,
                "model": service.name,
                "version": None if served is None else served.version.version,
                "sha256": None if served is None else served.version.sha256,
            }
        )

    async def v2_live(_request: Request) -> Response:
        return JSONResponse({"live": True})

    async def v2_ready(_request: Request) -> Response:
        return JSONResponse({"ready": service.current is not None}, 200 if service.current else 503)

    async def v2_metadata(request: Request) -> Response:
        name = request.path_params["name"]
        served = service.current
        if name != service.name:
            return _not_served(name, service)
        if served is None:
            return _error(RequestError(503, f"No model is being served yet: {service.error}."))
        schema = served.schema
        inputs = [
            {
                "name": c,
                "datatype": "FP64" if (d or "").startswith(("int", "float")) else "BYTES",
                "shape": [-1],
            }
            for c, d in zip(schema.columns or (), schema.dtypes or (), strict=True)
        ]
        return JSONResponse(
            {
                "name": name,
                "versions": [str(served.version.version)],
                "platform": served.version.model_class or "unknown",
                "inputs": inputs,
                "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}],
            }
        )

    def artifact(request: Request) -> Response:
        params = request.path_params
        ref = params["ref"] if "ref" in params else f"{params['name']}/{params['version']}"
        try:
            mv = resolve(service.store, ref)
        except (NbmlopsError, TypeError) as exc:
            return _error(RequestError(404, str(exc)))
        if mv.deleted:
            return _error(RequestError(404, f"{mv.ref} was deleted; its artifact is not served."))
        etag = f'"{mv.sha256}"'
        headers = {
            "ETag": etag,
            "X-Model-Name": mv.name,
            "X-Model-Version": str(mv.version),
            "X-Model-Format": mv.format,
            "X-Model-Digest": f"sha256:{mv.sha256}",
            "Cache-Control": "no-cache",
        }
        device = request.headers.get("x-device-id")
        if device:
            _record_device(service, mv.name, mv.version, mv.sha256, mv.size, device, request)
        matches = [t.strip() for t in request.headers.get("if-none-match", "").split(",")]
        if etag in matches or "*" in matches:
            return Response(status_code=304, headers=headers)
        return FileResponse(
            service.store.objects.path_of(mv.sha256),
            headers=headers,
            media_type="application/octet-stream",
        )

    # Labels decide what monitoring does (skew alerts, retrains, deprecations): a server that
    # other machines can reach takes them only with a token.
    labels_open = settings.token is not None or urlsplit(service.url).hostname in (
        "127.0.0.1",
        "::1",
        "localhost",
    )

    async def labels(request: Request) -> Response:
        try:
            if not labels_open:
                raise RequestError(
                    403,
                    "This server is reachable from other machines and has no token: POST /labels "
                    "(which drives skew alerts and retraining) needs one. Start it with --token.",
                )
            body = await read_body(request)
            try:
                payload = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise RequestError(400, f"The body is not JSON: {exc}.") from None
            if not isinstance(payload, dict) or not {"request_ids", "labels"} <= set(payload):
                raise RequestError(
                    400,
                    'Send {"request_ids": [...], "labels": [...]} (and "rows": [...] for '
                    "multi-row requests), one label per request id.",
                )
            unknown_keys = sorted(set(payload) - {"request_ids", "labels", "rows"})
            if unknown_keys:
                raise RequestError(
                    400, f"Unknown keys {unknown_keys}: the keys are request_ids, labels and rows."
                )
            ids, values, rows = payload["request_ids"], payload["labels"], payload.get("rows")
            if not all(isinstance(v, list) for v in (ids, values, [] if rows is None else rows)):
                raise RequestError(400, "request_ids, labels and rows are JSON arrays.")
            # A short write transaction, off the event loop: scoring requests keep flowing.
            logged = await run_in_threadpool(
                log_labels, service.store, ids, values, rows, name=service.name
            )
        except RequestError as exc:
            return _error(exc)
        except InvalidValueError as exc:
            return _error(RequestError(400, str(exc)))
        except StoreLockedError as exc:  # nothing was written: the client sends them again
            return _error(RequestError(503, str(exc)), {"Retry-After": "1"})
        return JSONResponse(
            {
                "matched": logged.matched,
                "unknown": logged.unknown,
                "unknown_ids": logged.unknown_ids,
                "unusable": logged.unusable,
            }
        )

    async def openapi_doc(_request: Request) -> Response:
        served = service.current
        columns = None if served is None else served.schema.columns
        return JSONResponse(openapi.document(service.name, service.ref, columns))

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {404: "No such route; see /openapi.json.", 405: "Method not allowed here."}
        return Response(
            error_body(exc.status_code, message.get(exc.status_code, str(exc.detail))),
            exc.status_code,
            media_type=_JSON,
            headers=exc.headers,
        )

    async def server_error(_request: Request, exc: Exception) -> Response:
        logger.exception("nbmlops: unexpected error", exc_info=exc)
        text = f"The server failed on this request ({type(exc).__name__}); see its log."
        return Response(error_body(500, text), 500, media_type=_JSON)

    routes = [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/v2/health/live", v2_live, methods=["GET"]),
        Route("/v2/health/ready", v2_ready, methods=["GET"]),
        Route("/v2/models/{name}", v2_metadata, methods=["GET"]),
        Route("/v2/models/{name}/infer", v2_infer, methods=["POST"]),
        Route("/models/{ref}/artifact", artifact, methods=["GET"]),
        Route("/models/{name}/{version:int}/artifact", artifact, methods=["GET"]),
        Route("/labels", labels, methods=["POST"]),
        Route("/openapi.json", openapi_doc, methods=["GET"]),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        HTTPException: http_error,
        Exception: server_error,
    }
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    return app if settings.token is None else BearerAuth(app, settings.token)


def _predict(served: Served, model_input: Any) -> list[Any]:
    try:
        return served.predict(model_input)
    except (ValueError, TypeError, KeyError) as exc:
        raise RequestError(
            400, f"{served.version.ref} could not predict these inputs: {exc}"
        ) from None


def _not_served(name: str, service: ModelService) -> Response:
    return _error(
        RequestError(404, f"Model {name!r} is not served here; this server serves {service.ref}.")
    )


def _record_device(
    service: ModelService,
    name: str,
    version: int,
    sha256: str,
    size: int,
    device: str,
    request: Request,
) -> None:
    load = {
        "name": name,
        "version": version,
        "consumer": f"device {device[:128]}",
        "host": request.client.host if request.client else hostname(),
        "pid": None,
        "at": time.time(),
    }
    try:
        registry_sql.record_load(service.store, load, sha256=sha256, size=size)
    except NbmlopsError as exc:  # the download must not fail because the store is busy
        logger.warning("nbmlops: device %s not recorded as a consumer: %s", device, exc)
