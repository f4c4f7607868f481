"""Before a metric counts: is the evaluation set unseen, and is it comparable with the training
data?

**The training data of a model** is what its records say, never a guess:

- a registered version: the input DataFrame its signature was matched to
  (``ModelVersion.training_datasets``) among its training run's inputs, and the drift reference
  pinned at registration (``ModelVersion.reference_profile_id``);
- a live model object: the run that logged *this* object, found by the sha256 of the bytes
  ``Run.log_model`` stores for it (a pickle, or the library's portable format), among the
  active run's models and the registered versions' source artifacts. Nothing weaker counts: a
  model of the same class and parameters fitted elsewhere may have seen other rows, so a model no
  record names has unknown training data and its evaluation is ``unchecked``;
- ``train=(X_train, y_train)`` given explicitly: that data, hashed and profiled in memory.

The target is the input Series (or one-column DataFrame) of the training run with as many rows
as the features, a name saying "train" first.

**Unseen.** Each row of X (its columns aligned to the training columns, cast to their dtypes)
is hashed with :func:`nbmlops.fingerprint.row_hashes` and looked up in the training rows' hashes
(stored at training time in ``row_hashes``, or computed from ``train=``) by ``np.searchsorted``
on the sorted training hashes: ``overlap.rows_without_target`` counts the evaluation rows whose
features are a training row's; ``overlap.rows`` those whose features *and* target are (hashes
combined by :func:`~nbmlops.fingerprint.combine_row_hashes`, training features and target
combined by position). More feature matches than ``max_overlap`` (default 0) and the set is not
unseen: a training row with another label was still seen by the model. ``positions`` lists the
first 20 matching rows of X (0-based).

**Comparable.** Against the model's input columns (its signature, else the training
DataFrame's schema): no column missing, none extra, no dtype changed; no feature drift against
the training data's drift profile: KS for continuous columns (more than five distinct values),
the detectors' default choice (chi-square, z, Jensen-Shannon; see :mod:`nbmlops.drift`) for
the others, the tests' thresholds Bonferroni-corrected over the columns checked (a clean split of
twenty columns is not failed by chance), and a column fails only when its effect size (KS D,
Cramér's V, Cohen's h, the distance) is also at least 0.1 (a 200,000-row set makes negligible
differences significant). Evidently's default for references above 1,000 rows, Wasserstein
>= 0.1, is not used: on a 400-row split of 1,600 rows it failed a clean column (0.116). No label
drift of y, by the same rule, against the training target's profile (else the training target
in memory; else not checked, and the report says so). Every failing column is listed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import pickle
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbmlops.capture import model_formats
from nbmlops.capture.run import Run, active_run
from nbmlops.errors import EvaluationError
from nbmlops.fingerprint import combine_row_hashes, fingerprint, row_hashes
from nbmlops.registry.model_version import (
    ModelVersion,
    latest_profile,
    resolve,
    training_datasets,
)
from nbmlops.registry.registering import signature_of
from nbmlops.store import Store
from nbmlops.store import datasets as dataset_sql
from nbmlops.store import evaluations as evaluation_sql
from nbmlops.store import registry as registry_sql

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from nbmlops.drift import ColumnProfile, Profile

POSITIONS = 20
"""How many matching rows of X the report lists."""
MULTIPLE_TESTING = "bonferroni"
"""The correction of the drift tests' thresholds over the feature columns checked."""
MIN_EFFECT = 0.1
"""A drifted column fails only with at least this effect size (KS D, Cramér's V, Cohen's h, or
the distance): a large evaluation set makes a negligible difference significant."""
FEW_VALUES = 5
"""Numeric columns with more distinct values than this are tested with KS (Evidently's limit)."""


@dataclass(frozen=True)
class Training:
    """What the records say about a model's training data (see the module docstring)."""

    source: str
    """Where it was found: ``model version wine/3``, ``run ab12cd (logged this model)``,
    ``train=``."""
    features: Mapping[str, Any] | None = None
    """The training features as recorded: name, dataset_id, schema ({column: dtype}), n_rows."""
    target: Mapping[str, Any] | None = None
    columns: Mapping[str, str | None] | None = None
    """The model's input columns and their training dtypes (None: unknown)."""
    profile_id: str | None = None
    target_profile_id: str | None = None
    X: Any = field(default=None, repr=False)
    y: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        def dataset(d: Mapping[str, Any] | None) -> dict[str, Any] | None:
            if d is None:
                return None
            return {k: d.get(k) for k in ("name", "dataset_id", "n_rows")}

        return {
            "source": self.source,
            "features": dataset(self.features),
            "target": dataset(self.target),
            "profile_id": self.profile_id,
            "target_profile_id": self.target_profile_id,
        }


# -- which model, which training data ------------------------------------------------------------


def model_run(store: Store, model: object, digest: str) -> tuple[str | None, ModelVersion | None]:
    """The run that logged ``model`` (``digest``: the sha256 of its bytes as ``log_model``
    stores them, :func:`artifact_sha256`) and the version registered from that artifact, if
    any: (None, None) when no record names it."""
    run = active_run()
    if (
        run is not None
        and run.store.home == store.home
        and any(a["kind"] == "model" and a["sha256"] == digest for a in run.artifacts)
    ):
        return run.run_id, None
    runs = evaluation_sql.runs_with_model_artifact(store, digest) if store.exists() else []
    if not runs:
        return None, None
    for found in reversed(dataset_sql.models_of_runs(store, runs[:1])):
        version = resolve(store, f"{found['name']}/{found['version']}")
        source = registry_sql.registration_payload(store, version.name, version.version)
        if source.get("source", {}).get("sha256") == digest:
            return runs[0], version
    return runs[0], None


def artifact_sha256(model: object) -> str:
    """The sha256 of what ``Run.log_model`` would store for ``model``."""
    format = model_formats.portable_format(model)
    if format is None:
        data = pickle.dumps(model, protocol=5)
    else:
        data = model_formats.dump_portable(model, format)
    return hashlib.sha256(data).hexdigest()


def training_of(
    store: Store,
    model: object,
    version: ModelVersion | None,
    run_id: str | None,
    train: object = None,
) -> Training | None:
    """The training data of the model, from ``train=``, the version or the run; None: unknown."""
    if train is not None:
        return _in_memory(train)
    if version is not None:
        run_id = version.run_id
    if run_id is None:
        return None
    current = active_run()  # its inputs may not be written yet: read them from it
    run = current if current is not None and current.run_id == run_id else Run(store, run_id)
    made = _fitted_on(run, model)
    if made is not None:
        return _fitted_data(store, run_id, version, made)
    inputs = [d for d in run.datasets if d["role"] == "input"]
    recorded = [
        {**d, "fingerprint": d["dataset_id"]}
        for d in inputs
        if d.get("kind") in ("dataframe", "series")
    ]
    if version is not None:
        chosen = version.training_datasets
        signature = version.signature
    else:
        signature = signature_of(model, inputs)
        chosen = training_datasets(signature, recorded)
    if not chosen:
        return None
    features = next(d for d in recorded if d["dataset_id"] == chosen[0]["fingerprint"])
    target = _target_of(recorded, features)
    columns = _signature_columns(signature) or features.get("schema")
    if version is not None:
        profile_id, where = version.reference_profile_id, f"model version {version.ref}"
    else:
        found = latest_profile(store, [features])
        profile_id = None if found is None else str(found["profile_id"])
        where = f"run {run_id} (logged this model)"
    target_profile = None if target is None else latest_profile(store, [target])
    return Training(
        source=where,
        features=features,
        target=target,
        columns=columns,
        profile_id=profile_id,
        target_profile_id=None if target_profile is None else str(target_profile["profile_id"]),
    )


def _fitted_on(run: Run, model: object) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """The datasets (features, target) the run recorded under the names the model was fitted
    on, as ``%%track`` noted them with the model (``fitted_on``): the rows a model trained on
    when the cell made them itself (``train_test_split``), where its inputs are the whole."""
    models = [
        a for a in run.artifacts if a["kind"] == "model" and (a["meta"] or {}).get("fitted_on")
    ]
    if len(models) > 1:
        digest = artifact_sha256(model)
        models = [a for a in models if a["sha256"] == digest]
    if len(models) != 1:
        return None
    names = models[0]["meta"]["fitted_on"]
    found = {d["name"]: d for d in run.datasets if d.get("kind") in ("dataframe", "series")}
    if names.get("X") not in found:
        return None
    target = found.get(names.get("y")) if names.get("y") else None
    return found[names["X"]], target


def _fitted_data(
    store: Store,
    run_id: str,
    version: ModelVersion | None,
    made: tuple[dict[str, Any], dict[str, Any] | None],
) -> Training:
    features, target = ({**d, "fingerprint": d["dataset_id"]} if d else None for d in made)
    assert features is not None
    signature = version.signature if version is not None else None
    profile = latest_profile(store, [features])
    target_profile = None if target is None else latest_profile(store, [target])
    where = f"model version {version.ref}" if version is not None else f"run {run_id}"
    return Training(
        source=f"{where} (fitted on {features['name']})",
        features=features,
        target=target,
        columns=_signature_columns(signature) or features.get("schema"),
        profile_id=None if profile is None else str(profile["profile_id"]),
        target_profile_id=None if target_profile is None else str(target_profile["profile_id"]),
    )


def _in_memory(train: Any) -> Training:
    X, y = train if isinstance(train, tuple | list) and len(train) == 2 else (train, None)
    if y is not None and len(X) != len(y):
        raise EvaluationError(
            f"train= holds {len(X)} feature rows and {len(y)} targets; give "
            "train=(X_train, y_train) of the same length.",
            value=train,
        )
    return Training(
        source="train=",
        features={"name": "train=", "dataset_id": fingerprint(X).digest, "n_rows": len(X)},
        target=None if y is None else {"name": "train=", "dataset_id": fingerprint(y).digest},
        columns=_schema(X),
        X=X,
        y=y,
    )


def _schema(data: Any) -> dict[str, str | None] | None:
    columns = getattr(data, "columns", None)
    if columns is None:
        return None
    return {str(c): str(data[c].dtype) for c in columns}


def _signature_columns(signature: Mapping[str, Any] | None) -> dict[str, str | None] | None:
    columns = (signature or {}).get("columns")
    if not columns:
        return None
    return {str(c["name"]): c.get("dtype") for c in columns}


def _target_of(
    recorded: list[dict[str, Any]], features: Mapping[str, Any]
) -> dict[str, Any] | None:
    candidates = [
        d
        for d in recorded
        if d["dataset_id"] != features["dataset_id"]
        and d.get("n_rows") == features.get("n_rows")
        and (d.get("kind") == "series" or d.get("n_columns") == 1)
    ]
    candidates.sort(key=lambda d: ("train" not in str(d.get("name", "")).lower(), d["name"]))
    return candidates[0] if candidates else None


# -- unseen --------------------------------------------------------------------------------------


def unseen_check(
    store: Store, training: Training, X: Any, y: Any, max_overlap: int
) -> dict[str, Any]:
    """``{"unseen": bool | None, "overlap": {...}, "note": str}`` (see the module docstring)."""
    import numpy as np

    hashes = _training_hashes(store, training)
    if hashes is None:
        return {"unseen": None, "overlap": None, "note": "no row hashes of the training data"}
    aligned = _aligned(X, training.features.get("schema") if training.features else None)
    if aligned is None:
        schema = (training.features or {}).get("schema") or {}
        missing = [c for c in schema if c not in set(map(str, getattr(X, "columns", [])))]
        return {
            "unseen": None,
            "overlap": None,
            "note": "X lacks training columns the rows were hashed with: " + ", ".join(missing),
        }
    x_hashes = row_hashes(aligned)
    matched = np.flatnonzero(_isin(x_hashes, hashes.sorted_rows))
    rows: int | None = None
    note = ""
    if not hashes.has_target:
        note = "no row hashes of the training target: only feature rows compared"
    elif len(matched) == 0:
        rows = 0
    else:  # only the rows whose features matched can match with their target too
        target = row_hashes(_aligned_target(y, training).iloc[matched])
        rows = _with_target(hashes, x_hashes[matched], target)
    overlap = {
        "rows": rows,
        "rows_without_target": len(matched),
        "positions": matched[:POSITIONS].tolist(),
        "n_rows": len(x_hashes),
        "training_rows": len(hashes.rows),
    }
    return {"unseen": len(matched) <= max_overlap, "overlap": overlap, "note": note}


@dataclass(frozen=True)
class _TrainingHashes:
    rows: np.ndarray[Any, Any]
    """The training features' row hashes, in row order."""
    order: np.ndarray[Any, Any]
    """``np.argsort(rows)``; ``sorted_rows`` is ``rows[order]``."""
    sorted_rows: np.ndarray[Any, Any]
    target: Callable[[], np.ndarray[Any, Any]] | None
    """Reads the training target's row hashes (in row order) when some feature row matched."""

    @property
    def has_target(self) -> bool:
        return self.target is not None


def _training_hashes(store: Store, training: Training) -> _TrainingHashes | None:
    if training.X is not None:
        rows = row_hashes(training.X)
        y = training.y
        order, ordered = _sort(rows)
        return _TrainingHashes(rows, order, ordered, None if y is None else (lambda: row_hashes(y)))
    ids = [d["dataset_id"] for d in (training.features, training.target) if d is not None]
    stored = evaluation_sql.row_hash_objects(store, ids)
    features = stored.get(training.features["dataset_id"]) if training.features else None
    if features is None:
        return None
    digest = str(features["object"])
    rows = _stored_hashes(store, digest)
    target = stored.get(training.target["dataset_id"]) if training.target else None
    if target is not None and int(target["n_rows"]) != len(rows):
        target = None  # not aligned by position with the features: cannot be combined
    order, ordered = _sorted_hashes(digest, rows)
    return _TrainingHashes(
        rows,
        order,
        ordered,
        None if target is None else functools.partial(_stored_hashes, store, target["object"]),
    )


def _stored_hashes(store: Store, digest: str) -> np.ndarray[Any, Any]:
    import numpy as np

    return np.frombuffer(store.objects.read_verified(digest), dtype="<u8")


_Sorted = tuple["np.ndarray[Any, Any]", "np.ndarray[Any, Any]"]
_SORTED: dict[str, _Sorted] = {}
_SORTED_KEPT = 4


def _sort(rows: np.ndarray[Any, Any]) -> _Sorted:
    import numpy as np

    order = np.argsort(rows)
    return order, rows[order]


def _sorted_hashes(digest: str, rows: np.ndarray[Any, Any]) -> _Sorted:
    """``_sort(rows)``, kept by the object's digest for the next evaluation against the same
    training data (a third of a cold check; the object is immutable, so the digest is a key)."""
    found = _SORTED.pop(digest, None) or _sort(rows)
    _SORTED[digest] = found  # newest last
    while len(_SORTED) > _SORTED_KEPT:
        del _SORTED[next(iter(_SORTED))]
    return found


def _isin(values: np.ndarray[Any, Any], ordered: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Which of ``values`` occur in the sorted ``ordered``: a binary search each, made in sorted
    order (four times faster than in random order on 200,000 values: the searches then walk
    the same cache lines)."""
    import numpy as np

    found = np.zeros(len(values), dtype=bool)
    if len(ordered) == 0 or len(values) == 0:
        return found
    by_value = np.argsort(values)
    queries = values[by_value]
    at = np.searchsorted(ordered, queries)
    at[at == len(ordered)] = 0
    found[by_value] = ordered[at] == queries
    return found


def _with_target(
    hashes: _TrainingHashes, x_matched: np.ndarray[Any, Any], y_matched: np.ndarray[Any, Any]
) -> int:
    """How many of the feature-matched evaluation rows match a training row with the target
    too: the training rows with those features are the ranges of the sorted hashes that hold
    them, and only those rows' features and target are combined."""
    import numpy as np

    assert hashes.target is not None
    keys = np.unique(x_matched)
    low = np.searchsorted(hashes.sorted_rows, keys, "left")
    counts = np.searchsorted(hashes.sorted_rows, keys, "right") - low
    starts = np.repeat(low - np.cumsum(counts) + counts, counts)
    candidates = hashes.order[starts + np.arange(int(counts.sum()))]
    train_y = hashes.target()
    known = np.sort(combine_row_hashes(hashes.rows[candidates], train_y[candidates]))
    return int(_isin(combine_row_hashes(x_matched, y_matched), known).sum())


def _aligned(X: Any, schema: Mapping[str, str | None] | None) -> Any:
    """X with the training columns in their training dtypes, so that a row copied from the
    training data hashes as it did there; None when X lacks one of them."""
    import pandas as pd

    if schema is None:
        return X
    names = list(schema)
    if not isinstance(X, pd.DataFrame):
        frame = pd.DataFrame(X.reshape(len(X), -1) if hasattr(X, "reshape") else X)
        if frame.shape[1] != len(names):
            return None
        frame.columns = names
    else:
        by_name = {str(c): c for c in X.columns}
        if any(n not in by_name for n in names):
            return None
        frame = X[[by_name[n] for n in names]]
        frame.columns = names
    return _cast(frame, schema)


def _cast(frame: pd.DataFrame, schema: Mapping[str, str | None]) -> pd.DataFrame:
    import pandas as pd

    changed = {
        name: dtype
        for name, dtype in schema.items()
        if dtype is not None and str(frame[name].dtype) != dtype
    }
    for name, dtype in changed.items():
        # A value that cannot take the training type cannot be a training row: left as it is.
        with contextlib.suppress(TypeError, ValueError):
            frame = frame.assign(**{name: frame[name].astype(pd.api.types.pandas_dtype(dtype))})
    return frame


def _series(data: Any) -> pd.Series[Any]:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.Series):
        return data
    if isinstance(data, pd.DataFrame) and data.shape[1] == 1:
        return data.iloc[:, 0]
    return pd.Series(np.asarray(data).ravel())


def _aligned_target(y: Any, training: Training) -> Any:
    import pandas as pd

    series = _series(y)
    schema = (training.target or {}).get("schema") or {}
    dtype = next(iter(schema.values()), None) if len(schema) == 1 else None
    if training.y is not None:
        dtype = str(getattr(training.y, "dtype", "")) or None
    if dtype is not None and str(series.dtype) != dtype:
        with contextlib.suppress(TypeError, ValueError):  # then no training target matches
            series = series.astype(pd.api.types.pandas_dtype(dtype))
    return series.reset_index(drop=True)


# -- comparable ----------------------------------------------------------------------------------


def comparable_check(store: Store, training: Training, X: Any, y: Any) -> dict[str, Any]:
    """``{"comparable": bool | None, "failing": [...], "columns": {...}, "drift": {...},
    "label_drift": {...}}`` (see the module docstring)."""
    import pandas as pd

    expected = training.columns
    columns = _column_changes(expected, X)
    failing = [*columns["missing"], *columns["extra"], *(c["column"] for c in columns["retyped"])]
    shared = [
        c
        for c in (expected or _schema(X) or {})
        if isinstance(X, pd.DataFrame) and c in set(map(str, X.columns))
    ]
    drift = _feature_drift(store, training, X, shared)
    failing += [c for c in drift.get("drifted", []) if c not in failing]
    label = _label_drift(store, training, y)
    if label.get("drifted"):
        failing.append(str(label["column"]))
    checked = expected is not None or drift["checked"]
    return {
        "comparable": (not failing) if checked else None,
        "failing": failing,
        "columns": columns,
        "drift": drift,
        "label_drift": label,
    }


def _column_changes(expected: Mapping[str, str | None] | None, X: Any) -> dict[str, Any]:
    import pandas as pd

    if expected is None:
        return {"missing": [], "extra": [], "retyped": [], "note": "training columns unknown"}
    if not isinstance(X, pd.DataFrame):
        width = X.shape[1] if getattr(X, "ndim", 1) == 2 else 1
        wrong = width != len(expected)
        return {
            "missing": [f"{len(expected)} columns"] if wrong else [],
            "extra": [],
            "retyped": [],
            "note": f"X is a {type(X).__name__} of {width} columns: compared by count only",
        }
    given = {str(c): str(X[c].dtype) for c in X.columns}
    retyped = [
        {"column": name, "training": dtype, "evaluation": given[name]}
        for name, dtype in expected.items()
        if name in given and dtype is not None and given[name] != dtype
    ]
    return {
        "missing": [c for c in expected if c not in given],
        "extra": [c for c in given if c not in expected],
        "retyped": retyped,
    }


def _feature_drift(store: Store, training: Training, X: Any, columns: list[str]) -> dict[str, Any]:
    from nbmlops.drift import build_profile, load_profile

    if not columns:
        return {"checked": False, "note": "no column of X to compare with the training data"}
    if training.profile_id is not None:
        profile = load_profile(store, training.profile_id)
    elif training.X is not None and hasattr(training.X, "columns"):
        wanted = [c for c in training.X.columns if str(c) in set(columns)]
        profile = build_profile(training.X, wanted, fingerprint=False)
    else:
        return {"checked": False, "note": "no drift profile of the training data"}
    usable = [c for c in profile.columns if str(c) in set(columns)]
    if not usable:
        return {"checked": False, "note": "the training profile has none of X's columns"}
    by_name = {str(c): c for c in X.columns}
    current = X[[by_name[str(c)] for c in usable]].set_axis(usable, axis=1)
    return _drift(profile, current, usable, MULTIPLE_TESTING)


def _label_drift(store: Store, training: Training, y: Any) -> dict[str, Any]:
    from nbmlops.drift import build_profile, load_profile

    series = _series(y).reset_index(drop=True)
    if training.target_profile_id is not None:
        profile = load_profile(store, training.target_profile_id)
    elif training.y is not None:
        profile = build_profile(_series(training.y).rename("target"), fingerprint=False)
    else:
        return {
            "checked": False,
            "note": "no profile of the training target and no training target in memory: "
            "label drift not checked",
        }
    name = next(iter(profile.columns))
    result = _drift(profile, series.to_frame(name=name), [name], None)
    column = result["columns"][0]
    return {**column, "checked": True, "drifted": bool(result["drifted"]), "column": str(name)}


def _drift(
    profile: Profile, current: pd.DataFrame, columns: list[Hashable], correction: str | None
) -> dict[str, Any]:
    """Check ``current`` against ``profile``: KS for continuous columns, the default choice
    (chi-square, z, Jensen-Shannon) for the others; a column fails when its test or distance says
    drift *and* its effect size is at least :data:`MIN_EFFECT`."""
    from nbmlops.drift import check_drift

    methods: dict[Hashable, str] = {c: "ks" for c in columns if _continuous(profile.columns[c])}
    report = check_drift(
        profile, current, columns, method=methods or None, multiple_testing=correction
    )
    drifted = [str(c.column) for c in report.columns if c.drifted and c.effect_size >= MIN_EFFECT]
    return {
        "checked": True,
        "profile_id": report.profile_id,
        "drifted": drifted,
        "columns": [c.to_dict() for c in report.columns],
        "multiple_testing": correction,
        "min_effect": MIN_EFFECT,
    }


def _continuous(column: ColumnProfile) -> bool:
    numeric = column.numeric
    if column.kind != "numeric" or numeric is None:
        return False
    return numeric.n_distinct is None or numeric.n_distinct > FEW_VALUES
