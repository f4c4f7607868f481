"""The location rule: which folder is the store (ARCHITECTURE.md).

``NBMLOPS_HOME`` if set, else the nearest ``.nbmlops/`` found walking up from the working
directory (like git finds ``.git``), else ``./.nbmlops/``, created by the first write. Reading
never creates a store, so a :class:`Location` also keeps where the rule looked: the error for
"no store here" names every place (:class:`~nbmlops.errors.StoreNotFoundError`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nbmlops import config


@dataclass(frozen=True)
class Location:
    """The store folder a location names, and the store files looked for to find it."""

    home: Path
    searched: tuple[Path, ...]  # nearest first; the last one is home's database file
    rule: str  # how the places were chosen, in words, for the error message


def locate(path: str | os.PathLike[str] | None = None, start: Path | None = None) -> Location:
    """The store a user-given location names: the ``.nbmlops`` folder itself, the ``nbmlops.db``
    file inside it, or a project folder that contains ``.nbmlops``; ``None`` applies the
    location rule from ``start`` (default: the working directory). Nothing is created here."""
    if path is not None:
        given = Path(path).expanduser().resolve()
        rule = f"the store path given was {os.fspath(path)!r}"
        if given.name == config.DB_FILENAME or given.is_file():
            return Location(given.parent, (given,), rule)
        if given.name == config.STORE_DIRNAME:
            return Location(given, (given / config.DB_FILENAME,), rule)
        nested = given / config.STORE_DIRNAME
        both = (given / config.DB_FILENAME, nested / config.DB_FILENAME)
        return Location(nested if nested.is_dir() else given, both, rule)
    env = os.environ.get(config.HOME_ENV)
    if env:
        home = Path(env).expanduser().resolve()
        return Location(home, (home / config.DB_FILENAME,), f"{config.HOME_ENV} is {env!r}")
    here = (start or Path.cwd()).resolve()
    rule = f"walking up from {here}"
    searched: list[Path] = []
    for folder in (here, *here.parents):
        candidate = folder / config.STORE_DIRNAME
        searched.append(candidate / config.DB_FILENAME)
        if candidate.is_dir():
            return Location(candidate, tuple(searched), rule)
    return Location(here / config.STORE_DIRNAME, tuple(searched), rule)


def find_home(start: Path | None = None) -> Path:
    """The store folder the location rule picks from ``start`` (default: the working directory).

    The folder is not created here; a :class:`Store` creates it on its first write.
    """
    return locate(None, start).home


def resolve_home(path: str | os.PathLike[str] | None) -> Path:
    """The store folder a user-given location names (see :func:`locate`)."""
    return locate(path).home
