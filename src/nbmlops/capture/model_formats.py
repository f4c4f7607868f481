"""Models saved in their library's own portable format instead of a pickle (issue #20).

XGBoost models (a ``Booster``, or a scikit-learn wrapper such as ``XGBClassifier``) are saved
with the library's ``save_model`` in UBJSON, the format XGBoost promises to load across versions
(format ``"xgboost-ubj"``); a native LightGBM ``Booster`` is saved as its model text,
``model_to_string()`` (format ``"lightgbm-text"``). Both are data, not code: loading one parses
numbers and trees and runs nothing the file names, so the registry loads them with
``allow_pickle=False`` too.

LightGBM's scikit-learn wrappers (``LGBMClassifier``...) have no loader of their own: the model
text holds the trees but not the wrapper's state (its classes and label encoder, fitted flags),
and rebuilding that from private attributes would break with any LightGBM release. They stay
pickles, hash-verified like every pickle (see :mod:`nbmlops.registry.serialization`).

A PyTorch ``nn.Module`` is saved as its ``state_dict``, weights only: with safetensors when it is
installed (format ``"torch-safetensors"``, the class path in its metadata), else with
``torch.save`` (format ``"torch-state-dict"``, a zip that ``torch.load(weights_only=True)``
reads without unpickling any code). Tensors are copied to the CPU first; tied weights are
saved once per name and tied again by the module's own constructor on load.
Loading rebuilds the module from the version's recorded class: its module is imported (an
installed module, named in the database: importing it runs that module's code, as ``import``
does, but nothing from ``objects/``), the class must be an ``nn.Module``, it is constructed with
no arguments, the weights are loaded with ``strict=True``, and the module is put in ``eval()``
mode (a registry load is for inference). A class whose constructor needs arguments, or one
defined in a notebook (``__main__.MLP``) loaded in another process, cannot be rebuilt: the
error says so and how to load the weights into a module you construct.

Each library is imported only when the object already comes from it (``sys.modules``), so these
checks cost nothing to a session that never imported it.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import io
import os
import sys
import tempfile
from typing import Any

from nbmlops.errors import RegistryError

XGBOOST = "xgboost-ubj"
LIGHTGBM = "lightgbm-text"
TORCH_SAFETENSORS = "torch-safetensors"
TORCH = "torch-state-dict"
TORCH_FORMATS = (TORCH_SAFETENSORS, TORCH)
FORMATS = (XGBOOST, LIGHTGBM, *TORCH_FORMATS)
# The modules each format is read with: their distributions' versions go with the model.
FORMAT_MODULES = {
    XGBOOST: ("xgboost",),
    LIGHTGBM: ("lightgbm",),
    TORCH_SAFETENSORS: ("torch", "safetensors"),
    TORCH: ("torch",),
}
MEDIA_TYPES = {
    XGBOOST: "application/ubjson",
    LIGHTGBM: "text/plain",
    TORCH_SAFETENSORS: "application/vnd.safetensors",
    TORCH: "application/zip",
}
# XGBoost's save_model marks a scikit-learn wrapper with {"_estimator_type": ...}: the class to
# rebuild when the version does not name one.
_XGB_WRAPPERS = {"classifier": "XGBClassifier", "regressor": "XGBRegressor", "ranker": "XGBRanker"}


def portable_format(model: object) -> str | None:
    """The portable format ``model`` is saved in, or None (it is pickled)."""
    module = type(model).__module__
    xgb = sys.modules.get("xgboost")
    if (
        xgb is not None
        and module.startswith("xgboost.")
        and isinstance(model, xgb.Booster | xgb.XGBModel)
    ):
        return XGBOOST
    lgb = sys.modules.get("lightgbm")
    if lgb is not None and module.startswith("lightgbm.") and isinstance(model, lgb.Booster):
        return LIGHTGBM
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return TORCH_SAFETENSORS if _safetensors_installed() else TORCH
    return None


def chosen_format(model: object, format: str) -> str | None:
    """The portable format to save ``model`` in when ``format`` (``"auto"`` or one of
    :data:`FORMATS`) is asked for, or None: the model has none, or not that one. A module asked
    for as ``torch-state-dict`` gets it even with safetensors installed."""
    portable = portable_format(model)
    if portable is None:
        return None
    if format in ("auto", portable) or (portable in TORCH_FORMATS and format == TORCH):
        return portable if format == "auto" else format
    return None


HOLDS = {
    XGBOOST: "XGBoost models",
    LIGHTGBM: "LightGBM boosters",
    TORCH_SAFETENSORS: "PyTorch modules (with safetensors installed)",
    TORCH: "PyTorch modules",
}


@functools.cache
def _safetensors_installed() -> bool:
    return importlib.util.find_spec("safetensors") is not None


def dump_portable(model: Any, format: str) -> bytes:
    """``model``'s bytes in ``format`` (see :func:`portable_format`), with its library's API."""
    if format == LIGHTGBM:
        return str(model.model_to_string()).encode()
    if format in TORCH_FORMATS:
        return _dump_torch(model, format)
    # XGBModel.save_model writes the wrapper's marker; it saves to a path only.
    with tempfile.TemporaryDirectory(prefix="nbmlops-") as folder:
        path = os.path.join(folder, "model.ubj")
        model.save_model(path)
        with open(path, "rb") as file:
            return file.read()


def load_portable(data: bytes, format: str, model_class: str | None = None) -> Any:
    """A model from bytes made by :func:`dump_portable`. ``model_class`` (the version's recorded
    class) picks the XGBoost wrapper to rebuild; only XGBoost's own classes are accepted."""
    if format == LIGHTGBM:
        import lightgbm

        return lightgbm.Booster(model_str=data.decode())
    if format in TORCH_FORMATS:
        return _load_torch(data, format, model_class)
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(bytearray(data))
    cls = _xgboost_class(xgboost, booster, model_class)
    if cls is xgboost.Booster:
        return booster
    model = cls()
    model.load_model(bytearray(data))
    return model


def _xgboost_class(xgboost: Any, booster: Any, model_class: str | None) -> Any:
    if model_class:
        module, _, name = model_class.rpartition(".")
        cls = getattr(xgboost, name, None)
        if (
            module.split(".")[0] != "xgboost"
            or not isinstance(cls, type)
            or not issubclass(cls, xgboost.Booster | xgboost.XGBModel)
        ):
            raise RegistryError(
                f"A {XGBOOST} artifact recorded as class {model_class!r}, which is not one of "
                "XGBoost's models (Booster, XGBClassifier, XGBRegressor...); load it with "
                "xgboost.Booster().load_model(...) from the artifact's bytes."
            )
        return cls
    marker = booster.attr("scikit_learn")
    if marker is None:
        return xgboost.Booster
    import json

    kind = json.loads(marker).get("_estimator_type")
    return getattr(xgboost, _XGB_WRAPPERS.get(kind, "XGBModel"))


def _dump_torch(module: Any, format: str) -> bytes:
    # clone(): safetensors refuses tensors sharing storage (tied weights, views).
    state = {k: v.detach().cpu().clone().contiguous() for k, v in module.state_dict().items()}
    cls = type(module)
    if format == TORCH_SAFETENSORS:
        from safetensors.torch import save

        return bytes(save(state, metadata={"class": f"{cls.__module__}.{cls.__qualname__}"}))
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _load_torch(data: bytes, format: str, model_class: str | None) -> Any:
    import torch

    if format == TORCH_SAFETENSORS:
        from safetensors.torch import load

        state = load(data)
    else:
        state = torch.load(io.BytesIO(data), weights_only=True)
    cls = _torch_class(torch, format, model_class)
    try:
        module = cls()
    except TypeError as exc:
        raise RegistryError(
            f"A {format} artifact holds the weights of a {model_class}, whose constructor needs "
            f"arguments ({exc}); construct it yourself and load the weights: "
            f"{_LOAD_HINT[format]}."
        ) from exc
    module.load_state_dict(state, strict=True)
    return module.eval()


_LOAD_HINT = {
    TORCH_SAFETENSORS: "model.load_state_dict(safetensors.torch.load_file(<artifact path>))",
    TORCH: "model.load_state_dict(torch.load(<artifact path>, weights_only=True))",
}


def _torch_class(torch: Any, format: str, model_class: str | None) -> Any:
    """The ``nn.Module`` subclass ``model_class`` names (``module.Qual.Name``), imported."""
    found: Any = None
    if model_class:
        parts = model_class.split(".")
        for cut in range(len(parts) - 1, 0, -1):  # the longest importable module prefix
            try:
                found = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for name in parts[cut:]:
                found = getattr(found, name, None)
            break
    if isinstance(found, type) and issubclass(found, torch.nn.Module):
        return found
    where = (
        "it was defined in a notebook and this process has no such class: run the cell that "
        "defines it first, or move it to a module"
        if model_class and model_class.startswith("__main__.")
        else "it is not an importable torch.nn.Module subclass"
    )
    raise RegistryError(
        f"A {format} artifact recorded as class {model_class!r} cannot be rebuilt: {where}; "
        f"or construct the module yourself and load the weights: {_LOAD_HINT[format]}."
    )
