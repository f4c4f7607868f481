"""The location rule: which folder is the store (ARCHITECTURE.md).

``NBMLOPS_HOME`` if set, else the nearest ``.nbmlops/`` found walking up from the working
directory (like git finds ``.git``), else ``./.nbmlops/``, created by the first write.
"""

from __future__ import annotations

import os
from pathlib import Path

from nbmlops import config


def find_home(start: Path | None = None) -> Path:
    """The store folder the location rule picks from ``start`` (default: the working directory).

    The folder is not created here; a :class:`Store` creates it on its first write.
    """
    env = os.environ.get(config.HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / config.STORE_DIRNAME
        if candidate.is_dir():
            return candidate
    return here / config.STORE_DIRNAME


def resolve_home(path: str | os.PathLike[str] | None) -> Path:
    """The store folder a user-given location names: the ``.nbmlops`` folder itself, the
    ``nbmlops.db`` file inside it, or a project folder that contains ``.nbmlops``; ``None``
    applies the location rule."""
    if path is None:
        return find_home()
    p = Path(path).expanduser().resolve()
    if p.name == config.DB_FILENAME or p.is_file():
        return p.parent
    if p.name != config.STORE_DIRNAME and (p / config.STORE_DIRNAME).is_dir():
        return p / config.STORE_DIRNAME
    return p
