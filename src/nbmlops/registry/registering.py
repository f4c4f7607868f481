"""Registering a model: from a run's logged model or from a live object, as a new immutable
version (or the existing one, when the same content is registered again under the same name).

The artifact is stored as skops when that is safe and round-trips, else as a pickle (see
:mod:`nbmlops.registry.serialization`); the version records the artifact's digests, the input
signature, the training run's datasets, metrics and library versions, and pins the drift
reference profile of its training data.
"""

from __future__ import annotations

import json
import math
import numbers
import pickle
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from nbmlops._display import when
from nbmlops.capture import model_formats
from nbmlops.capture.environment import current_user, installed_packages
from nbmlops.capture.run import Run, active_run_ids, find_run
from nbmlops.errors import AlreadyRegisteredWarning, RegistryError
from nbmlops.registry import serialization
from nbmlops.registry.events import new_event
from nbmlops.registry.model_version import (
    ModelVersion,
    check_name,
    latest_profile,
    training_datasets,
)
from nbmlops.store import Store
from nbmlops.store import registry as sql
from nbmlops.store.objects import ChunkDigests, blake3_hex


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
        raise ValueError(
            f"format must be auto or one of {', '.join(serialization.FORMATS)}, not {format!r}"
        )
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
    elif source_format in model_formats.TORCH_FORMATS and format != serialization.PICKLE:
        # Registered as logged: rebuilding the module would need its class constructible here
        # (model_formats), and a module has no feature names for a signature anyway.
        model = None
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
    packages = environment.get("packages") or installed_packages()  # what the run was trained with
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
    reference = latest_profile(store, training_datasets(signature, json.loads(row["datasets"])))
    if reference is not None:  # pinned: later profiles of the same data do not move it
        payload["reference_profile"] = reference
    return _insert(store, row, payload, description)


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
    libraries = serialization.libraries_for(globals_, installed_packages(), format=stored_format)
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
    portable = model_formats.chosen_format(model, format)  # the library's own format: no pickle
    if portable is not None:
        return model_formats.dump_portable(model, portable), portable, set()
    if format in model_formats.FORMATS:  # asked for a library's format this model has not
        serialization.dump_model(model, format=format)  # raises, with the reason
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
    event = new_event(row["name"], "registered", payload=payload)
    registered = sql.register_version(store, row, event, description)
    version = ModelVersion.from_row(store, registered.row)
    if not registered.created and version.deleted:
        raise RegistryError(
            f"This artifact (sha256 {row['sha256'][:12]}) is {version.ref}, which was deleted; "
            "a deleted version cannot come back. Register it under another name."
        )
    if not registered.created:
        source = f" from run {version.run_id}" if version.run_id else ""
        warnings.warn(
            f"This model (sha256 {row['sha256'][:12]}) is already registered as {version.ref}"
            f"{source} on {when(version.created_at)}; no new version was made and "
            f"{version.ref} is returned. A changed model (retrained, other params) becomes a new "
            "version.",
            AlreadyRegisteredWarning,
            stacklevel=5,  # _insert < _register_* < register < nbmlops.register_model < caller
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
