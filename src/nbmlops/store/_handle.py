"""The one store handle every public function accepts.

``StoreLike`` is what a user may pass as ``store=``: a :class:`Store`, a path (the ``.nbmlops``
folder, the ``nbmlops.db`` file in it, or a project folder that holds one), or ``None`` for the
default store. :func:`open_store` turns any of them into an open :class:`Store`, and it is the
only function that does, so ``nbm.runs(store=Store(p))``, ``nbm.models(store=p)`` and
``nbm.check_drift(..., store=None)`` all mean the same thing by it. Whether to save is never
encoded in ``store``; functions that may skip saving take ``save=``.

The default store is the one the location rule (:mod:`._location`) finds, unless one was set
with :func:`set_default_store` for the rest of the process. Functions that only read open it
with ``open_store(store, create=False)``, so reading never creates a store (issue #13).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TypeAlias

from nbmlops import config
from nbmlops.errors import StoreNotFoundError
from nbmlops.store._location import Location, locate
from nbmlops.store.db import Store

StoreLike: TypeAlias = Store | str | os.PathLike[str] | None

_stores: dict[Path, Store] = {}
_lock = threading.Lock()
_pinned: Location | None = None
# The location rule's answer per (working directory, NBMLOPS_HOME): walking up the folders
# costs more than the rest of a tracked cell's bookkeeping.
_found: dict[tuple[str, str | None], Location] = {}


def _default_location() -> Location:
    if _pinned is not None:
        return _pinned
    key = (os.getcwd(), os.environ.get(config.HOME_ENV))
    found = _found.get(key)
    if found is None or not found.home.is_dir():
        found = _found[key] = locate()
    return found


def _cached(home: Path) -> Store:
    with _lock:
        opened = _stores.get(home)
        if opened is None:
            opened = _stores[home] = Store(home)
    return opened


def open_store(store: StoreLike = None, *, create: bool = True) -> Store:
    """The open store that ``store`` names; one :class:`Store` per folder in this process.

    ``create=True`` (for writers) creates the store if there is none yet. ``create=False``
    (for readers) never creates anything: where there is no store it raises
    :class:`~nbmlops.errors.StoreNotFoundError`, naming every place the location rule looked.
    """
    if isinstance(store, Store):
        opened, location = store, None
    else:
        location = _default_location() if store is None else locate(store)
        opened = _cached(location.home)
    if create:
        opened.create()
    elif location is not None and not opened.exists():
        raise StoreNotFoundError(location.searched, location.rule)
    else:
        opened.connection()
    return opened


def set_default_store(path: str | os.PathLike[str] | None) -> Store | None:
    """Use the store at ``path`` as the default from now on in this process (``None``: back
    to the location rule). Nothing is opened or created until the store is first used."""
    global _pinned
    _pinned = None if path is None else locate(path)
    return None if _pinned is None else _cached(_pinned.home)


def store_at(store: StoreLike = None) -> Store:
    """The :class:`Store` that ``store`` names, not opened: for a caller that needs only where
    it is (``Store.home``), which must work whether or not a store exists there yet."""
    if isinstance(store, Store):
        return store
    return _cached((_default_location() if store is None else locate(store)).home)


def close_stores() -> None:
    """Close every store this process opened and forget them and the default, so the next
    :func:`open_store` reads the location rule again (after ``chdir`` or a new NBMLOPS_HOME)."""
    global _pinned
    with _lock:
        for opened in _stores.values():
            opened.close()
        _stores.clear()
        _found.clear()
        _pinned = None
