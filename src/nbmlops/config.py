"""Where the store lives, and the few settings read from the environment.

The location rule (ARCHITECTURE.md): ``NBMLOPS_HOME`` if set, else the nearest ``.nbmlops/``
found walking up from the working directory (like git finds ``.git``), else ``./.nbmlops/``.
"""

from __future__ import annotations

import os
from pathlib import Path

STORE_DIRNAME = ".nbmlops"
DB_FILENAME = "nbmlops.db"
OBJECTS_DIRNAME = "objects"
HOME_ENV = "NBMLOPS_HOME"


def find_home(start: Path | None = None) -> Path:
    """Return the store directory that applies from ``start`` (default: the working directory).

    The directory is not created here; :class:`nbmlops.store.Store` creates it on first write.
    """
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / STORE_DIRNAME
        if candidate.is_dir():
            return candidate
    return here / STORE_DIRNAME


def resolve_home(path: str | os.PathLike[str] | None) -> Path:
    """Turn a user-given store location into the store directory.

    Accepts the ``.nbmlops`` directory itself, the ``nbmlops.db`` file inside it, or a project
    folder that contains ``.nbmlops``; ``None`` applies the location rule.
    """
    if path is None:
        return find_home()
    p = Path(path).expanduser().resolve()
    if p.name == DB_FILENAME or p.is_file():
        return p.parent
    if p.name != STORE_DIRNAME and (p / STORE_DIRNAME).is_dir():
        return p / STORE_DIRNAME
    return p
