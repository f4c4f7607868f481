"""Loading a registered model: hash check first, then library check, then deserialise, then a
row in ``model_loads`` naming the consumer, so deletion can wait until consumers have moved.

The order is the security property: no byte reaches a deserialiser before it has been checked
against a digest recorded in the database at registration, and the bytes checked are the bytes
deserialised (no second read of the file). Two paths keep it:

* **Whole file** (skops archives, pickles of fewer than three chunks, versions registered
  before chunk digests were recorded): the artifact is read once into memory and both its BLAKE3
  digest (``object_digests``, when recorded) and its sha256 (its content address, the version's
  ``sha256``) compared before anything is deserialised. A changed artifact raises
  :class:`~nbmlops.errors.ArtifactIntegrityError` and nothing is deserialised.
* **Chunk by chunk** (larger pickles): :mod:`nbmlops.registry._chunked_load` unpickles chunks as
  soon as their recorded BLAKE3 digest matched, while a reader thread verifies the next ones; no
  byte that failed verification is deserialised, and a model is returned only once every chunk
  and the file's exact length matched (that module says what happens when a later chunk fails,
  and what it gains).

Both digests are cryptographic hashes whose recorded values live in the database: the trust
anchor is the same as the sha256's (what someone who can write to the database can do:
:mod:`nbmlops.registry.serialization`). A version registered before nbmlops recorded BLAKE3 or chunk
digests is checked by what it has, and its first recorded load records the missing digests from
the bytes it just verified, so later loads take the fast path.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nbmlops._display import when
from nbmlops.capture import model_formats
from nbmlops.capture.environment import installed_packages, resolve_notebook
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
from nbmlops.registry import _chunked_load, serialization
from nbmlops.registry.model_version import ModelVersion, resolve
from nbmlops.store import Store
from nbmlops.store import registry as sql
from nbmlops.store.objects import ChunkDigests, blake3_hex


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
    """The model ``ref`` names, deserialised only from bytes whose recorded digest matched; see
    :func:`load_version`."""
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

    Every byte is checked against a digest recorded at registration before the deserialiser
    receives it; the model is returned only once the whole artifact (and its exact length) has
    been verified. See the module docstring for the two paths and the trade-off of the chunked
    one.

    ``trusted`` extends skops' default trusted types for skops artifacts. ``allow_pickle=False``
    refuses pickle artifacts outright (for consumers that trust the store's hashes but not its
    authors). ``record=False`` skips the ``model_loads`` row (a read-only store).
    """
    store = mv.store
    events = sql.lifecycle_events(store, mv.name, mv.version)
    deleted = [e for e in events if e.kind == "deleted"]
    if deleted:
        raise ModelNotFoundError(
            mv.ref,
            store.db_path,
            f"it was deleted by {deleted[-1].actor} at {when(deleted[-1].at)}; load "
            f"another version (nbmlops.model_versions({mv.name!r})).",
        )
    if mv.format == serialization.PICKLE and not allow_pickle:
        raise RegistryError(
            f"{mv.ref} is a pickle and allow_pickle=False; a pickle runs code when loaded. "
            "Load it with allow_pickle=True if you trust whoever wrote this store."
        )
    data: bytes | None = None
    if _chunked_load.applies(mv):
        assert mv.chunks is not None
        with _nothing_deserialised(mv):
            stream = store.objects.open_verified(mv.sha256, mv.chunks)  # checks chunk 0
        with stream:
            _warn_libraries(mv)
            model = _chunked_load.unpickle(mv, stream)
    else:
        with _nothing_deserialised(mv):
            data = store.objects.read_verified(mv.sha256, blake3=mv.blake3)
            if mv.blake3 is not None:
                _check_content_address(mv, data)
        _warn_libraries(mv)
        try:
            model = serialization.load_model_bytes(
                data, mv.format, trusted=trusted, model_class=mv.model_class
            )
        except RegistryError as exc:
            if mv.format in model_formats.TORCH_FORMATS:  # its message says what to do with it
                exc.add_note(f"Artifact path: {store.objects.path_of(mv.sha256)}")
            raise
    deprecations = [e for e in events if e.kind == "deprecated"]
    if deprecations:
        reason = json.loads(deprecations[-1].payload or "{}").get("reason")
        warnings.warn(
            f"{mv.ref} is deprecated ({reason}); aliases now: {_alias_text(store, mv.name)}. "
            f"It stays loadable until its consumers have moved (nbmlops.consumers({mv.name!r}, "
            f"{mv.version})).",
            DeprecatedModelWarning,
            stacklevel=3,
        )
    if record:
        # Digests missing for an older version, from bytes whose recorded digest matched just
        # now: they are as trustworthy as that digest.
        digest = blake3_hex(data) if data is not None and mv.blake3 is None else None
        chunks = ChunkDigests.of(data) if data is not None and mv.chunks is None else None
        _record(mv, consumer, digest, chunks)
    return model


def _check_content_address(mv: ModelVersion, data: bytes) -> None:
    """The bytes whose BLAKE3 matched must also be the content their address (the sha256 the
    version names) says: a BLAKE3 record edited along with the file is not enough to get a pickle
    run (issue #13 item 17). About 1 ms per 1.3 MB (sha256 at ~1.4 GB/s)."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != mv.sha256:
        error = ArtifactIntegrityError(mv.sha256, actual, mv.store.objects.path_of(mv.sha256))
        error.add_note(
            "Detected by its sha256 (its content address), although its BLAKE3 digest matched "
            "the one recorded in object_digests: that record was edited too."
        )
        raise error


@contextmanager
def _nothing_deserialised(mv: ModelVersion) -> Iterator[None]:
    """Notes on a failed verification that no byte of ``mv`` reached a deserialiser."""
    try:
        yield
    except (ArtifactIntegrityError, StoreError) as exc:
        exc.add_note(f"Model {mv.ref}: nothing was deserialised.")
        raise


def _warn_libraries(mv: ModelVersion) -> None:
    mismatches = serialization.library_mismatches(mv.libraries, installed_packages())
    if mismatches:
        saved = ", ".join(f"{lib} {want}" for lib, want, _ in mismatches)
        here = ", ".join(f"{lib} {have or 'not installed'}" for lib, _, have in mismatches)
        warnings.warn(
            f"{mv.ref} was saved with {saved}; this environment has {here}. It may fail to load "
            "or predict differently: install the recorded versions, or retrain and register.",
            LibraryVersionWarning,
            stacklevel=4,
        )


def _record(
    mv: ModelVersion, consumer: str | None, blake3: str | None, chunks: ChunkDigests | None
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
        sql.record_load(
            mv.store, load, sha256=mv.sha256, size=mv.size, blake3=blake3, chunks=chunks
        )
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


def _alias_text(store: Store, name: str) -> str:
    current = sql.current_aliases(store, name)
    return ", ".join(f"@{a} -> {v}" for a, v in current.items()) or "none"
