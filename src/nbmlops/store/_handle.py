"""The one store handle every public function accepts.

``StoreLike`` is what a user may pass as ``store=``: a :class:`Store`, a path (the ``.nbmlops``
folder, the ``nbmlops.db`` file in it, or a project folder that holds one), or ``None`` for the
default store. :func:`open_store` turns any of them into an open :class:`Store`, and it is the
only function that does, so ``nbm.runs(store=Store(p))``, ``nbm.models(store=p)`` and
``nbm.check_drift(..., store=None)`` all mean the same thing by it. Whether to save is never
encoded in ``store``; functions that may skip saving take ``save=``.

The default store is the one the location rule (:mod:`._location`) finds, unless one was set
with :func:`set_default_store` for the rest of the process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TypeAlias

from nbmlops import config
from nbmlops.store._location import find_home, resolve_home
from nbmlops.store.db import Store

StoreLike: TypeAlias = Store | str | os.PathLike[str] | None

_stores: dict[Path, Store] = {}
_lock = threading.Lock()
_pinned_home: Path | None = None
# The location rule's answer per (working directory, NBMLOPS_HOME): walking up the folders
# costs more than the rest of a tracked cell's bookkeeping.
_found: dict[tuple[str, str | None], Path] = {}


def _default_home() -> Path:
    if _pinned_home is not None:
        return _pinned_home
    key = (os.getcwd(), os.environ.get(config.HOME_ENV))
    home = _found.get(key)
    if home is None or not home.is_dir():
        home = _found[key] = find_home()
    return home


def open_store(store: StoreLike = None) -> Store:
    """The open store that ``store`` names; one :class:`Store` per folder in this process."""
    if isinstance(store, Store):
        store.connection()
        return store
    home = _default_home() if store is None else resolve_home(store)
    with _lock:
        opened = _stores.get(home)
        if opened is None:
            opened = _stores[home] = Store(home)
    opened.connection()
    return opened


def set_default_store(path: str | os.PathLike[str] | None) -> Store | None:
    """Use the store at ``path`` as the default from now on in this process (``None``: back
    to the location rule)."""
    global _pinned_home
    _pinned_home = None if path is None else resolve_home(path)
    return None if path is None else open_store(path)


def close_stores() -> None:
    """Close every store this process opened and forget them and the default, so the next
    :func:`open_store` reads the location rule again (after ``chdir`` or a new NBMLOPS_HOME)."""
    global _pinned_home
    with _lock:
        for opened in _stores.values():
            opened.close()
        _stores.clear()
        _found.clear()
        _pinned_home = None
