"""The model version record, and the names and references that find one.

A version is immutable (a trigger refuses UPDATE and DELETE on ``model_versions``): the
artifact's sha256 (and its BLAKE3 digests, whole in ``object_digests`` and per chunk in
``object_chunks``), its input signature, the training run, the datasets' fingerprints, the
metrics and library versions at registration, who and when. What can change about a version
(aliases, deprecation, deletion) is read from the append-only ``model_events``.

References: ``"name/3"`` is version 3, ``"name@champion"`` the version the alias points at,
``"name"`` or ``"name@latest"`` the highest version not deleted.

:class:`ModelVersion` is a record: it reads its current state from the store but does nothing
(loading is :func:`nbmlops.registry.loading.load_version`, ``nbm.load_model`` for users).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbmlops._display import size, value, when
from nbmlops.capture.run import Run
from nbmlops.errors import ModelNotFoundError, RegistryError
from nbmlops.store import Store
from nbmlops.store import datasets as dataset_sql
from nbmlops.store import drift as drift_sql
from nbmlops.store import registry as sql
from nbmlops.store.objects import ChunkDigests

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}")
LATEST = "latest"


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model. Immutable; ``aliases``, ``deprecated`` and ``deleted``
    are read from the event log each time they are asked for. Load it with
    ``nbm.load_model(mv.ref)``."""

    name: str
    version: int
    sha256: str
    size: int
    format: str
    model_class: str | None
    run_id: str | None
    signature: dict[str, Any] | None
    datasets: list[dict[str, Any]]
    metrics: dict[str, float]
    libraries: dict[str, str]
    description: str | None
    created_by: str | None
    created_at: float
    store: Store = field(repr=False, compare=False)
    """The store the version is registered in (where its state and artifact are read)."""
    blake3: str | None = field(default=None, repr=False, compare=False)
    """The artifact's BLAKE3 digest, checked when it is loaded (None: registered before nbmlops
    recorded one and not loaded since; loading then checks the sha256)."""
    chunks: ChunkDigests | None = field(default=None, repr=False, compare=False)
    """The BLAKE3 digest of each chunk of the artifact, which lets a load unpickle each chunk
    as soon as it is verified (None: registered before nbmlops recorded them, not loaded since)."""

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.sha256))

    @classmethod
    def from_row(cls, store: Store, row: sql.VersionRow) -> ModelVersion:
        """The version a ``model_versions`` row describes, JSON columns decoded."""
        metrics = json.loads(row.metrics) if row.metrics else {}
        return cls(
            name=str(row.name),
            version=int(row.version),
            sha256=str(row.sha256),
            size=int(row.size),
            format=str(row.format),
            model_class=row.model_class,
            run_id=row.run_id,
            signature=json.loads(row.signature) if row.signature else None,
            datasets=json.loads(row.datasets) if row.datasets else [],
            metrics={k: math.nan if v is None else float(v) for k, v in metrics.items()},
            libraries=json.loads(row.libraries) if row.libraries else {},
            description=row.description,
            created_by=row.created_by,
            created_at=float(row.created_at),
            store=store,
            blake3=row.blake3,
            chunks=None
            if row.chunk_digests is None
            else ChunkDigests(
                int(row.chunk_size or 0), int(row.chunked_size or 0), row.chunk_digests
            ),
        )

    # -- derived views -------------------------------------------------------------------------

    @property
    def ref(self) -> str:
        """``"name/version"``, accepted by every registry function."""
        return f"{self.name}/{self.version}"

    @property
    def created(self) -> dt.datetime:
        """``created_at`` as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.created_at, dt.UTC)

    @property
    def aliases(self) -> list[str]:
        """The aliases that point at this version now."""
        current = sql.current_aliases(self.store, self.name)
        return sorted(a for a, v in current.items() if v == self.version)

    @property
    def deprecation(self) -> dict[str, Any] | None:
        """The latest deprecation (reason, actor, at), or None."""
        found = None
        for event in sql.lifecycle_events(self.store, self.name, self.version):
            if event.kind == "deprecated":
                found = {**json.loads(event.payload or "{}"), "actor": event.actor}
                found["at"] = event.at
        return found

    @property
    def deprecated(self) -> bool:
        """Whether the version was deprecated (it stays loadable, with a warning)."""
        return self.deprecation is not None

    @property
    def deleted(self) -> bool:
        """Whether the version was deleted (loading it is refused)."""
        events = sql.lifecycle_events(self.store, self.name, self.version)
        return any(e.kind == "deleted" for e in events)

    @property
    def status(self) -> str:
        """``active``, ``deprecated`` or ``deleted``."""
        kinds = {e.kind for e in sql.lifecycle_events(self.store, self.name, self.version)}
        return "deleted" if "deleted" in kinds else "deprecated" if kinds else "active"

    @property
    def training_datasets(self) -> list[dict[str, Any]]:
        """The recorded datasets this version was trained on (see :func:`training_datasets`)."""
        return training_datasets(self.signature, self.datasets)

    @property
    def training_data(self) -> dict[str, str]:
        """The saved dataset versions the training run used, as references for
        ``nbm.load_dataset``: each DataFrame it read whose content is a saved version, by the
        variable's name (``{"X_train": "customers@3"}``), and each version it loaded by name
        (``{"customers": "customers@3"}``)."""
        if self.run_id is None:
            return {}
        found: dict[str, str] = {}
        for use in dataset_sql.versions_used_by(self.store, self.run_id):
            if use["how"] == "read":
                found.setdefault(use["variable"], f"{use['name']}@{use['version']}")
            elif use["how"] == "loaded":
                found.setdefault(use["name"], f"{use['name']}@{use['version']}")
        return found

    @property
    def reference_profile_id(self) -> str | None:
        """The drift reference of this version's training data: the profile pinned when it was
        registered, else the newest stored profile of its training data, else None."""
        pinned = sql.registration_payload(self.store, self.name, self.version)
        reference = pinned.get("reference_profile")
        if isinstance(reference, dict) and reference.get("profile_id"):
            return str(reference["profile_id"])
        found = latest_profile(self.store, self.training_datasets)
        return None if found is None else str(found["profile_id"])

    @property
    def params(self) -> dict[str, object]:
        """The training run's params (empty for a model registered without a run)."""
        if self.run_id is None:
            return {}
        return Run(self.store, self.run_id).params

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON-ready values, with the current aliases and status."""
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "blake3": self.blake3,
            "size": self.size,
            "format": self.format,
            "model_class": self.model_class,
            "run_id": self.run_id,
            "signature": self.signature,
            "datasets": self.datasets,
            "metrics": self.metrics,
            "libraries": self.libraries,
            "description": self.description,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "aliases": self.aliases,
            "status": self.status,
        }

    def __repr__(self) -> str:
        cls = (self.model_class or "?").rsplit(".", 1)[-1]
        try:
            extra = "".join(f" @{a}" for a in self.aliases)
            status = self.status
            extra += "" if status == "active" else f" ({status})"
        except Exception:  # a closed store must not break repr
            extra = ""
        run = f" run={self.run_id}" if self.run_id else ""
        return (
            f"<ModelVersion {self.ref} {cls} {self.format} {size(self.size)} "
            f"sha256={self.sha256[:12]}{run}{extra}>"
        )

    def _repr_html_(self) -> str:
        def row(key: str, value: object) -> str:
            return (
                f"<tr><th style='text-align:left'>{html.escape(key)}</th>"
                f"<td style='text-align:left'>{html.escape(str(value))}</td></tr>"
            )

        columns = (self.signature or {}).get("columns") or []
        signature = ", ".join(f"{c['name']}: {c.get('dtype') or '?'}" for c in columns)
        rows = [
            row("model", self.ref),
            row("aliases", ", ".join(self.aliases) or "-"),
            row("status", self.status),
            row("class", self.model_class),
            row("format", f"{self.format}, {size(self.size)}"),
            row("sha256", self.sha256),
            row("blake3", self.blake3 or "- (sha256 checked)"),
            row("run", self.run_id or "-"),
            row("registered", f"{when(self.created_at)} by {self.created_by}"),
            row("signature", signature or (self.signature or {}).get("n_features", "-")),
            *(row(f"metrics.{k}", value(v)) for k, v in self.metrics.items()),
            *(row(f"dataset.{d['name']}", d["fingerprint"]) for d in self.datasets),
            row("libraries", ", ".join(f"{k} {v}" for k, v in self.libraries.items())),
        ]
        if self.description:
            rows.insert(1, row("description", self.description))
        return f"<table>{''.join(rows)}</table>"


def _chunks(row: sql.VersionRow) -> ChunkDigests | None:
    if row.chunk_size is None or row.chunked_size is None or row.chunk_digests is None:
        return None  # registered before chunk digests were recorded, and not loaded since
    return ChunkDigests(int(row.chunk_size), int(row.chunked_size), bytes(row.chunk_digests))


def training_datasets(
    signature: Mapping[str, Any] | None, datasets: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The input DataFrames (or Series) of the training run that the model was trained on: the
    one its signature was matched to (see :func:`nbmlops.registry.registering.signature_of`);
    when the model has no signature at all, every input DataFrame or Series of the run, in
    order; else none (a model trained on arrays, or on columns no recorded dataset has)."""
    source = (signature or {}).get("source")
    inputs = [
        dict(d)
        for d in datasets
        if d.get("role") == "input" and d.get("kind") in ("dataframe", "series")
    ]
    if signature is None:
        return inputs
    return [d for d in inputs if d.get("name") == source]


def latest_profile(store: Store, datasets: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The newest stored drift profile of the first of ``datasets`` that has one."""
    ids = drift_sql.profile_ids_for_datasets(store, [str(d["fingerprint"]) for d in datasets])
    for d in datasets:
        found = ids.get(str(d["fingerprint"]))
        if found:
            return {
                "profile_id": found[0],
                "dataset": d.get("name"),
                "fingerprint": d["fingerprint"],
            }
    return None


# -- names and references -------------------------------------------------------------------


def check_name(name: str) -> str:
    """``name`` if it is a valid model name, else RegistryError saying what is allowed."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RegistryError(
            f"Model name {name!r} is not valid: use letters, digits, '_', '.' and '-' "
            "(up to 128 characters, no '/' or '@', which separate versions and aliases)."
        )
    return name


def check_alias(alias: str) -> str:
    """``alias`` if it is a valid alias name, else RegistryError saying what is allowed."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias) or alias == LATEST:
        raise RegistryError(
            f"Alias {alias!r} is not valid: start with a letter or '_', then letters, digits, "
            f"'_' or '-' (up to 64 characters); {LATEST!r} is reserved for the newest version."
        )
    return alias


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """``"name/3"`` -> (name, 3, None); ``"name@alias"`` -> (name, None, alias); ``"name"`` ->
    (name, None, None)."""
    if not isinstance(ref, str):
        raise TypeError(f"A model reference is a string like 'name/3', not {type(ref).__name__}")
    name, sep, rest = ref.partition("@")
    if sep:
        return check_name(name), None, rest if rest == LATEST else check_alias(rest)
    name, sep, number = ref.partition("/")
    if sep:
        if not number.isdigit():
            raise RegistryError(
                f"Model reference {ref!r} is not valid: use 'name/3', 'name@alias' or 'name'."
            )
        return check_name(name), int(number), None
    return check_name(name), None, None


def resolve(store: Store, ref: str, version: int | None = None) -> ModelVersion:
    """The version ``ref`` names (``version`` overrides a bare name); ModelNotFoundError else."""
    name, number, alias = parse_ref(ref)
    if version is not None:
        if number is not None or alias is not None:
            raise RegistryError(f"Give the version either in {ref!r} or as version=, not both.")
        number = int(version)
    if not sql.model_exists(store, name):
        known = sql.model_names(store)
        hint = (
            f"registered models: {', '.join(known[:10])}" if known else "no model is registered"
        ) + "; register one with nbmlops.register_model(run_id, name)."
        raise ModelNotFoundError(ref, store.db_path, hint)
    if alias is not None and alias != LATEST:
        number = sql.alias_target(store, name, alias)
        if number is None:
            current = sql.current_aliases(store, name)
            shown = ", ".join(f"@{a} -> {v}" for a, v in current.items()) or "none"
            raise ModelNotFoundError(
                ref,
                store.db_path,
                f"{name} has no alias {alias!r} (aliases: {shown}); set it with "
                f"nbmlops.set_alias({name!r}, {alias!r}, version).",
            )
    elif number is None:
        number = sql.latest_live_version(store, name)
        if number is None:
            raise ModelNotFoundError(ref, store.db_path, f"every version of {name} was deleted.")
    row = sql.version_row(store, name, number)
    if row is None:
        versions = sql.version_numbers(store, name)
        raise ModelNotFoundError(
            f"{name}/{number}",
            store.db_path,
            f"{name} has versions {_ranges(versions)}; list them with "
            f"nbmlops.model_versions({name!r}).",
        )
    return ModelVersion.from_row(store, row)


def _ranges(numbers: Sequence[int]) -> str:
    if not numbers:
        return "none"
    if list(numbers) == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
        return f"{numbers[0]}-{numbers[-1]}"
    return ", ".join(str(n) for n in numbers)
