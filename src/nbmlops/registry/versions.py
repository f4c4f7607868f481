"""Model versions: registering a model (from a run or a live object) and reading versions back.

A version is immutable (a trigger refuses UPDATE and DELETE on ``model_versions``): the
artifact's sha256 (and its BLAKE3 digests, whole in ``object_digests`` and per chunk in
``object_chunks``), its input signature, the training run, the datasets' fingerprints, the
metrics and library versions at registration, who and when. What can change about a version
(aliases, deprecation, deletion) is read from the append-only ``model_events``.

References: ``"name/3"`` is version 3, ``"name@champion"`` the version the alias points at,
``"name"`` or ``"name@latest"`` the highest version not deleted.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import numbers
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from nbmlops.capture.liveness import hostname
from nbmlops.capture.run import Run, active_run_ids, find_run
from nbmlops.errors import ModelNotFoundError, RegistryError
from nbmlops.registry import serialization
from nbmlops.store import registry as sql
from nbmlops.store.objects import ChunkDigests, blake3_hex

if TYPE_CHECKING:
    import pandas as pd

    from nbmlops.store import Store

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}")
LATEST = "latest"


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model. Immutable; ``aliases``, ``deprecated`` and ``deleted``
    are read from the event log each time they are asked for."""

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
    _store: Store = field(repr=False, compare=False)
    blake3: str | None = field(default=None, repr=False, compare=False)
    """The artifact's BLAKE3 digest, checked by ``load`` (None: registered before nbmlops
    recorded one and not loaded since; ``load`` then checks the sha256)."""
    chunks: ChunkDigests | None = field(default=None, repr=False, compare=False)
    """The BLAKE3 digest of each chunk of the artifact, which lets ``load`` unpickle each chunk
    as soon as it is verified (None: registered before nbmlops recorded them, not loaded since)."""

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.sha256))

    @classmethod
    def from_row(cls, store: Store, row: Mapping[str, Any]) -> ModelVersion:
        metrics = json.loads(row["metrics"]) if row["metrics"] else {}
        return cls(
            name=str(row["name"]),
            version=int(row["version"]),
            sha256=str(row["sha256"]),
            size=int(row["size"]),
            format=str(row["format"]),
            model_class=row["class"],
            run_id=row["run_id"],
            signature=json.loads(row["signature"]) if row["signature"] else None,
            datasets=json.loads(row["datasets"]) if row["datasets"] else [],
            metrics={k: math.nan if v is None else float(v) for k, v in metrics.items()},
            libraries=json.loads(row["libraries"]) if row["libraries"] else {},
            description=row["description"],
            created_by=row["created_by"],
            created_at=float(row["created_at"]),
            _store=store,
            blake3=row.get("blake3"),
            chunks=None
            if row.get("chunk_digests") is None
            else ChunkDigests(
                int(row["chunk_size"]), int(row["chunked_size"]), bytes(row["chunk_digests"])
            ),
        )

    # -- derived views -------------------------------------------------------------------------

    @property
    def ref(self) -> str:
        """``"name/version"``, accepted by every registry function."""
        return f"{self.name}/{self.version}"

    @property
    def created(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.created_at, dt.UTC)

    @property
    def aliases(self) -> list[str]:
        """The aliases that point at this version now."""
        current = sql.current_aliases(self._store, self.name)
        return sorted(a for a, v in current.items() if v == self.version)

    @property
    def deprecation(self) -> dict[str, Any] | None:
        """The latest deprecation (reason, actor, at), or None."""
        found = None
        for event in sql.lifecycle_events(self._store, self.name, self.version):
            if event["kind"] == "deprecated":
                found = {**json.loads(event["payload"] or "{}"), "actor": event["actor"]}
                found["at"] = event["at"]
        return found

    @property
    def deprecated(self) -> bool:
        return self.deprecation is not None

    @property
    def deleted(self) -> bool:
        events = sql.lifecycle_events(self._store, self.name, self.version)
        return any(e["kind"] == "deleted" for e in events)

    @property
    def status(self) -> str:
        """``active``, ``deprecated`` or ``deleted``."""
        kinds = {e["kind"] for e in sql.lifecycle_events(self._store, self.name, self.version)}
        return "deleted" if "deleted" in kinds else "deprecated" if kinds else "active"

    @property
    def training_datasets(self) -> list[dict[str, Any]]:
        """The recorded datasets this version was trained on (see :func:`training_datasets`)."""
        return training_datasets(self.signature, self.datasets)

    @property
    def reference_profile_id(self) -> str | None:
        """The drift reference of this version's training data: the profile pinned when it was
        registered, else the newest stored profile of its training data, else None."""
        pinned = sql.registration_payload(self._store, self.name, self.version)
        reference = pinned.get("reference_profile")
        if isinstance(reference, dict) and reference.get("profile_id"):
            return str(reference["profile_id"])
        found = _latest_profile(self._store, self.training_datasets)
        return None if found is None else str(found["profile_id"])

    @property
    def params(self) -> dict[str, object]:
        """The training run's params (empty for a model registered without a run)."""
        if self.run_id is None:
            return {}
        return Run(self._store, self.run_id).params

    def load(self, *, consumer: str | None = None, trusted: Sequence[str] | None = None) -> Any:
        """Load this version (hash verified first); see :func:`nbmlops.registry.load_model`."""
        from nbmlops.registry.loading import load_version

        return load_version(self, consumer=consumer, trusted=trusted)

    def to_dict(self) -> dict[str, Any]:
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
            f"<ModelVersion {self.ref} {cls} {self.format} {_size(self.size)} "
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
            row("format", f"{self.format}, {_size(self.size)}"),
            row("sha256", self.sha256),
            row("blake3", self.blake3 or "- (sha256 checked)"),
            row("run", self.run_id or "-"),
            row("registered", f"{self.created:%Y-%m-%d %H:%M:%S} UTC by {self.created_by}"),
            row("signature", signature or (self.signature or {}).get("n_features", "-")),
            *(row(f"metrics.{k}", round(v, 6)) for k, v in self.metrics.items()),
            *(row(f"dataset.{d['name']}", d["fingerprint"]) for d in self.datasets),
            row("libraries", ", ".join(f"{k} {v}" for k, v in self.libraries.items())),
        ]
        if self.description:
            rows.insert(1, row("description", self.description))
        return f"<table>{''.join(rows)}</table>"


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1e3:.1f} kB"
    return f"{n / 1e6:.1f} MB"


# -- names and references -------------------------------------------------------------------


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RegistryError(
            f"Model name {name!r} is not valid: use letters, digits, '_', '.' and '-' "
            "(up to 128 characters, no '/' or '@', which separate versions and aliases)."
        )
    return name


def check_alias(alias: str) -> str:
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
    if sql.model_row(store, name) is None:
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


# -- registering ----------------------------------------------------------------------------


def register(
    store: Store,
    source: object,
    name: str,
    description: str | None = None,
    *,
    artifact: str | None = None,
    format: str = "auto",
) -> ModelVersion:
    """Register a run's model (``source``: a run id, prefix or Run) or a live model object."""
    check_name(name)
    if format not in (*serialization.FORMATS, "auto"):
        raise ValueError(f"format must be auto, skops or pickle, not {format!r}")
    if isinstance(source, str):
        return _register_run(store, find_run(store, source), name, description, artifact, format)
    if isinstance(source, Run):
        if source.store.home != store.home:
            raise RegistryError(
                f"Run {source.run_id} is in the store {source.store.home}, not {store.home}; "
                "register it in its own store (leave store= out)."
            )
        return _register_run(store, source, name, description, artifact, format)
    if artifact is not None:
        raise RegistryError("artifact= names a model logged by a run; pass a run id with it.")
    return _register_object(store, source, name, description, format)


def _register_run(
    store: Store,
    run: Run,
    name: str,
    description: str | None,
    artifact: str | None,
    format: str,
) -> ModelVersion:
    models = [a for a in run.artifacts if a["kind"] == "model"]
    if not models and run.run_id not in active_run_ids() and run.status == "running":
        raise RegistryError(
            f"Run {run.run_id} is still running in another process; what it logs is written "
            "when it ends (or every few seconds). Register it after it has ended."
        )
    chosen = _choose_artifact(run.run_id, models, artifact)
    meta: dict[str, Any] = chosen.get("meta") or {}
    source_format = str(meta.get("format", serialization.PICKLE))
    # The artifact is this store's own, checked against the hash log_model recorded: reading it
    # back is what load_model would do (see the trust model in serialization.py).
    data = store.objects.read_verified(chosen["sha256"])
    globals_: set[str] = set()
    if source_format == serialization.PICKLE:
        model, globals_ = serialization.unpickle_with_globals(data)
    else:
        model = serialization.load_model_bytes(data, source_format)
    stored, stored_format = data, source_format
    if format == serialization.PICKLE and source_format != serialization.PICKLE:
        stored, stored_format, globals_ = _serialise(model, serialization.PICKLE)
    elif format != serialization.PICKLE and source_format == serialization.PICKLE:
        converted = serialization.to_skops(model, data, globals_)
        if converted is not None:
            stored, stored_format = converted, serialization.SKOPS
        elif format == serialization.SKOPS:
            serialization.dump_model(model, format=serialization.SKOPS)  # raises, with the reason
    if stored is data:
        sha256, size = str(chosen["sha256"]), int(chosen["size"])
    else:
        sha256, size = store.objects.put_bytes(stored)
    # Of the bytes just verified or written: as trusted as the sha256.
    digest, chunks = blake3_hex(stored), ChunkDigests.of(stored)
    environment = run.environment or {}
    packages = environment.get("packages") or _installed()  # what the run was trained with
    recorded = {"python": environment["python"]} if environment.get("python") else {}
    recorded.update(meta.get("libraries") or {})
    datasets = run.datasets
    libraries = serialization.libraries_for(
        globals_, packages, recorded=recorded, format=stored_format
    )
    row = _row(
        name,
        sha256,
        digest,
        chunks,
        size,
        stored_format,
        str(meta.get("class") or _class_name(model)),
        run.run_id,
        signature_of(model, datasets),
        [
            {
                "role": d["role"],
                "name": d["name"],
                "fingerprint": d["dataset_id"],
                "kind": d.get("kind"),
                "n_rows": d.get("n_rows"),
                "n_columns": d.get("n_columns"),
            }
            for d in datasets
        ],
        run.metrics,
        libraries,
        description,
    )
    source = {
        "run_id": run.run_id,
        "artifact": chosen["name"],
        "sha256": chosen["sha256"],
        "format": source_format,
    }
    payload: dict[str, Any] = {"source": source, "format": stored_format}
    signature = json.loads(row["signature"]) if row["signature"] else None
    reference = _latest_profile(store, training_datasets(signature, json.loads(row["datasets"])))
    if reference is not None:  # pinned: later profiles of the same data do not move it
        payload["reference_profile"] = reference
    return _insert(store, row, payload, description)


def training_datasets(
    signature: Mapping[str, Any] | None, datasets: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The input DataFrames (or Series) of the training run that the model was trained on: the
    one its signature was matched to (see :func:`signature_of`); when the model has no signature
    at all, every input DataFrame or Series of the run, in order; else none (a model trained on
    arrays, or on columns no recorded dataset has)."""
    source = (signature or {}).get("source")
    inputs = [
        dict(d)
        for d in datasets
        if d.get("role") == "input" and d.get("kind") in ("dataframe", "series")
    ]
    if signature is None:
        return inputs
    return [d for d in inputs if d.get("name") == source]


def _latest_profile(store: Store, datasets: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The newest stored drift profile of the first of ``datasets`` that has one."""
    from nbmlops.store import drift as drift_sql

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


def _choose_artifact(
    run_id: str, models: list[dict[str, Any]], artifact: str | None
) -> dict[str, Any]:
    names = [a["name"] for a in models]
    if artifact is not None:
        for candidate in models:
            if candidate["name"] == artifact:
                return candidate
        raise RegistryError(
            f"Run {run_id} logged no model named {artifact!r}; its models: "
            f"{', '.join(names) or 'none'}."
        )
    if not models:
        raise RegistryError(
            f"Run {run_id} logged no model; log one with nbmlops.log_model(model, 'name') or "
            "fit a scikit-learn estimator in a %%track cell."
        )
    if len(models) > 1:
        raise RegistryError(
            f"Run {run_id} logged {len(models)} models ({', '.join(names)}); choose one with "
            f"artifact=, e.g. register_model({run_id!r}, name, artifact={names[0]!r})."
        )
    return models[0]


def _register_object(
    store: Store, model: object, name: str, description: str | None, format: str
) -> ModelVersion:
    data, stored_format, globals_ = _serialise(model, format)
    sha256, size = store.objects.put_bytes(data)
    libraries = serialization.libraries_for(globals_, _installed(), format=stored_format)
    row = _row(
        name,
        sha256,
        blake3_hex(data),
        ChunkDigests.of(data),
        size,
        stored_format,
        _class_name(model),
        None,
        signature_of(model, []),
        [],
        {},
        libraries,
        description,
    )
    return _insert(store, row, {"source": {"object": _class_name(model)}}, description)


def _serialise(model: object, format: str) -> tuple[bytes, str, set[str]]:
    import pickle

    pickled = pickle.dumps(model, protocol=serialization.PICKLE_PROTOCOL)
    globals_ = serialization.pickle_globals(pickled)
    if format != serialization.PICKLE:
        converted = serialization.to_skops(model, pickled, globals_)
        if converted is not None:
            return converted, serialization.SKOPS, globals_
        if format == serialization.SKOPS:
            serialization.dump_model(model, format=serialization.SKOPS)  # raises, with the reason
    return pickled, serialization.PICKLE, globals_


def _row(
    name: str,
    sha256: str,
    blake3: str,
    chunks: ChunkDigests,
    size: int,
    format: str,
    model_class: str,
    run_id: str | None,
    signature: dict[str, Any] | None,
    datasets: list[dict[str, Any]],
    metrics: Mapping[str, float],
    libraries: dict[str, str],
    description: str | None,
) -> dict[str, Any]:
    return {
        "name": name,
        "sha256": sha256,
        "blake3": blake3,  # goes to object_digests, not model_versions
        "chunks": chunks,  # goes to object_chunks
        "size": size,
        "format": format,
        "class": model_class,
        "run_id": run_id,
        "signature": None if signature is None else json.dumps(signature),
        "datasets": json.dumps(datasets),
        # NaN is stored as null, as in the metrics table.
        "metrics": json.dumps({k: None if math.isnan(v) else v for k, v in metrics.items()}),
        "libraries": json.dumps(libraries),
        "description": description,
        "created_by": current_user(),
        "created_at": time.time(),
    }


def _insert(
    store: Store, row: dict[str, Any], payload: dict[str, Any], description: str | None
) -> ModelVersion:
    event = {"payload": payload, "actor": row["created_by"], "host": hostname(), "at": time.time()}
    stored, created = sql.register_version(store, row, event, description)
    version = ModelVersion.from_row(store, stored)
    if not created and version.deleted:
        raise RegistryError(
            f"This artifact (sha256 {row['sha256'][:12]}) is {version.ref}, which was deleted; "
            "a deleted version cannot come back. Register it under another name."
        )
    return version


def _class_name(model: object) -> str:
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


def signature_of(model: object, datasets: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Input columns and dtypes: the model's ``feature_names_in_`` matched against the schema of
    the run's input datasets (the one with exactly those columns, else the narrowest that has
    them all); names only when no dataset matches; the feature count when there are no names."""
    names_attr = getattr(model, "feature_names_in_", None)
    count = getattr(model, "n_features_in_", None)
    names = [str(n) for n in list(names_attr)] if names_attr is not None else []
    n_features = int(count) if isinstance(count, numbers.Integral) else len(names) or None
    if names:
        inputs = [
            d for d in datasets if d.get("role") == "input" and isinstance(d.get("schema"), dict)
        ]
        # Exactly the model's columns first, then the narrowest superset; among equals, a name
        # saying "train", then the most rows (evaluation sets share the schema).
        covering = sorted(
            (d for d in inputs if set(names) <= set(d["schema"])),
            key=lambda d: (
                list(d["schema"]) != names,
                len(d["schema"]),
                "train" not in str(d.get("name", "")).lower(),
                -(d.get("n_rows") or 0),
            ),
        )
        if covering:
            match = covering[0]
            columns = [{"name": n, "dtype": match["schema"][n]} for n in names]
            return {"columns": columns, "n_features": len(names), "source": match["name"]}
        columns = [{"name": n, "dtype": None} for n in names]
        return {"columns": columns, "n_features": len(names), "source": "feature_names_in_"}
    if n_features is not None:
        return {"columns": None, "n_features": n_features, "source": "n_features_in_"}
    return None


def _installed() -> dict[str, str]:
    from nbmlops.capture.environment import installed_packages

    return installed_packages()


@cache
def current_user() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


# -- listings -------------------------------------------------------------------------------


def models_frame(store: Store) -> pd.DataFrame:
    """One row per model: name, latest version, versions, aliases, description, created,
    updated (the last event)."""
    import pandas as pd

    rows = sql.models_overview(store)
    aliases = sql.all_current_aliases(store)
    frame = pd.DataFrame(
        {
            "name": [r["name"] for r in rows],
            "latest_version": pd.array([r["latest_version"] for r in rows], dtype="Int64"),
            "versions": [int(r["versions"]) for r in rows],
            "aliases": [_alias_text(aliases.get(r["name"], {})) for r in rows],
            "description": [r["description"] for r in rows],
            "created_at": _times([r["created_at"] for r in rows]),
            "updated_at": _times([r["updated_at"] for r in rows]),
        }
    )
    return frame


def versions_frame(store: Store, name: str) -> pd.DataFrame:
    """Every version of ``name``: version, created, aliases, status, class, format, size,
    sha256, run, creator, description, then one ``metrics.<k>`` column per metric."""
    import numpy as np
    import pandas as pd

    rows = sql.versions_of(store, name)
    if not rows:
        resolve(store, name)  # raises ModelNotFoundError, listing the models there are
    versions = [ModelVersion.from_row(store, r) for r in rows]
    aliases = sql.current_aliases(store, name)
    states: dict[int, str] = {}
    for event in sql.lifecycle_events(store, name):
        if event["kind"] == "deleted" or states.get(event["version"]) != "deleted":
            states[event["version"]] = str(event["kind"])
    columns: dict[str, Any] = {
        "version": [v.version for v in versions],
        "created_at": _times([v.created_at for v in versions]),
        "aliases": [
            ", ".join(sorted(a for a, n in aliases.items() if n == v.version)) for v in versions
        ],
        "status": [states.get(v.version, "active") for v in versions],
        "model_class": [v.model_class for v in versions],
        "format": [v.format for v in versions],
        "size": [v.size for v in versions],
        "sha256": [v.sha256 for v in versions],
        "run_id": [v.run_id for v in versions],
        "created_by": [v.created_by for v in versions],
        "description": [v.description for v in versions],
    }
    for key in sorted({k for v in versions for k in v.metrics}):
        columns[f"metrics.{key}"] = np.array([v.metrics.get(key, np.nan) for v in versions])
    return pd.DataFrame(columns)


def _alias_text(aliases: Mapping[str, int]) -> str:
    return ", ".join(f"{alias}={version}" for alias, version in sorted(aliases.items()))


def _times(values: Sequence[float | None]) -> Any:
    import numpy as np
    import pandas as pd

    seconds = np.array([np.nan if v is None else v for v in values], dtype="float64")
    return pd.to_datetime(seconds, unit="s", utc=True)
