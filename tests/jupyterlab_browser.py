"""A real JupyterLab server and Debian's Chromium driven by Playwright, for the UI tests and for
``docs/screenshots.py``. No browser is downloaded: Playwright launches ``/usr/bin/chromium``
(``make test`` installs it with apt where it is missing)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
# As root Chromium needs --no-sandbox; the rest keep it from calling out of this closed machine.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LabServer:
    base: str
    token: str

    def url(self, path: str) -> str:
        return f"{self.base}/{path}?token={self.token}"


@contextlib.contextmanager
def lab_server(root: Path, *extra: str, app: str = "jupyterlab") -> Iterator[LabServer]:
    """``python -m jupyterlab`` (or ``notebook``) on 127.0.0.1 serving ``root``, with its own
    config, data-free runtime and workspace folders so nothing of the user's leaks in."""
    port, token = free_port(), "nbmlops-ui-test"
    private = root / ".jupyter-test"  # hidden: not listed in the file browser
    private.mkdir(parents=True, exist_ok=True)
    log = private / f"{app}-server.log"
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(private / "config"),
        "JUPYTER_RUNTIME_DIR": str(private / "runtime"),
    }
    env.pop("NBMLOPS_HOME", None)  # the server and kernels find root/.nbmlops by the location rule
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                app,
                "--no-browser",
                f"--port={port}",
                "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
                f"--LabApp.workspaces_dir={private / 'workspaces'}",
                "--LabApp.news_url=",
                "--allow-root",
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=root,
        )
    lab = LabServer(f"http://127.0.0.1:{port}", token)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(lab.url("api/status"), timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{app} did not start:\n{log.read_text()}") from None
                time.sleep(0.3)
        yield lab
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@contextlib.contextmanager
def chromium_page(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: install Debian's chromium (make test does: apt-get install "
            "chromium)."
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def open_notebook(page: Any, lab: LabServer, name: str, *, ui: str = "lab/tree") -> None:
    """Open a notebook and wait until its kernel is idle."""
    page.goto(lab.url(f"{ui}/{name}"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    with contextlib.suppress(Exception):  # JupyterLab may ask which kernel to start
        page.locator(".jp-Dialog button:has-text('Select')").click(timeout=3_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    for close in page.locator(".jp-Notification-Toast-Close").all():
        with contextlib.suppress(Exception):
            close.click(timeout=1_000)


def wait_for_execution(page: Any, cell: Any, count: int, timeout: float = 120_000) -> None:
    """Wait until ``cell``'s prompt shows execution count ``count``."""
    prompt = cell.locator(".jp-InputPrompt")
    page.wait_for_function(
        "([el, n]) => el.textContent.includes('[' + n + ']')",
        arg=[prompt.element_handle(), count],
        timeout=timeout,
    )


def replace_source(page: Any, cell: Any, source: str) -> None:
    """Replace a cell's source as a user would type it (without saving the notebook)."""
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(source)
