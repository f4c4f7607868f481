"""Production skew: the metric of each registry version on its served, labelled traffic, against
the offline metric recorded when it was registered.

Every metric is written as a function of the means of per-row statistics (MAE: the mean of
``|y - ŷ|``; F1: the means of true positives, false positives and false negatives), so the
served value and each of the bootstrap's resamples cost one mean per statistic. The formulas are
scikit-learn's (``mean_absolute_error``, ``root_mean_squared_error``, ``r2_score``,
``accuracy_score``, ``f1_score`` with ``pos_label=1``), the functions the offline metric was
most likely computed with. The interval is a percentile bootstrap (Efron and Tibshirani 1993,
ch. 13) of served minus offline, the offline value being a recorded constant; the skew is
``significant`` only when the interval excludes 0 and at least :data:`MIN_LABELS` rows were
labelled, so that a few labels do not cry wolf: a percentile bootstrap of a handful of rows has
no width to speak of (two identical errors give an interval of one point, which excludes 0).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nbmlops.errors import RegistryError
from nbmlops.registry.model_version import ModelVersion
from nbmlops.store import Store
from nbmlops.store import labels as labels_sql
from nbmlops.store import registry as registry_sql

if TYPE_CHECKING:
    import pandas as pd

Array = np.ndarray[Any, Any]
RESAMPLES = 1000
SEED = 0
LEVEL = 0.95
# Below this many labelled rows no skew is called significant, whatever the interval says.
MIN_LABELS = 30


@dataclass(frozen=True)
class _Metric:
    stats: Callable[[Array, Array], Array]  # (y_true, y_pred) -> (n, k) per-row statistics
    combine: Callable[[Array], Array]  # (..., k) means -> (...) metric


def _num(y: Array) -> Array:
    return y.astype("float64")


METRICS: dict[str, _Metric] = {
    "mae": _Metric(lambda t, p: np.abs(_num(t) - _num(p))[:, None], lambda m: m[..., 0]),
    "mse": _Metric(lambda t, p: ((_num(t) - _num(p)) ** 2)[:, None], lambda m: m[..., 0]),
    "rmse": _Metric(lambda t, p: ((_num(t) - _num(p)) ** 2)[:, None], lambda m: np.sqrt(m[..., 0])),
    "r2": _Metric(
        lambda t, p: np.stack([(_num(t) - _num(p)) ** 2, _num(t), _num(t) ** 2], axis=1),
        lambda m: 1 - m[..., 0] / (m[..., 2] - m[..., 1] ** 2),
    ),
    "accuracy": _Metric(lambda t, p: (t == p).astype("float64")[:, None], lambda m: m[..., 0]),
    "f1": _Metric(
        lambda t, p: np.stack([(t == 1) & (p == 1), (t != 1) & (p == 1), (t == 1) & (p != 1)], 1),
        lambda m: 2 * m[..., 0] / (2 * m[..., 0] + m[..., 1] + m[..., 2]),
    ),
}


@dataclass(frozen=True)
class VersionSkew:
    """One served version: ``n_labelled`` rows, the ``served`` metric on them, the ``offline``
    one recorded at registration (under ``offline_key``), ``difference`` = served - offline,
    its bootstrap interval [``ci_low``, ``ci_high``] and whether that interval excludes 0."""

    version: int
    metric: str
    offline_key: str
    n_labelled: int
    served: float
    offline: float
    difference: float
    ci_low: float
    ci_high: float
    significant: bool


@dataclass(frozen=True)
class ProductionSkew:
    """Production skew of model ``name``, one :class:`VersionSkew` per version that served
    labelled traffic (or the one version asked for), oldest version first."""

    name: str
    versions: list[VersionSkew]
    level: float = LEVEL

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd  # heavy: kept out of import nbmlops

        columns = list(VersionSkew.__dataclass_fields__)
        return pd.DataFrame([asdict(v) for v in self.versions], columns=columns)

    def __repr__(self) -> str:
        lines = [f"ProductionSkew({self.name}: {len(self.versions)} version(s))"]
        lines += [
            f"  v{v.version} {v.metric}: served {v.served:.4g} vs offline {v.offline:.4g} "
            f"({v.difference:+.4g}, {self.level:.0%} CI [{v.ci_low:+.4g}, {v.ci_high:+.4g}], "
            f"n={v.n_labelled}){' SIGNIFICANT' if v.significant else ''}"
            for v in self.versions
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in VersionSkew.__dataclass_fields__)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(_cell(x))}</td>" for x in asdict(v).values())
            + "</tr>"
            for v in self.versions
        )
        title = f"Production skew of {html.escape(self.name)} ({self.level:.0%} bootstrap CI)"
        return f"<b>{title}</b><table><tr>{head}</tr>{body}</table>"


def _cell(x: object) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def production_skew(
    store: Store,
    name: str,
    version: int | None,
    *,
    since: float | None = None,
    metric: str | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> ProductionSkew:
    """The skew of ``name`` (of ``version`` only when given) on the requests since ``since``."""
    joined = labels_sql.labelled_outputs(store, name, version=version, since=since)
    by_version: dict[int, tuple[list[Any], list[Any]]] = {}
    if version is not None:
        by_version[version] = ([], [])
    for v, served, label in joined:
        pred, true = by_version.setdefault(int(v), ([], []))
        pred.append(served)
        true.append(label)
    results = []
    for v, (pred, true) in sorted(by_version.items()):
        row = registry_sql.version_row(store, name, v)
        if row is None:  # predictions has no foreign key: a log copied from another store
            continue
        mv = ModelVersion.from_row(store, row)
        results.append(_version_skew(mv, pred, true, metric, resamples, seed))
    return ProductionSkew(name, results)


def _version_skew(
    mv: ModelVersion,
    pred: Sequence[Any],
    true: Sequence[Any],
    metric: str | None,
    resamples: int,
    seed: int,
) -> VersionSkew:
    name, key = choose_metric(mv, metric)
    offline = float(mv.metrics[key])
    spec = METRICS[name]
    n = len(pred)
    if n == 0:
        nan = math.nan
        return VersionSkew(mv.version, name, key, 0, nan, offline, nan, nan, nan, False)
    stats = spec.stats(np.asarray(true), np.asarray(pred)).astype("float64")
    served = float(spec.combine(stats.mean(axis=0)))
    boot = _bootstrap(stats, spec.combine, resamples, seed) - offline
    tail = (1 - LEVEL) / 2
    low, high = (float(q) for q in np.nanquantile(boot, [tail, 1 - tail]))
    significant = n >= MIN_LABELS and bool(low > 0 or high < 0)
    return VersionSkew(
        mv.version, name, key, n, served, offline, served - offline, low, high, significant
    )


def _bootstrap(stats: Array, combine: Callable[[Array], Array], resamples: int, seed: int) -> Array:
    """The metric on ``resamples`` resamples of the rows, drawn in blocks of about 4M indices."""
    rng = np.random.default_rng(seed)
    n = len(stats)
    block = max(1, 4_000_000 // n)
    out = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, resamples, block):
            idx = rng.integers(0, n, size=(min(block, resamples - start), n))
            out.append(combine(stats[idx].mean(axis=1)))
    return np.concatenate(out)


def choose_metric(mv: ModelVersion, metric: str | None) -> tuple[str, str]:
    """``(metric function, key in mv.metrics)``: ``metric`` if given, else the first of
    :data:`METRICS` the version recorded; a key matches exactly or as a suffix (``test_mae``)."""
    names = [metric] if metric is not None else list(METRICS)
    if metric is not None and metric not in METRICS:
        raise RegistryError(
            f"Production skew has no metric {metric!r}; use one of {', '.join(METRICS)}."
        )
    for name in names:
        key = _recorded(mv.metrics, name)
        if key is not None:
            return name, key
    recorded = ", ".join(sorted(mv.metrics)) or "none"
    raise RegistryError(
        f"{mv.ref} recorded no offline {metric or 'metric production skew knows'} at "
        f"registration (its metrics: {recorded}); pass metric= one of {', '.join(METRICS)} "
        "that its run logged."
    )


def _recorded(metrics: Mapping[str, float], name: str) -> str | None:
    if name in metrics:
        return name
    suffixed = sorted(k for k in metrics if k.endswith((f"_{name}", f".{name}", f"/{name}")))
    return suffixed[0] if suffixed else None
