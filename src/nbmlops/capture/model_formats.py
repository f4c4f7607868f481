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

Each library is imported only when the object already comes from it (``sys.modules``), so these
checks cost nothing to a session that never imported it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from nbmlops.errors import RegistryError

XGBOOST = "xgboost-ubj"
LIGHTGBM = "lightgbm-text"
FORMATS = (XGBOOST, LIGHTGBM)
MEDIA_TYPES = {XGBOOST: "application/ubjson", LIGHTGBM: "text/plain"}
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
    return None


def dump_portable(model: Any, format: str) -> bytes:
    """``model``'s bytes in ``format`` (see :func:`portable_format`), with its library's API."""
    if format == LIGHTGBM:
        return str(model.model_to_string()).encode()
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
