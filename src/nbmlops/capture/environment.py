"""What a run ran on: Python, platform, installed packages, the user, the state of the git work
tree, the notebook the kernel runs. The one place nbmlops asks the machine these things
(:func:`installed_packages`, :func:`current_user`, :func:`git`, :func:`resolve_notebook`).

Scanning installed distributions costs tens of milliseconds, so it is done once per process.
Git state can change between runs (a notebook is saved, a file edited), so it is re-read, but at
most every ``GIT_REFRESH_S`` seconds per work tree: a run's git state is therefore accurate to
within that window, a trade made so that starting a run stays well under a millisecond.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

GIT_REFRESH_S = 5.0
_GIT_TIMEOUT_S = 5.0


class GitState(NamedTuple):
    commit: str | None
    branch: str | None
    dirty: bool | None
    diff: bytes | None


_lock = threading.Lock()
_packages: dict[str, str] | None = None
_packages_lock = threading.Lock()
_git_cache: dict[Path, tuple[float, GitState]] = {}


def installed_packages() -> dict[str, str]:
    """Distribution name (normalised) -> version, read once per process."""
    global _packages
    with _packages_lock:
        if _packages is not None:
            return _packages
        from importlib.metadata import distributions

        found: dict[str, str] = {}
        for dist in distributions():
            name = dist.metadata["Name"]
            if name:
                found[name.lower().replace("_", "-")] = dist.version
        _packages = dict(sorted(found.items()))
    return _packages


@functools.cache
def current_user() -> str | None:
    """The login name of this process's user, None where the system has none for it."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def warm_up(folder: Path) -> None:
    """Fill the caches in a background thread, so the first tracked cell does not wait."""

    def fill() -> None:
        try:
            installed_packages()
            git_state(folder)
        except Exception:  # best effort: the first run computes it again if needed
            pass

    threading.Thread(target=fill, name="nbmlops-warm-up", daemon=True).start()


def git_state(folder: Path) -> GitState:
    now = time.monotonic()
    with _lock:
        cached = _git_cache.get(folder)
        if cached is not None and now - cached[0] < GIT_REFRESH_S:
            return cached[1]
    state = _read_git_state(folder)
    with _lock:
        _git_cache[folder] = (now, state)
    return state


def git(folder: Path, *args: str) -> str | None:
    """The output of ``git ARGS`` run in ``folder``; None where git fails or is missing."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=folder,
            capture_output=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace")


def _read_git_state(folder: Path) -> GitState:
    commit = git(folder, "rev-parse", "HEAD")
    if commit is None:
        inside = git(folder, "rev-parse", "--is-inside-work-tree")
        if inside is None:
            return GitState(None, None, None, None)
    branch = git(folder, "rev-parse", "--abbrev-ref", "HEAD")
    status = git(folder, "status", "--porcelain", "--untracked-files=no")
    dirty = bool(status and status.strip())
    diff = None
    if dirty and commit is not None:
        text = git(folder, "diff", "HEAD", "--no-color", "--no-ext-diff")
        diff = text.encode() if text else None
    return GitState(
        commit.strip() if commit else None,
        branch.strip() if branch else None,
        dirty,
        diff,
    )


_records: dict[tuple[GitState, str | None], dict[str, Any]] = {}


def environment_record(folder: Path, diff_digest: str | None) -> dict[str, Any]:
    """The ``environments`` row for this process; its id is the hash of its content.

    Cached per git state read, since hashing the package list costs more than a run's writes.
    """
    git = git_state(folder)
    key = (git, diff_digest)
    cached = _records.get(key)
    if cached is not None:
        return cached
    content: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": _platform(),
        "packages": json.dumps(installed_packages(), sort_keys=True),
        "git_commit": git.commit,
        "git_branch": git.branch,
        "git_dirty": None if git.dirty is None else int(git.dirty),
        "git_diff_sha256": diff_digest,
    }
    env_id = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    record = {"environment_id": env_id, **content, "created_at": time.time()}
    if len(_records) > 64:
        _records.clear()
    _records[key] = record
    return record


_platform_text: str | None = None


def _platform() -> str:
    global _platform_text
    if _platform_text is None:
        import platform

        _platform_text = platform.platform()
    return _platform_text


def resolve_notebook(
    session_name: str | None, vscode_file: str | None, session_var: str | None = None
) -> str | None:
    """The notebook's absolute path, from what the front end told the kernel: VS Code's
    ``__vsc_ipynb_file__``, jupyter_server's ``JPY_SESSION_NAME`` (ipykernel copies it into the
    ``__session__`` variable, which outlives a change of the environment), ``NBMLOPS_NOTEBOOK``.
    None when nothing says; :func:`nbmlops.capture.notebook.find_by_source` can then look."""
    for candidate in (
        vscode_file,
        session_name,
        session_var,
        os.environ.get("NBMLOPS_NOTEBOOK"),
    ):
        if not candidate:
            continue
        path = Path(candidate)
        if path.is_absolute():
            return str(path)
        # jupyter_server gives the path relative to its root; the kernel runs in the
        # notebook's folder, so the file name is found there.
        local = Path.cwd() / path.name
        return str(local if local.exists() else path)
    return None
