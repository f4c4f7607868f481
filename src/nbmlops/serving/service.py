"""The model a server process serves, and how it follows an alias.

A :class:`ModelService` loads its version through the registry's verified loader (no byte is
deserialised before its recorded digest matched), self-tests it with one row built from the
recorded signature, and only then makes it :attr:`current`. Requests read :attr:`current`
once, so a swap (one reference assignment) is atomic: a request finishes on the version it
started with, the next one gets the new version, and none fails in between.

Serving ``name@alias`` follows the alias: a thread polls the registry every ``poll_interval``
seconds and, when the alias moved, loads and self-tests the new version *beside* the current
one. If the new version fails, the old one keeps serving and a ``swap_failed`` event says why
(the same version is not retried until the alias moves again). Every load, swap and stop is an
``endpoint_events`` row (:mod:`nbmlops.serving.endpoints`).
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbmlops.errors import NbmlopsError
from nbmlops.feature_store.model_features import model_features
from nbmlops.registry import loading
from nbmlops.registry.model_version import ModelVersion, parse_ref, resolve
from nbmlops.serving import endpoints
from nbmlops.serving.features import FeatureInputs, check_contract_policy
from nbmlops.serving.formats import encode_predictions
from nbmlops.serving.prediction_log import LogStats, PredictionLog
from nbmlops.serving.signature import InputSchema, check_policy
from nbmlops.store import Store
from nbmlops.store import registry as registry_sql

logger = logging.getLogger("nbmlops.serving")


@dataclass(frozen=True)
class Settings:
    """How a server behaves; recorded with its endpoint (except the token)."""

    extra_columns: str = "log"
    log_predictions: bool = True
    log_sample: float = 1.0
    poll_interval: float = 5.0
    max_body_bytes: int = 20 * 2**20
    profile_window: float = 60.0  # seconds of traffic per traffic profile (drift monitoring)
    contract: str = "log"  # a version trained from a training set: reject, log or off
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_policy(self.extra_columns)
        check_contract_policy(self.contract)
        if self.poll_interval <= 0:
            raise ValueError(f"poll_interval={self.poll_interval!r} must be positive seconds.")
        if not self.profile_window > 0:
            raise ValueError(f"profile_window={self.profile_window!r} must be positive seconds.")
        if self.max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes={self.max_body_bytes!r} must be positive.")

    def recorded(self) -> dict[str, Any]:
        """The settings as written to the endpoint record (whether a token is set, not it)."""
        return {
            "extra_columns": self.extra_columns,
            "log_predictions": self.log_predictions,
            "log_sample": self.log_sample,
            "poll_interval": self.poll_interval,
            "max_body_bytes": self.max_body_bytes,
            "profile_window": self.profile_window,
            "contract": self.contract,
            "auth": self.token is not None,
        }


@dataclass(frozen=True)
class Served:
    """A loaded, self-tested version and the response headers that name it."""

    version: ModelVersion
    model: Any
    schema: InputSchema
    headers: dict[str, str]
    features: FeatureInputs | None = None  # trained from a training set

    def predict(self, model_input: Any) -> list[Any]:
        model = self.model
        if type(model).__name__ == "Booster" and type(model).__module__.startswith("xgboost"):
            # A native XGBoost Booster's predict takes a DMatrix; inplace_predict the frame.
            return encode_predictions(model.inplace_predict(model_input))
        if _is_torch_module(model):
            return encode_predictions(_torch_predict(model, model_input))
        return encode_predictions(model.predict(model_input))


def _is_torch_module(model: object) -> bool:
    return any(
        c.__name__ == "Module" and c.__module__.startswith("torch.nn") for c in type(model).__mro__
    )


def _torch_predict(model: Any, frame: Any) -> Any:
    """A PyTorch module called on the rows as one float32 tensor, without gradients; a single
    output column reads as one prediction per row."""
    torch = sys.modules["torch"]  # loaded with the module by the registry
    with torch.no_grad():
        out = model(torch.tensor(frame.to_numpy(dtype="float32")))  # a copy: pandas' is read-only
    values = out.detach().cpu().numpy()
    return values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values


class SelfTestError(Exception):
    """A loaded version could not predict its own signature's example row."""


class ModelService:
    """What one server process serves: the current version, the alias follower, the log."""

    def __init__(self, home: Path, ref: str, url: str, settings: Settings) -> None:
        self.name, self.pinned, self.alias = parse_ref(ref)
        self.ref = ref
        self.url = url
        self.settings = settings
        self.store = Store(home)
        self.current: Served | None = None
        self.error: str | None = "the model is loading"
        self.endpoint_id: str | None = None
        self.log = PredictionLog(
            home, sample=settings.log_sample, profile_window=settings.profile_window
        )
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None
        self._failed: int | None = None  # the version whose load failed, not retried

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Record the endpoint, load the version ``ref`` names, start the log and the follower.

        A pinned version (``name/3``) that fails to load raises: the server must not start. A
        failing ``name@alias`` leaves the server up, answering 503 with the reason, until the
        alias moves to a version that loads."""
        resolve(self.store, self.name)  # ModelNotFoundError before anything is recorded
        self.endpoint_id = endpoints.record_start(
            self.store, self.name, self.ref, self.alias, self.url, self.settings.recorded()
        )
        try:
            served = self._load(resolve(self.store, self.ref))
        except (NbmlopsError, SelfTestError) as exc:
            self.error = str(exc)
            endpoints.record_event(self.store, self.endpoint_id, "load_failed", reason=str(exc))
            if self.alias is None:
                self._record_stop()
                raise
        else:
            self._swap(served, "loaded")
        if self.settings.log_predictions:
            self.log.start()
        if self.alias is not None:
            self._follower = threading.Thread(
                target=self._follow, name="nbmlops-alias-follower", daemon=True
            )
            self._follower.start()

    def stop(self) -> None:
        """Stop following, write the queued predictions, record the stop."""
        self._stop.set()
        if self._follower is not None:
            self._follower.join(timeout=30)
        self.log.stop()
        self._record_stop()
        self.store.close()

    def _record_stop(self) -> None:
        if self.endpoint_id is None:
            return
        served = self.current
        endpoints.record_event(
            self.store,
            self.endpoint_id,
            "stopped",
            version=None if served is None else served.version.version,
            sha256=None if served is None else served.version.sha256,
            log=self.log.stats.to_dict(),
        )
        self.endpoint_id = None

    @property
    def stats(self) -> LogStats:
        """The prediction log's counters."""
        return self.log.stats

    # -- loading and following -----------------------------------------------------------------

    def _load(self, mv: ModelVersion) -> Served:
        model = loading.load_version(mv, consumer=f"endpoint {self.url}")
        schema = InputSchema.of(mv.ref, mv.signature)
        trained_on = model_features(self.store, mv)
        served = Served(
            mv,
            model,
            schema,
            {
                "X-Model-Name": mv.name,
                "X-Model-Version": str(mv.version),
                "X-Model-Digest": f"sha256:{mv.sha256}",
            },
            None
            if trained_on is None
            else FeatureInputs(mv.ref, trained_on, tuple(schema.columns or ())),
        )
        example = schema.example()
        if example is not None:
            try:
                out = served.predict(example)
            except Exception as exc:
                raise SelfTestError(
                    f"{mv.ref} failed its self-test: predicting one row built from its "
                    f"signature raised {type(exc).__name__}: {exc}"
                ) from exc
            if len(out) != 1:
                raise SelfTestError(
                    f"{mv.ref} failed its self-test: one input row gave {len(out)} predictions."
                )
        return served

    def _swap(self, served: Served, kind: str, **payload: Any) -> None:
        self.current = served
        self.error = None
        assert self.endpoint_id is not None
        endpoints.record_event(
            self.store,
            self.endpoint_id,
            kind,
            version=served.version.version,
            sha256=served.version.sha256,
            self_test="passed" if served.schema.example() is not None else "no signature",
            **payload,
        )

    def _follow(self) -> None:
        while not self._stop.wait(self.settings.poll_interval):
            try:
                self.poll()
            except Exception as exc:  # a locked store or a bug must not end the follower
                logger.warning("nbmlops: following %s failed this time: %s", self.ref, exc)

    def poll(self) -> bool:
        """Check the alias once; load, self-test and swap when it moved. True if it swapped."""
        assert self.alias is not None and self.endpoint_id is not None
        target = registry_sql.alias_target(self.store, self.name, self.alias)
        current = self.current.version.version if self.current else None
        if target is None or target == current or target == self._failed:
            return False
        try:
            served = self._load(resolve(self.store, f"{self.name}/{target}"))
        except (NbmlopsError, SelfTestError) as exc:
            self._failed = target
            kept = f"; {self.name}/{current} keeps serving" if current else ""
            endpoints.record_event(
                self.store,
                self.endpoint_id,
                "swap_failed",
                version=current,
                candidate=target,
                reason=f"{exc}{kept}",
            )
            logger.warning("nbmlops: %s -> version %s not served: %s", self.ref, target, exc)
            return False
        self._failed = None
        self._swap(served, "swapped", previous=current, alias=self.alias)
        logger.info("nbmlops: %s now serves version %s", self.ref, target)
        return True
