"""DriftDetector: a method per column, Evidently's choice by default, overridable per column.

:data:`METHODS` names every method (the tests of :mod:`._stat_tests`, the distances of
:mod:`._distances`); :func:`~nbmlops.drift._base.select_method` is the default choice.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from nbmlops.drift._base import BaseDetector, _Current, select_method, validate_kinds
from nbmlops.drift._distances import PSI, Hellinger, JensenShannon, LInfinity, Wasserstein
from nbmlops.drift._profile import DEFAULT_SKETCH_SIZE, ColumnProfile, Kind
from nbmlops.drift._stat_tests import KS, Chi2Contingency, Chi2GOF, ZTest
from nbmlops.errors import DriftInputError

METHODS: dict[str, type[BaseDetector]] = {
    "ks": KS,
    "chi2_gof": Chi2GOF,
    "chi2_contingency": Chi2Contingency,
    "z": ZTest,
    "wasserstein": Wasserstein,
    "jensenshannon": JensenShannon,
    "psi": PSI,
    "hellinger": Hellinger,
    "l_infinity": LInfinity,
}
MethodSpec = str | BaseDetector


class DriftDetector(BaseDetector):
    """Per-column method choice: Evidently's rule (:func:`select_method`) by default, or
    ``method`` for every column (a name or a configured detector such as
    ``JensenShannon(base=2)``), or a mapping column -> method for some columns.

    ``threshold`` (a number, or a mapping column -> number) replaces the method's default.
    ``kinds`` forces a column to be treated as numeric or categorical.
    """

    method_name = "auto"

    def __init__(
        self,
        method: MethodSpec | Mapping[Hashable, MethodSpec] | None = None,
        threshold: float | Mapping[Hashable, float] | None = None,
        *,
        columns: Sequence[Hashable] | None = None,
        drift_share: float = 0.5,
        multiple_testing: str | None = None,
        kinds: Mapping[Hashable, Kind] | None = None,
        sketch_size: int = DEFAULT_SKETCH_SIZE,
    ) -> None:
        self.method = method
        self.kinds = kinds
        self._init_common(threshold, columns, drift_share, multiple_testing, sketch_size)

    def _kinds(self) -> Mapping[Hashable, Kind] | None:
        return self.kinds

    def _validate_params(self) -> None:
        super()._validate_params()
        method: Any = self.method
        specs = list(method.values()) if isinstance(method, Mapping) else [method]
        for spec in specs:
            if spec is None or isinstance(spec, BaseDetector):
                continue
            if spec not in METHODS:
                raise DriftInputError(
                    f"Unknown drift method {spec!r}; choose from {', '.join(METHODS)}."
                )
        validate_kinds(self.kinds)

    def _detector_for(self, ref: ColumnProfile, cur: _Current) -> BaseDetector:
        spec: Any = self.method
        if isinstance(spec, Mapping):
            spec = spec.get(ref.name)
        if isinstance(spec, BaseDetector):
            return spec
        if spec is None:
            spec = select_method(ref.kind, ref.n, cur.n_unique_with_reference())
        return _default_detector(spec)

    def _column_threshold(self, name: Hashable, detector: BaseDetector) -> float:
        threshold: Any = self.threshold
        if isinstance(threshold, Mapping):
            threshold = threshold.get(name)
        if threshold is None:
            return detector._column_threshold(name, detector)
        return float(threshold)


_DEFAULTS: dict[str, BaseDetector] = {}


def _default_detector(name: str) -> BaseDetector:
    detector = _DEFAULTS.get(name)
    if detector is None:
        detector = _DEFAULTS[name] = METHODS[name]()
    return detector
