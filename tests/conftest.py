from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

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
