"""Running the app on uvicorn: in a thread for a notebook (:func:`start`), or in the foreground
with one or several worker processes for the CLI (:func:`run`).

The listening socket is bound here, as ``IPPROTO_TCP`` explicitly: asyncio sets ``TCP_NODELAY``
only on sockets whose ``proto`` says TCP, and a socket made with ``socket.socket()`` says 0, so
a response written in two parts (headers, body) waited for the client's delayed ACK: 44 ms per
request instead of 0.6 ms, measured with http.client on loopback. Binding it ourselves also
gives the real port when ``port=0`` before the endpoint is recorded.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nbmlops.errors import ServingError
from nbmlops.serving.service import ModelService, Settings
from nbmlops.store import Store

_CONFIG_ENV = "NBMLOPS_SERVE_CONFIG"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServingError(
            f"Cannot serve on {host}:{port}: {exc.strerror}; choose another --port."
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    """The URL clients use for the socket (the host name when bound to every interface)."""
    port = sock.getsockname()[1]
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _config(app: Any, **kwargs: Any) -> Any:
    import uvicorn  # the server stack stays out of import nbmlops

    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        **kwargs,
    )


class ServerHandle:
    """A server running in a thread of this process: ``.url``, ``.stop()``, the current
    ``.version`` and the prediction log's ``.stats``. Usable as a context manager."""

    def __init__(self, service: ModelService, server: Any, thread: threading.Thread) -> None:
        self.service = service
        self.url = service.url
        self._server = server
        self._thread = thread

    @property
    def version(self) -> int | None:
        """The version being served now (None while none is loaded)."""
        served = self.service.current
        return None if served is None else served.version.version

    @property
    def endpoint_id(self) -> str | None:
        return self.service.endpoint_id

    @property
    def stats(self) -> dict[str, Any]:
        """The prediction log's counters: logged, dropped, queued, last_error."""
        return self.service.stats.to_dict()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, finish the requests in flight, write the log, record the stop."""
        atexit.unregister(self.stop)
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ServerHandle {self.service.ref} v{self.version} at {self.url} ({state})>"


def start(
    store: Store, ref: str, *, host: str, port: int, settings: Settings, timeout: float = 120.0
) -> ServerHandle:
    """Serve ``ref`` from a thread; returns once it answers (or raises why it could not)."""
    # uvicorn and the app (starlette) load when a server starts, not with nbm.serve's module.
    import uvicorn

    from nbmlops.serving.app import create_app

    sock = bind(host, port)
    service = ModelService(store.home, ref, url_of(sock, host), settings)
    server = uvicorn.Server(_config(create_app(service)))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:
            failure.append(exc)
        finally:
            sock.close()

    thread = threading.Thread(target=run, name=f"nbmlops-serve-{ref}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        server.should_exit = True
        thread.join(10)
        raise ServingError(
            f"The server for {ref} did not start: {service.error or failure or 'timed out'}."
        )
    handle = ServerHandle(service, server, thread)
    # A kernel or script that ends without stop() still records the stop (and writes the log).
    atexit.register(handle.stop)
    return handle


def run(
    store: Store, ref: str, sock: socket.socket, url: str, *, settings: Settings, workers: int = 1
) -> bool:
    """Serve ``ref`` in the foreground until interrupted (Ctrl-C / SIGTERM stop it cleanly);
    ``sock`` is :func:`bind`'s socket and ``url`` its address. ``workers`` processes share the
    socket, each with its model, log writer and endpoint.
    False if the server never started (a pinned version that failed to load: uvicorn logged
    why)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = {
        "home": str(store.home),
        "ref": ref,
        "url": url,
        "settings": asdict(settings),
    }
    os.environ[_CONFIG_ENV] = json.dumps(config)
    app = "nbmlops.serving.server:app_from_environment"
    server_config = _config(app, factory=True, workers=workers)
    if workers > 1:
        Multiprocess(server_config, sockets=[sock]).run()
        return True
    server = uvicorn.Server(server_config)
    server.run(sockets=[sock])
    return bool(server.started)


def app_from_environment() -> Any:
    """The app of a ``run`` worker process, configured by the parent through the environment."""
    from nbmlops.serving.app import create_app  # starlette: only in a server process

    config = json.loads(os.environ[_CONFIG_ENV])
    service = ModelService(
        Path(config["home"]), config["ref"], config["url"], Settings(**config["settings"])
    )
    return create_app(service)
