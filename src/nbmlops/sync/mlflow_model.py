"""A registered version as an MLflow model folder (issue #19: a pushed version on the server).

MLflow loads a model version from a folder holding an ``MLmodel`` file that names its flavours
(https://mlflow.org/docs/latest/models.html#storage-format), so that
``mlflow.pyfunc.load_model("models:/diabetes@champion")`` and ``mlflow models serve`` work on
what nbmlops pushed. The model file goes in as it is, under the name MLflow's flavour gives it:

- ``skops`` and ``pickle`` (scikit-learn and anything with ``predict``): the ``sklearn`` flavour,
  ``model.skops`` (with the types it needs trusted, as skops lists them) or ``model.pkl``;
- ``xgboost-ubj``: the ``xgboost`` flavour, ``model.ubj``, loaded as the version's class;
- ``lightgbm-text``: the ``lightgbm`` flavour, ``model.lgb``, loaded as a ``Booster`` (MLflow
  loads a scikit-learn LightGBM wrapper only from a pickle), so a classifier's ``predict``
  there gives probabilities;
- the torch formats have no MLflow flavour that loads a state dict: the folder holds the file
  (``model.<format>``) and no ``MLmodel``.

The version's signature becomes MLflow's input schema (column names and types), its libraries
``requirements.txt`` and the environment files ``mlflow models serve`` builds from
(``python_env.yaml``, ``conda.yaml``). The YAML files are written as JSON, which YAML reads as
it is.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from nbmlops.capture import model_formats
from nbmlops.registry import serialization
from nbmlops.store.registry import VersionRow

# MLflow's column types (mlflow/types/schema.py DataType) of the dtypes a signature records.
COLSPEC_TYPES = {
    "float64": "double",
    "float32": "float",
    "int64": "long",
    "int32": "integer",
    "bool": "boolean",
    "object": "string",
    "string": "string",
    "str": "string",  # pandas 3's default string dtype
    "category": "string",
}
# format -> (flavour, its loader module, the model file's name)
_FLAVOURS = {
    serialization.SKOPS: ("sklearn", "mlflow.sklearn", "model.skops"),
    serialization.PICKLE: ("sklearn", "mlflow.sklearn", "model.pkl"),
    model_formats.XGBOOST: ("xgboost", "mlflow.xgboost", "model.ubj"),
    model_formats.LIGHTGBM: ("lightgbm", "mlflow.lightgbm", "model.lgb"),
}


def model_file(format: str) -> str:
    """The name of a version's model file in its folder."""
    return _FLAVOURS[format][2] if format in _FLAVOURS else f"model.{format}"


def folder_files(
    v: VersionRow, data: bytes, data_schemas: list[dict[str, str]]
) -> dict[str, bytes]:
    """The files beside the model file that make the folder an MLflow model: ``MLmodel``,
    ``requirements.txt`` and, when the Python version is known, ``python_env.yaml`` and
    ``conda.yaml``; none for a format MLflow has no flavour for. ``data_schemas`` (column ->
    dtype of each dataset of the version) give the dtypes a signature read from the fitted
    model (``feature_names_in_``: names only) lacks."""
    if v.format not in _FLAVOURS:
        return {}
    flavour, loader, file = _FLAVOURS[v.format]
    libraries: dict[str, str] = json.loads(v.libraries) if v.libraries else {}
    pyfunc: dict[str, Any] = {"loader_module": loader, "model_path": file}
    requirements = [f"{n}=={v}" for n, v in sorted(libraries.items()) if n != "python"]
    files = {"requirements.txt": "".join(f"{line}\n" for line in requirements).encode()}
    python = libraries.get("python")
    if python is not None:
        # The environments `mlflow models serve` builds (virtualenv by default, or conda).
        pyfunc["python_version"] = python
        pyfunc["env"] = {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
        files["python_env.yaml"] = _yaml(
            {
                "python": python,
                "build_dependencies": ["pip", "setuptools", "wheel"],
                "dependencies": ["-r requirements.txt"],
            }
        )
        files["conda.yaml"] = _yaml(
            {
                "name": "mlflow-env",
                "channels": ["conda-forge"],
                "dependencies": [f"python={python}", "pip", {"pip": requirements}],
            }
        )
    mlmodel: dict[str, Any] = {
        "flavors": {"python_function": pyfunc, flavour: _flavour(v, data, file, libraries)},
        "model_uuid": str(uuid.UUID(v.sha256[:32])),
        "utc_time_created": dt.datetime.fromtimestamp(v.created_at, dt.UTC).strftime(
            "%Y-%m-%d %H:%M:%S.%f"
        ),
    }
    inputs = _inputs(v.signature, data_schemas)
    if inputs is not None:
        mlmodel["signature"] = {"inputs": json.dumps(inputs), "outputs": None, "params": None}
    return {"MLmodel": _yaml(mlmodel), **files}


def _yaml(document: dict[str, Any]) -> bytes:
    """A YAML file: JSON, which YAML reads as it is (no YAML writer needed)."""
    return json.dumps(document, indent=2).encode()


def _flavour(v: VersionRow, data: bytes, file: str, libraries: dict[str, str]) -> dict[str, Any]:
    if v.format in (serialization.SKOPS, serialization.PICKLE):
        conf: dict[str, Any] = {
            "pickled_model": file,
            "serialization_format": v.format,
            "sklearn_version": libraries.get("scikit-learn"),
            "code": None,
        }
        if v.format == serialization.SKOPS:
            import skops.io

            # What the model needs trusted to load: skops refuses any other type.
            conf["skops_trusted_types"] = skops.io.get_untrusted_types(data=data)
        return conf
    if v.format == model_formats.XGBOOST:
        return {
            "data": file,
            "model_class": v.model_class,
            "model_format": "ubj",
            "xgb_version": libraries.get("xgboost"),
            "code": None,
        }
    return {
        "data": file,
        "model_class": "lightgbm.basic.Booster",
        "lgb_version": libraries.get("lightgbm"),
        "code": None,
    }


def _inputs(
    signature: str | None, data_schemas: list[dict[str, str]]
) -> list[dict[str, Any]] | None:
    """MLflow's column specs of a signature's named columns, or None (no names recorded, or a
    dtype MLflow has no type for). Names without a dtype take them from the first of
    ``data_schemas`` that has every name (the data the model was trained on)."""
    columns = json.loads(signature).get("columns") if signature else None
    if not columns:
        return None
    names = [str(c["name"]) for c in columns]
    dtypes = [None if c.get("dtype") is None else str(c["dtype"]) for c in columns]
    if None in dtypes:
        schema = next((s for s in data_schemas if all(n in s for n in names)), None)
        dtypes = [
            d if d is not None or schema is None else schema[n]
            for n, d in zip(names, dtypes, strict=True)
        ]
    if any(d not in COLSPEC_TYPES for d in dtypes):
        return None  # a wrong type would make MLflow refuse good input: no schema instead
    return [
        {"type": COLSPEC_TYPES[str(d)], "name": n, "required": True}
        for n, d in zip(names, dtypes, strict=True)
    ]
