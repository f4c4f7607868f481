"""Loading a registered model: hash check first, then library check, then deserialise, then a
row in ``model_loads`` naming the consumer, so deletion can wait until consumers have moved.

The order is the security property: the bytes are read once into memory and their digest compared
with the one recorded in the database at registration before anything deserialises them, and the
bytes that were checked are the bytes that are deserialised (no second read of the file). A changed
artifact raises :class:`~nbmlops.errors.ArtifactIntegrityError` and nothing is unpickled.

The digest checked is the artifact's BLAKE3 (``object_digests``, recorded at registration), which
this CPU hashes ~3x faster than sha256; a version registered before nbmlops recorded BLAKE3 is
checked by its sha256, and its first recorded load also records the BLAKE3 of those verified
bytes, so later loads are as fast. Both are cryptographic hashes whose recorded value lives in the
database: the trust anchor is the same.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbmlops.capture.liveness import hostname
from nbmlops.errors import (
    ArtifactIntegrityError,
    DeprecatedModelWarning,
    LibraryVersionWarning,
    ModelNotFoundError,
    NbmlopsWarning,
    RegistryError,
    StoreError,
)
from nbmlops.registry import serialization
from nbmlops.registry.versions import ModelVersion, resolve
from nbmlops.store import registry as sql
from nbmlops.store.objects import blake3_hex

if TYPE_CHECKING:
    from nbmlops.store import Store


def load_model(
    store: Store,
    ref: str,
    *,
    version: int | None = None,
    consumer: str | None = None,
    trusted: Sequence[str] | None = None,
    allow_pickle: bool = True,
    record: bool = True,
) -> Any:
    """The model ``ref`` names, deserialised after its hash matched; see :func:`load_version`."""
    return load_version(
        resolve(store, ref, version),
        consumer=consumer,
        trusted=trusted,
        allow_pickle=allow_pickle,
        record=record,
    )


def load_version(
    mv: ModelVersion,
    *,
    consumer: str | None = None,
    trusted: Sequence[str] | None = None,
    allow_pickle: bool = True,
    record: bool = True,
) -> Any:
    """Verify, check libraries, deserialise and record one load of ``mv``.

    ``trusted`` extends skops' default trusted types for skops artifacts. ``allow_pickle=False``
    refuses pickle artifacts outright (for consumers that trust the store's hashes but not its
    authors). ``record=False`` skips the ``model_loads`` row (a read-only store).
    """
    store = mv._store
    events = sql.lifecycle_events(store, mv.name, mv.version)
    deleted = [e for e in events if e["kind"] == "deleted"]
    if deleted:
        raise ModelNotFoundError(
            mv.ref,
            store.db_path,
            f"it was deleted by {deleted[-1]['actor']} at {_when(deleted[-1]['at'])}; load "
            f"another version (nbmlops.model_versions({mv.name!r})).",
        )
    if mv.format == serialization.PICKLE and not allow_pickle:
        raise RegistryError(
            f"{mv.ref} is a pickle and allow_pickle=False; a pickle runs code when loaded. "
            "Load it with allow_pickle=True if you trust whoever wrote this store."
        )
    try:
        data = store.objects.read_verified(mv.sha256, blake3=mv.blake3)
    except ArtifactIntegrityError as exc:
        exc.add_note(f"Model {mv.ref}: nothing was deserialised.")
        raise
    mismatches = serialization.library_mismatches(mv.libraries, _installed())
    if mismatches:
        saved = ", ".join(f"{lib} {want}" for lib, want, _ in mismatches)
        here = ", ".join(f"{lib} {have or 'not installed'}" for lib, _, have in mismatches)
        warnings.warn(
            f"{mv.ref} was saved with {saved}; this environment has {here}. It may fail to load "
            "or predict differently: install the recorded versions, or retrain and register.",
            LibraryVersionWarning,
            stacklevel=3,
        )
    model = serialization.load_model_bytes(data, mv.format, trusted=trusted)
    deprecations = [e for e in events if e["kind"] == "deprecated"]
    if deprecations:
        import json

        reason = json.loads(deprecations[-1]["payload"] or "{}").get("reason")
        warnings.warn(
            f"{mv.ref} is deprecated ({reason}); aliases now: {_alias_text(store, mv.name)}. "
            f"It stays loadable until its consumers have moved (nbmlops.consumers({mv.name!r}, "
            f"{mv.version})).",
            DeprecatedModelWarning,
            stacklevel=3,
        )
    if record:
        # Bytes whose sha256 matched just now: their BLAKE3 is as trustworthy as that sha256.
        digest = None if mv.blake3 is not None else (mv.sha256, blake3_hex(data), mv.size)
        _record(store, mv, consumer, digest)
    return model


def _record(
    store: Store, mv: ModelVersion, consumer: str | None, digest: tuple[str, str, int] | None
) -> None:
    load = {
        "name": mv.name,
        "version": mv.version,
        "consumer": consumer or current_consumer(),
        "host": hostname(),
        "pid": os.getpid(),
        "at": time.time(),
    }
    try:
        sql.record_load(store, load, digest)
    except StoreError as exc:
        # The model is loaded; failing here would hide it. Deletion protection cannot see this
        # consumer, which the warning says.
        warnings.warn(
            f"{mv.ref} was loaded but the load could not be recorded ({exc}); "
            "delete_model_version will not know about this consumer.",
            NbmlopsWarning,
            stacklevel=4,
        )


def current_consumer() -> str:
    """Who is loading: the notebook's path (``JPY_SESSION_NAME``, VS Code's
    ``__vsc_ipynb_file__``, ``NBMLOPS_NOTEBOOK``), else the script, else ``python -c`` or
    ``<interactive>``."""
    from nbmlops.capture.cell import resolve_notebook

    vscode = None
    if "IPython" in sys.modules:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            vscode = shell.user_ns.get("__vsc_ipynb_file__")
    notebook = resolve_notebook(os.environ.get("JPY_SESSION_NAME"), vscode)
    if notebook:
        return notebook
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 == "-c":
        return "python -c"
    if not argv0 or argv0 == "-":
        return "<interactive>"
    path = Path(argv0)
    return str(path.resolve()) if path.exists() else argv0


def _installed() -> dict[str, str]:
    from nbmlops.capture.environment import installed_packages

    return installed_packages()


def _alias_text(store: Store, name: str) -> str:
    current = sql.current_aliases(store, name)
    return ", ".join(f"@{a} -> {v}" for a, v in current.items()) or "none"


def _when(at: float) -> str:
    import datetime as dt

    return f"{dt.datetime.fromtimestamp(at, dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
