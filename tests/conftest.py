from __future__ import annotations

import sqlite3
from collections.abc import Iterator
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
