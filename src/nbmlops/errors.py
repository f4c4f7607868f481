"""Exceptions raised by nbmlops.

Every error derives from :class:`NbmlopsError`, so ``except nbmlops.NbmlopsError`` catches
anything this package raises on purpose. Messages name the object, what was wrong and what to do;
the offending value is kept as an attribute.

    NbmlopsError
    ├── StoreError                  the metadata store cannot be used
    │   ├── StoreCorruptError       the file at the store path is not an nbmlops SQLite store
    │   ├── StoreLockedError        another process held the write lock past the busy timeout
    │   ├── StoreNotFoundError      reading found no store where it looked (``searched``)
    │   └── StoreReadOnlyError      a write to a store this process can only read
    ├── NotFoundError               a record asked for by id or name does not exist
    │   └── RunNotFoundError
    ├── AmbiguousIdError            an id prefix matches more than one record
    ├── FilterSyntaxError           a run filter could not be parsed (points at the token)
    ├── ReadOnlyQueryError          ``nbmlops.sql`` was given a statement that writes
    ├── NoActiveRunError            a ``log_*`` call outside ``start_run``
    ├── InvalidValueError           a logged value the store cannot hold (a ValueError too)
    ├── ArtifactIntegrityError      a stored object no longer matches its recorded hash
    ├── RegistryError               a registry operation is refused
    │   ├── ModelNotFoundError      no such model, version or alias (a NotFoundError too)
    │   ├── ModelInUseError         delete refused: an alias points at it or it was loaded lately
    │   └── RulesFileError          nbmlops.toml is malformed (``line`` says where)
    ├── DatasetError                a data-versioning operation is refused (names the dataset)
    │   ├── DatasetNotFoundError    no such dataset or version (lists the known ones)
    │   └── DatasetTamperedError    a version's files no longer match what was saved
    ├── EvaluationError             a model cannot be evaluated on the data given (a ValueError too)
    ├── SyncError                   a push to an MLflow tracking server failed or was refused
    ├── ServingError                a model server could not start (port taken, load failed)
    ├── NotFittedError              a detector used before ``fit`` (a ValueError too)
    └── DriftInputError             reference/current data that cannot be compared (names columns)

Warnings: ``NbmlopsWarning`` and below it ``DeprecatedModelWarning`` (loading a deprecated model
version), ``LibraryVersionWarning`` (a model saved with other library versions),
``AlreadyRegisteredWarning`` (the same model registered again: the existing version returned)
and ``UnknownKeyWarning`` (a run filter names a key no run has).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


class NbmlopsError(Exception):
    """Base class of every error nbmlops raises on purpose.

    In IPython and Jupyter it shows as its message alone: the message already says what was wrong
    and what to do, and the frames inside nbmlops below the user's call would only bury it.
    """

    def _render_traceback_(self) -> list[str]:
        """IPython's hook for exceptions that format themselves (see ``showtraceback``)."""
        return [f"{type(self).__name__}: {self}"]


class StoreError(NbmlopsError):
    """The metadata store cannot be opened or written."""

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.path = path


class StoreCorruptError(StoreError):
    """The file at the store path is not a usable nbmlops store; it is left untouched."""


class StoreLockedError(StoreError):
    """Another process kept the store locked for longer than the busy timeout."""


class StoreNotFoundError(StoreError):
    """Reading found no store, and created none: ``searched`` lists the store files looked for,
    nearest first; ``rule`` says how they were chosen."""

    def __init__(self, searched: Sequence[Path], rule: str) -> None:
        shown = ", ".join(str(p) for p in searched[:2])
        if len(searched) > 2:
            shown += f" and {len(searched) - 2} more up to {searched[-1]}"
        super().__init__(
            f"No nbmlops store found ({rule}): looked for {shown}. Nothing was created; record "
            "a run first (%%track or nbmlops.start_run()), or name an existing store with "
            "store=, --store or NBMLOPS_HOME.",
            searched[0] if searched else None,
        )
        self.searched = list(searched)
        self.rule = rule


class StoreReadOnlyError(StoreError):
    """A write was asked of a store this process can only read (its file, its folder or its
    file system is not writable); reads of it still work."""


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
        # A long filter is shown as the 100 characters around the bad token, so the caret stays
        # on screen under it.
        start = max(0, min(position - 50, len(text) - 100))
        shown = ("..." if start else "") + text[start : start + 100]
        shown += "..." if start + 100 < len(text) else ""
        caret = " " * (position - start + (3 if start else 0)) + "^"
        super().__init__(f"{message} at position {position} in filter:\n  {shown}\n  {caret}")
        self.reason = message
        self.text = text
        self.position = position


class ReadOnlyQueryError(NbmlopsError):
    def __init__(self, query: str, reason: str) -> None:
        super().__init__(
            f"nbmlops.sql only reads the store: {reason}. Query was: {query.strip()[:200]!r}"
        )
        self.query = query


class InvalidValueError(NbmlopsError, ValueError):
    """A value given to ``log_*`` that the store cannot hold (a lone surrogate, an integer too
    large for a float, a step out of range), refused when it is logged rather than failing the
    run's write at its end; ``what`` names the value and ``problem`` says what is wrong."""

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(f"{what} cannot be stored: {problem}. Nothing was logged for it.")
        self.what = what
        self.problem = problem


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


class RegistryError(NbmlopsError):
    """A model registry operation was refused."""


class ModelNotFoundError(RegistryError, NotFoundError):
    def __init__(self, reference: str, store_path: Path | str, hint: str = "") -> None:
        super().__init__(
            f"Model {reference!r} not found in store {store_path}"
            + (f"; {hint}" if hint else "; list models with nbmlops.models() or `nbmlops models`.")
        )
        self.reference = reference
        self.store_path = store_path


class ModelInUseError(RegistryError):
    def __init__(self, message: str, name: str, version: int) -> None:
        super().__init__(message)
        self.name = name
        self.version = version


class RulesFileError(RegistryError):
    """The rules file is malformed; ``path`` and ``line`` (1-based, or None) say where."""

    def __init__(self, message: str, path: Path | str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.reason = message
        self.path = path
        self.line = line


class DatasetError(NbmlopsError):
    """A data-versioning operation was refused; ``name`` is the dataset concerned."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


class DatasetNotFoundError(DatasetError, NotFoundError):
    """No dataset or version answers ``reference``; ``known`` lists what there is."""

    def __init__(self, reference: str, known: Sequence[str], what: str = "dataset") -> None:
        shown = ", ".join(known[:20]) + (f", ... ({len(known)} in all)" if len(known) > 20 else "")
        super().__init__(
            f"No {what} {reference!r}; "
            + (f"known: {shown}." if known else "none saved yet (nbmlops.save_dataset)."),
            reference.split("@", 1)[0],
        )
        self.reference = reference
        self.known = list(known)


class DatasetTamperedError(DatasetError):
    """A file of a saved version changed or vanished after nbmlops wrote it; nothing is read or
    overwritten. ``files`` lists the paths that differ."""

    def __init__(self, name: str, version: int, files: Sequence[str], location: str) -> None:
        listed = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        super().__init__(
            f"Dataset {name!r} version {version}: {len(files)} file(s) under {location} no longer "
            f"match what was saved ({listed}); the table was changed outside nbmlops. Nothing was "
            "read or overwritten; restore the files or save the data again as a new dataset.",
            name,
        )
        self.version = version
        self.files = list(files)
        self.location = location


class EvaluationError(NbmlopsError, ValueError):
    """A model cannot be evaluated on the data given (no ``predict``, X and y of different
    lengths, a column the model needs missing, an unknown task or metric); the message names
    what was wrong and what to do, ``value`` keeps the offending value."""

    def __init__(self, message: str, value: object = None) -> None:
        super().__init__(message)
        self.value = value


class FeatureError(NbmlopsError, ValueError):
    """A feature store operation was refused (a definition, a feature reference, an entity frame
    or a join that cannot be done as asked); the message names the view or feature, what was
    wrong and what to do. ``view`` is the view concerned (or None), ``value`` the offending value.
    """

    def __init__(self, message: str, view: str | None = None, value: object = None) -> None:
        super().__init__(message)
        self.view = view
        self.value = value


class EntityKeyError(FeatureError):
    """An entity row cannot be looked up online: a key column missing or unknown, or a key
    value of another kind (a number for text keys, or text for number keys) than the view was
    materialised with, which would silently find nothing. A client's error (400 when served)."""


class SyncError(NbmlopsError):
    """A push to (or pull from) an MLflow tracking server failed or was refused.

    ``server`` is the server's base URL, ``call`` the REST call that failed (``POST
    runs/log-batch``), ``status`` its HTTP status (None: no answer), ``code`` MLflow's
    ``error_code`` when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        server: str,
        call: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.server = server
        self.call = call
        self.status = status
        self.code = code


class ServingError(NbmlopsError):
    """A model server could not start: its port could not be bound, or the version it was to
    serve failed to load or to pass its self-test (the message says which and why)."""


class NotFittedError(NbmlopsError, ValueError):
    def __init__(self, detector: str) -> None:
        super().__init__(
            f"This {detector} is not fitted yet; call fit(reference) before check(current)."
        )
        self.detector = detector


class DriftInputError(NbmlopsError, ValueError):
    """Reference and current data cannot be compared; ``columns`` names the culprits."""

    def __init__(self, message: str, columns: list[str] | None = None) -> None:
        super().__init__(message)
        self.columns = columns or []


class NbmlopsWarning(UserWarning):
    """Base class of the warnings nbmlops emits."""


class DeprecatedModelWarning(NbmlopsWarning):
    """A deprecated model version was loaded."""


class LibraryVersionWarning(NbmlopsWarning):
    """A model was saved with library versions other than the ones installed."""


class AlreadyRegisteredWarning(NbmlopsWarning):
    """A model was registered again under the same name with the same content; the existing
    version is returned and no new one is made."""


class DuplicateFeatureWarning(NbmlopsWarning):
    """A feature view was defined with the definition (fingerprint) of a view recorded under
    another name: the same feature twice, under two names. ``view`` is the new name,
    ``existing`` the names (``name@version``) it duplicates."""

    def __init__(self, message: str, view: str, existing: list[str]) -> None:
        super().__init__(message)
        self.view = view
        self.existing = existing


class UnknownKeyWarning(NbmlopsWarning):
    """A run filter names a param, metric or tag key that no run in the store has (a typo,
    most likely). ``unknown`` maps each such field to the nearest keys the store does have;
    one warning covers every unknown key of a filter."""

    def __init__(self, unknown: Mapping[str, Sequence[str]]) -> None:
        def hint(nearest: Sequence[str]) -> str:
            return f"did you mean {' or '.join(nearest)}?" if nearest else "no key is close to it"

        fields = list(unknown)
        if len(fields) == 1:
            message = f"No run has {fields[0]}, which the filter names; {hint(unknown[fields[0]])}"
        else:
            listed = "; ".join(f"{f} ({hint(unknown[f])})" for f in fields[:5])
            more = f"; and {len(fields) - 5} more" if len(fields) > 5 else ""
            message = f"No run has these {len(fields)} keys the filter names: {listed}{more}"
        super().__init__(message)
        self.unknown = {f: list(near) for f, near in unknown.items()}
