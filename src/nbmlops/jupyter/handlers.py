"""Authenticated REST handlers over the store, under ``<base_url>/nbmlops/api/``.

Every verb is ``@tornado.web.authenticated``. The store work (SQLite, pandas) runs on a small
thread pool of its own, so a slow query or a store locked by a kernel never stalls the server's
event loop, and never takes the threads Jupyter uses for files. Answers are JSON; errors are
``{"error": message, "message": message, "type": ExceptionClass, ...}`` (``message`` too, as
JupyterLab's ``ServerConnection.ResponseError`` reads it) with 400 for bad input, 404 for
something that does not exist, 409 for a front end built for another API version, 503 while
the store is locked, tornado's own status for what tornado refuses (a query value that is not
UTF-8: 400), and 500 otherwise, never with a traceback (the server log has it).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.client import responses
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from nbmlops.errors import (
    AmbiguousIdError,
    FilterSyntaxError,
    NbmlopsError,
    NotFoundError,
    ReadOnlyQueryError,
    RegistryError,
    StoreLockedError,
)
from nbmlops.jupyter import payloads
from nbmlops.jupyter.payloads import API_VERSION, BadParameter, Location

SETTINGS_KEY = "nbmlops"
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
_WORKERS = 4

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="nbmlops-store")
        return _pool


@dataclass(frozen=True)
class ServerSettings:
    """What the handlers need from the server: its root folder and the configured store."""

    root_dir: Path
    store: str = ""

    def location(self, near: str | None = None, parameter: str = "path") -> Location:
        return payloads.locate_store(self.root_dir, self.store, near, parameter)


class ApiVersionMismatch(Exception):
    def __init__(self, expected: int) -> None:
        super().__init__(payloads.api_mismatch_message(expected))
        self.expected = expected


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and JSON body that answer a request which raised ``exc``."""
    message = str(exc)
    body: dict[str, Any] = {"error": message, "message": message, "type": type(exc).__name__}
    if isinstance(exc, ApiVersionMismatch):
        return 409, {**body, "server_api": API_VERSION, "client_api": exc.expected}
    if isinstance(exc, tornado.web.HTTPError):  # tornado's own: a query value not UTF-8, ...
        message = _http_error_message(exc)
        return exc.status_code, {**body, "error": message, "message": message}
    if isinstance(exc, BadParameter):
        return 400, {**body, "parameter": exc.parameter}
    if isinstance(exc, FilterSyntaxError):
        return 400, {**body, "position": exc.position, "reason": exc.reason, "filter": exc.text}
    if isinstance(exc, AmbiguousIdError):
        return 400, {**body, "matches": exc.matches[:10]}
    if isinstance(exc, NotFoundError):  # RunNotFoundError, ModelNotFoundError too
        return 404, body
    if isinstance(exc, RegistryError | ReadOnlyQueryError):
        return 400, body
    if isinstance(exc, StoreLockedError):
        return 503, body
    if isinstance(exc, NbmlopsError):
        return 500, body
    message = (
        f"Internal error in the nbmlops server extension ({type(exc).__name__}); the Jupyter "
        "server log has the details."
    )
    return 500, {**body, "error": message, "message": message}


class NbmlopsHandler(APIHandler):
    """Base of the nbmlops handlers: parameters, the store location, running work off the loop
    and turning exceptions into JSON errors."""

    @property
    def nbmlops(self) -> ServerSettings:
        settings: ServerSettings = self.settings[SETTINGS_KEY]
        return settings

    def location(self, near: str | None = None, parameter: str = "notebook") -> Location:
        """The store for this request: near ``?path=`` if given, else near ``near``."""
        path = self.get_query_argument("path", None)
        if path:
            return self.nbmlops.location(path, "path")
        return self.nbmlops.location(near or None, parameter)

    def text_argument(self, name: str) -> str | None:
        """A query argument, stripped; None when absent or blank."""
        value = (self.get_query_argument(name, None) or "").strip()
        return value or None

    def required_argument(self, name: str) -> str:
        value = self.text_argument(name)
        if value is None:
            raise BadParameter(name, f"Query parameter {name!r} is required.")
        return value

    def optional_int(self, name: str, low: int, high: int) -> int | None:
        text = self.text_argument(name)
        if text is None:
            return None
        try:
            value = int(text)
        except ValueError:
            raise BadParameter(
                name, f"Query parameter {name!r} must be an integer, not {text!r}."
            ) from None
        if not low <= value <= high:
            raise BadParameter(
                name, f"Query parameter {name!r} must be between {low} and {high}, not {value}."
            )
        return value

    def int_argument(self, name: str, default: int, low: int, high: int) -> int:
        value = self.optional_int(name, low, high)
        return default if value is None else value

    def check_api(self) -> None:
        """The version handshake: a front end sends the API version it was built for."""
        expected = self.get_query_argument("api", None)
        if expected is None:
            return
        try:
            number = int(expected)
        except ValueError:
            raise BadParameter(
                "api", f"Query parameter 'api' must be an integer, not {expected!r}."
            ) from None
        if number != API_VERSION:
            raise ApiVersionMismatch(number)

    async def respond(self, build: Callable[[], Any]) -> None:
        """Check the API version, run ``build`` on the store pool and send its result as JSON,
        or the error it raised. ``build`` may block; it reads the request's query arguments
        (parsed once, read-only) and never touches the response, which stays on the loop."""
        try:
            self.check_api()
            loop = asyncio.get_running_loop()
            body = await loop.run_in_executor(_executor(), lambda: _dumps(build()))
        except Exception as exc:
            status, error = error_body(exc)
            if status >= 500:
                self.log.error(
                    "nbmlops: %s %s failed", self.request.method, self.request.uri, exc_info=exc
                )
            self.set_status(status)
            self.finish(json.dumps(error))
            return
        self.finish(body)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors raised outside :meth:`respond` (authentication, tornado's own) in the same
        JSON shape."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = responses.get(status_code, "Error")
        if isinstance(exc, tornado.web.HTTPError) and exc.log_message:
            message = _http_error_message(exc)
        elif status_code == 403 and getattr(self, "_jupyter_current_user", None) is None:
            message = (
                "Forbidden: the request is not authenticated. Send the Jupyter server's token "
                "(header 'Authorization: token <token>') or log in."
            )
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message, "message": message, "type": "HTTPError"}))


def _http_error_message(exc: tornado.web.HTTPError) -> str:
    if not exc.log_message:
        return exc.reason or responses.get(exc.status_code, "Error")
    return exc.log_message % exc.args if exc.args else exc.log_message


def _dumps(body: Any) -> str:
    return json.dumps(body, allow_nan=False, separators=(",", ":"))


class VersionHandler(NbmlopsHandler):
    """``GET /nbmlops/api/version[?api=1][&path=...]``: the handshake."""

    @tornado.web.authenticated
    async def get(self) -> None:
        await self.respond(lambda: payloads.version(self.location()))


class RunsHandler(NbmlopsHandler):
    """``GET /nbmlops/api/runs?filter=&experiment=&notebook=&limit=&offset=``."""

    @tornado.web.authenticated
    async def get(self) -> None:
        def build() -> Any:
            notebook = self.text_argument("notebook")
            return payloads.runs(
                self.location(notebook),
                self.get_query_argument("filter", None),
                self.text_argument("experiment"),
                notebook,
                self.int_argument("limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
                self.int_argument("offset", 0, 0, 2**31),
            )

        await self.respond(build)


class RunHandler(NbmlopsHandler):
    """``GET /nbmlops/api/runs/<run_id>``."""

    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        await self.respond(lambda: payloads.run(self.location(), run_id))


class MetricHistoryHandler(NbmlopsHandler):
    """``GET /nbmlops/api/runs/<run_id>/metrics/<key>`` (the key may contain ``/``)."""

    @tornado.web.authenticated
    async def get(self, run_id: str, key: str) -> None:
        await self.respond(lambda: payloads.metric_history(self.location(), run_id, key))


class LineageHandler(NbmlopsHandler):
    """``GET /nbmlops/api/runs/<run_id>/lineage``."""

    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        await self.respond(lambda: payloads.lineage(self.location(), run_id))


class CompareHandler(NbmlopsHandler):
    """``GET /nbmlops/api/compare?runs=a,b[,c...]``."""

    @tornado.web.authenticated
    async def get(self) -> None:
        def build() -> Any:
            text = self.text_argument("runs") or ""
            run_ids = list(dict.fromkeys(r.strip() for r in text.split(",") if r.strip()))
            if not 2 <= len(run_ids) <= 50:
                raise BadParameter(
                    "runs", f"Compare needs 2 to 50 distinct run ids, got {len(run_ids)}."
                )
            return payloads.compare(self.location(), run_ids)

        await self.respond(build)


class CellHistoryHandler(NbmlopsHandler):
    """``GET /nbmlops/api/cells/<run_or_cell_id>/history``."""

    @tornado.web.authenticated
    async def get(self, run_or_cell: str) -> None:
        await self.respond(lambda: payloads.cell_history(self.location(), run_or_cell))


class CellDiffHandler(NbmlopsHandler):
    """``GET /nbmlops/api/cells/diff?a=<run or source hash>&b=<...>``."""

    @tornado.web.authenticated
    async def get(self) -> None:
        def build() -> Any:
            a, b = self.required_argument("a"), self.required_argument("b")
            return payloads.cell_diff(self.location(), a, b)

        await self.respond(build)


class LatestCellsHandler(NbmlopsHandler):
    """``GET /nbmlops/api/cells/latest?notebook=<path>``: per-cell badges in one request."""

    @tornado.web.authenticated
    async def get(self) -> None:
        def build() -> Any:
            notebook = self.required_argument("notebook")
            return payloads.latest_cells(self.location(notebook), notebook)

        await self.respond(build)


class ModelsHandler(NbmlopsHandler):
    """``GET /nbmlops/api/models``."""

    @tornado.web.authenticated
    async def get(self) -> None:
        await self.respond(lambda: payloads.models(self.location()))


class ModelHandler(NbmlopsHandler):
    """``GET /nbmlops/api/models/<name>``: versions and history."""

    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        await self.respond(lambda: payloads.model(self.location(), name))


class ModelReviewsHandler(NbmlopsHandler):
    """``GET /nbmlops/api/reviews/models[?name=]``: each version's latest review and approvals."""

    @tornado.web.authenticated
    async def get(self) -> None:
        await self.respond(
            lambda: payloads.model_reviews(self.location(), self.text_argument("name"))
        )


class DriftReportsHandler(NbmlopsHandler):
    """``GET /nbmlops/api/drift/reports?run_id=&model_name=&model_version=&limit=``."""

    @tornado.web.authenticated
    async def get(self) -> None:
        def build() -> Any:
            return payloads.drift_reports(
                self.location(),
                self.text_argument("run_id"),
                self.text_argument("model_name"),
                self.optional_int("model_version", 1, 2**31),
                self.int_argument("limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
            )

        await self.respond(build)


class DriftReportHandler(NbmlopsHandler):
    """``GET /nbmlops/api/drift/reports/<report_id>``."""

    @tornado.web.authenticated
    async def get(self, report_id: str) -> None:
        await self.respond(lambda: payloads.drift_report(self.location(), report_id))


ROUTES: list[tuple[str, type[NbmlopsHandler]]] = [
    (r"version", VersionHandler),
    (r"runs", RunsHandler),
    (r"runs/([^/]+)", RunHandler),
    (r"runs/([^/]+)/metrics/(.+)", MetricHistoryHandler),
    (r"runs/([^/]+)/lineage", LineageHandler),
    (r"compare", CompareHandler),
    (r"cells/latest", LatestCellsHandler),
    (r"cells/diff", CellDiffHandler),
    (r"cells/([^/]+)/history", CellHistoryHandler),
    (r"models", ModelsHandler),
    (r"models/([^/]+)", ModelHandler),
    (r"reviews/models", ModelReviewsHandler),
    (r"drift/reports", DriftReportsHandler),
    (r"drift/reports/([^/]+)", DriftReportHandler),
]


def setup_handlers(web_app: tornado.web.Application, settings: ServerSettings) -> None:
    """Register the handlers under ``<base_url>/nbmlops/api/``."""
    web_app.settings[SETTINGS_KEY] = settings
    base = url_path_join(web_app.settings["base_url"], "nbmlops", "api")
    web_app.add_handlers(".*$", [(url_path_join(base, path), handler) for path, handler in ROUTES])
