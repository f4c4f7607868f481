from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbmlops as nbm
from nbmlops.store import Store, close_stores


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh store folder used by the location rule, as NBMLOPS_HOME."""
    folder = tmp_path / ".nbmlops"
    monkeypatch.setenv("NBMLOPS_HOME", str(folder))
    monkeypatch.chdir(tmp_path)
    nbm.set_store(None)
    yield folder
    while nbm.active_run() is not None:
        nbm.end_run()
    close_stores()


@pytest.fixture
def empty_store(home: Path) -> Store:
    """The store at ``home``, created and empty (reading alone never creates one)."""
    return nbm.get_store()


@pytest.fixture
def db(home: Path) -> Iterator[sqlite3.Connection]:
    """A second, independent connection to the store file: what really committed."""
    nbm.get_store()
    conn = sqlite3.connect(home / "nbmlops.db")
    yield conn
    conn.close()


@pytest.fixture
def shell(home: Path) -> Iterator[InteractiveShell]:
    """A real IPython shell with ``%load_ext nbmlops``, recording into ``home``."""
    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance()
    ip.run_line_magic("colors", "nocolor")
    ip.run_line_magic("load_ext", "nbmlops")
    yield ip
    ip.run_line_magic("unload_ext", "nbmlops")
    InteractiveShell.clear_instance()


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Callable[[Path], Path]]:
    """Copies a store folder into a place this process cannot write, and returns the copy.

    As root, permissions stop nothing, so the copy goes on a tmpfs remounted read-only (a real
    EROFS, as on a read-only volume); as any other user, the folder and files lose write bits.
    """
    mount = tmp_path / "mnt"
    mount.mkdir()
    mounted = os.geteuid() == 0
    if mounted:
        # As root nothing else makes a real read-only store; this machine and CI may mount.
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)

    def make(store: Path) -> Path:
        copy = mount / ".nbmlops"
        shutil.copytree(store, copy)
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        else:
            for path in [copy, *copy.rglob("*")]:
                path.chmod(0o555 if path.is_dir() else 0o444)
        return copy

    yield make
    close_stores()
    if mounted:
        subprocess.run(["umount", "-l", str(mount)], check=True)
    else:
        for path in [mount, *mount.rglob("*")]:
            path.chmod(0o755)
