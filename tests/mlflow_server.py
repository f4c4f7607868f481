"""A real MLflow tracking server for the sync tests (issue #19 item 6), in a venv of its own.

mlflow is never a dependency of nbmlops nor installed into its venv: the server runs from the
side venv ``<repo>/.venv-mlflow`` (``$NBMLOPS_VENV_MLFLOW`` to use another), see
:mod:`side_venv`.

The server listens on 127.0.0.1 on a free port, with an SQLite backend and a local artifact root
under a temporary folder, serving artifacts itself (``--serve-artifacts``) as a team server does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from side_venv import side_venv

REPO = Path(__file__).resolve().parent.parent
# With the libraries MLflow loads pushed versions with (tests/test_sync_mlflow_model.py).
MLFLOW_SPEC = "mlflow>=3,<4 skops xgboost-cpu lightgbm"
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class MlflowServer:
    url: str  # http://127.0.0.1:<port>
    folder: Path  # its backend database and artifacts

    def api(self, method: str, path: str, **kwargs: object) -> dict[str, object]:
        """One REST call, as a test reads the server back (no nbmlops code involved)."""
        response = httpx.request(method, f"{self.url}/api/2.0/mlflow/{path}", timeout=30, **kwargs)  # type: ignore[arg-type]
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]


def mlflow_venv() -> Path:
    """The side venv holding mlflow (:mod:`side_venv`)."""
    return side_venv(".venv-mlflow", MLFLOW_SPEC, "mlflow").parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(folder: Path) -> Iterator[MlflowServer]:
    """``mlflow server`` on 127.0.0.1, ready to answer, stopped (with its workers) at exit."""
    venv = mlflow_venv()
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed when the server stops
    process = subprocess.Popen(
        [
            str(venv / "bin" / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--serve-artifacts",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped whole, workers included
    )
    server = MlflowServer(f"http://127.0.0.1:{port}", folder)
    try:
        _wait_ready(server, process, folder / "server.log")
        yield server
    finally:
        stop(process)
        log.close()


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def _wait_ready(server: MlflowServer, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"mlflow server exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(
        f"mlflow server not ready after {START_TIMEOUT_S:g} s:\n{log.read_text()[-3000:]}"
    )


class Outage:
    """A TCP relay in front of a server, on a port of its own, that can be cut and restored: the
    server "goes away" for its clients (connections refused, open ones dropped) and comes back
    at the same address, without restarting MLflow (20 s on this machine)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        if self._listener is not None:
            with suppress(OSError):  # wakes the thread blocked in accept() (close alone does not)
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for s in self._open:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
