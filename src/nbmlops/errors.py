"""Exceptions raised by nbmlops.

Every error derives from :class:`NbmlopsError`, so ``except nbmlops.NbmlopsError`` catches
anything this package raises on purpose. Messages name the object, what was wrong and what to do;
the offending value is kept as an attribute.

    NbmlopsError
    ├── StoreError                  the metadata store cannot be used
    │   ├── StoreCorruptError       the file at the store path is not an nbmlops SQLite store
    │   └── StoreLockedError        another process held the write lock past the busy timeout
    ├── NotFoundError               a record asked for by id or name does not exist
    │   └── RunNotFoundError
    ├── AmbiguousIdError            an id prefix matches more than one record
    ├── FilterSyntaxError           a run filter could not be parsed (points at the token)
    ├── ReadOnlyQueryError          ``nbmlops.sql`` was given a statement that writes
    ├── NoActiveRunError            a ``log_*`` call outside ``start_run``
    └── ArtifactIntegrityError      a stored object no longer matches its recorded hash
"""

from __future__ import annotations

from pathlib import Path


class NbmlopsError(Exception):
    """Base class of every error nbmlops raises on purpose."""


class StoreError(NbmlopsError):
    """The metadata store cannot be opened or written."""

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.path = path


class StoreCorruptError(StoreError):
    """The file at the store path is not a usable nbmlops store; it is left untouched."""


class StoreLockedError(StoreError):
    """Another process kept the store locked for longer than the busy timeout."""


class NotFoundError(NbmlopsError):
    """A record asked for by id or name does not exist."""


class RunNotFoundError(NotFoundError):
    def __init__(self, run_id: str, store_path: Path | str) -> None:
        super().__init__(
            f"Run {run_id!r} not found in store {store_path}; list runs with nbmlops.runs() "
            "or `nbmlops runs`."
        )
        self.run_id = run_id
        self.store_path = store_path


class AmbiguousIdError(NbmlopsError):
    def __init__(self, prefix: str, matches: list[str]) -> None:
        shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
        super().__init__(
            f"Run id prefix {prefix!r} matches {len(matches)} runs ({shown}); give more characters."
        )
        self.prefix = prefix
        self.matches = matches


class FilterSyntaxError(NbmlopsError):
    """A filter expression is malformed; ``position`` is the 0-based offset of the bad token."""

    def __init__(self, message: str, text: str, position: int) -> None:
        caret = " " * position + "^"
        super().__init__(f"{message} at position {position} in filter:\n  {text}\n  {caret}")
        self.reason = message
        self.text = text
        self.position = position


class ReadOnlyQueryError(NbmlopsError):
    def __init__(self, query: str, reason: str) -> None:
        super().__init__(
            f"nbmlops.sql only reads the store: {reason}. Query was: {query.strip()[:200]!r}"
        )
        self.query = query


class NoActiveRunError(NbmlopsError):
    def __init__(self, action: str) -> None:
        super().__init__(
            f"{action} needs an active run; wrap the code in `with nbmlops.start_run():` "
            "or put %%track on the cell."
        )
        self.action = action


class ArtifactIntegrityError(NbmlopsError):
    def __init__(self, digest: str, actual: str, path: Path) -> None:
        super().__init__(
            f"Stored object {path} was changed after it was recorded: expected sha256 {digest}, "
            f"found {actual}. It was not loaded; restore the file or log it again."
        )
        self.digest = digest
        self.actual = actual
        self.path = path
