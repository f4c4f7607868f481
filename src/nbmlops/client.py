"""A device client that downloads a served model and keeps it up to date (standard library only).

A device (an edge box, a batch job, an app server) that runs a model needs neither pandas,
Jupyter nor nbmlops itself: copy this one file, or ``from nbmlops.client import ModelClient``.
It imports nothing but the standard library, so it works wherever Python does::

    client = ModelClient("http://models:5000", "diabetes@champion", "/var/lib/models",
                         device_id="edge-17", token="...")
    path = client.get()        # the local artifact; downloads only when the alias moved
    client.rollback()          # back to the previous version, kept on disk

``get()`` asks the server ``GET /models/{ref}/artifact`` with ``If-None-Match`` set to the
digest it has: a 304 costs a few hundred bytes. A new version is streamed to a temporary file,
its sha256 compared with the ``ETag`` the server sent (the digest recorded at registration),
and only then moved into place and made current with an atomic rename of ``current.json``;
a corrupt or interrupted download never replaces the working version. The previous version's
file is kept for :meth:`ModelClient.rollback`. The ``X-Device-ID`` header makes the server
record the device as a consumer of the version, so ``nbm.consumers(name, version)`` lists the
devices still running a deprecated version. When the server cannot be reached, ``get()``
returns the version on disk (``last_error`` says why) and raises only when there is none.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["ModelClient", "ModelClientError"]

_STATE = "current.json"


class ModelClientError(Exception):
    """The model could not be fetched and no version is on disk (or a download was corrupt)."""


class ModelClient:
    """Keeps the latest version of ``ref`` (``"name@alias"`` or ``"name/3"``) in ``cache_dir``."""

    def __init__(
        self,
        url: str,
        ref: str,
        cache_dir: str | os.PathLike[str],
        *,
        device_id: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.ref = ref
        self.name = ref.split("@", 1)[0].split("/", 1)[0]
        self.folder = Path(cache_dir) / self.name
        self.device_id = device_id
        self.token = token
        self.timeout = timeout
        self.last_error: str | None = None

    # -- state on disk ---------------------------------------------------------------------

    @property
    def current(self) -> dict[str, Any] | None:
        """The installed version: name, version, sha256, format, path, fetched_at, previous."""
        try:
            state: dict[str, Any] = json.loads((self.folder / _STATE).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return state

    @property
    def version(self) -> int | None:
        """The installed version number (None before the first download)."""
        state = self.current
        return None if state is None else int(state["version"])

    def _write_state(self, state: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".state-")
        with os.fdopen(fd, "w") as f:
            json.dump(state, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / _STATE)  # atomic: readers see the old or the new state

    # -- fetching ------------------------------------------------------------------------------

    def _artifact_url(self) -> str:
        name, sep, alias = self.ref.partition("@")
        if sep:
            path = f"{urllib.parse.quote(name, safe='')}@{urllib.parse.quote(alias, safe='')}"
        else:
            name, _, version = self.ref.partition("/")
            path = f"{urllib.parse.quote(name, safe='')}/{urllib.parse.quote(version, safe='')}"
        return f"{self.url}/models/{path}/artifact"

    def check(self) -> bool:
        """Fetch a newer version if the server has one; True if one was installed."""
        headers = {"Accept": "application/octet-stream"}
        state = self.current
        if state is not None:
            headers["If-None-Match"] = f'"{state["sha256"]}"'
        if self.device_id:
            headers["X-Device-ID"] = self.device_id
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self._artifact_url(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                self._install(response)
                return True
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return False
            detail = exc.read(2000).decode("utf-8", "replace")
            with contextlib.suppress(ValueError, KeyError, TypeError):
                detail = json.loads(detail)["message"]
            raise ModelClientError(
                f"{self._artifact_url()} answered {exc.code}: {detail}"
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            # unreachable, timed out, or not an HTTP answer (BadStatusLine, IncompleteRead)
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise ModelClientError(
                f"{self._artifact_url()}: {type(exc).__name__}: {reason}"
            ) from None
        except (KeyError, ValueError) as exc:  # an answer without the model's headers
            raise ModelClientError(
                f"{self._artifact_url()} did not answer as an nbmlops model server ({exc!r} "
                "missing or malformed): is the URL right?"
            ) from None

    def _install(self, response: Any) -> None:
        etag = (response.headers.get("ETag") or "").strip('"')
        version = int(response.headers["X-Model-Version"])
        fmt = response.headers.get("X-Model-Format") or "bin"
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".download-")
        try:
            with os.fdopen(fd, "wb") as f:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            if digest.hexdigest() != etag:
                raise ModelClientError(
                    f"The download of {self.ref} version {version} has sha256 "
                    f"{digest.hexdigest()}, but the server recorded {etag!r}; the version on "
                    "disk was kept. Try again; if it persists the server's artifact changed."
                )
            target = self.folder / f"v{version}-{etag[:12]}.{fmt}"
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        previous = self.current
        if previous is not None:
            previous.pop("previous", None)
        self._write_state(
            {
                "name": self.name,
                "ref": self.ref,
                "version": version,
                "sha256": etag,
                "format": fmt,
                "path": str(target),
                "fetched_at": time.time(),
                "previous": previous,
            }
        )
        self._prune(keep={target.name, Path(previous["path"]).name if previous else ""})

    def _prune(self, keep: set[str]) -> None:
        for path in self.folder.glob("v*-*.*"):
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def get(self) -> Path:
        """The path of the newest version: checks the server first, falls back to the version
        on disk when the server cannot be reached (``last_error`` says why)."""
        try:
            self.check()
            self.last_error = None
        except ModelClientError as exc:
            self.last_error = str(exc)
            if self.current is None:
                raise ModelClientError(
                    f"No version of {self.ref} on disk and the server could not give one: {exc}"
                ) from exc
        state = self.current
        assert state is not None
        return Path(state["path"])

    def rollback(self) -> Path:
        """Make the previous version current again (kept on disk since the last update)."""
        state = self.current
        if state is None or not state.get("previous"):
            raise ModelClientError(f"No previous version of {self.ref} to roll back to.")
        previous = dict(state["previous"])
        previous["previous"] = None
        self._write_state(previous)
        return Path(previous["path"])

    def watch(
        self, every: float, *, stop: threading.Event | None = None, on_update: Any = None
    ) -> None:
        """Check every ``every`` seconds until ``stop`` is set; ``on_update(path)`` after each
        new version. Errors are kept in ``last_error`` and the loop goes on."""
        stop = stop or threading.Event()
        while True:
            before = self.version
            path = None
            try:
                path = self.get()
            except ModelClientError as exc:
                self.last_error = str(exc)
            if path is not None and self.version != before and on_update is not None:
                on_update(path)
            if stop.wait(every):
                return
