"""Production skew: the metric of each registry version on its served, labelled traffic, against
the offline metric recorded when it was registered.

Every metric is written as a function of the means of per-row statistics (MAE: the mean of
``|y - ŷ|``; F1: the means of true positives, false positives and false negatives), so the
served value and its interval need only sums of those statistics and of their products. The
formulas are
scikit-learn's (``mean_absolute_error``, ``root_mean_squared_error``, ``r2_score``,
``accuracy_score``, ``f1_score`` with ``pos_label=1``), the functions the offline metric was
most likely computed with. The metric of every version is computed from sums SQLite adds up
in the store (``label_matches``' covering index: a million labelled rows in 0.3 s), never from
the rows in Python.

The interval of served minus offline (the offline value being a recorded constant) is the delta
method's: the metric's gradient at the means times the sample covariance of the per-row
statistics, with Student's t quantile (n - 1 degrees of freedom), on the log scale for the error
metrics (mae, mse, rmse: positive and right-skewed) and on their own scale for r2, accuracy and
f1. It is asymptotic: measured false-alarm rates of the 95% interval on unshifted errors
(normal errors, 20,000 windows from each of two seeds; standard error 0.15%) are MAE 5.1-5.5%
at 30 labels, 5.2% at 100, 5.1% at 200, 4.9% at 500; RMSE 7.4% at 30, 5.7-6.0% at 100, 5.5% at
200, 5.0-5.2% at 500; R2 6.4-6.9% at 30, 5.5% at 200, 5.2-5.3% at 500. The first version of
this module used a percentile bootstrap (1,000 resamples, fixed seed): about 1 point higher
at 200 labels, 60 times the cost, and it needed every row. The skew is ``significant`` only
when the interval excludes 0 and at least :data:`MIN_LABELS` rows were labelled, so that a few
labels do not cry wolf; an alert that should not fire on noise also asks for a margin
(``skew.mae > offline.mae * 1.2``) and a label count.

``window``: the skew per version and per window of that many seconds (windows start at
multiples of it since the epoch: "1d" windows are UTC days), the served metric over time.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nbmlops.drift.report import DriftReport
from nbmlops.errors import RegistryError
from nbmlops.monitoring.drift_windows import feature_skew, signature_skew
from nbmlops.registry.model_version import ModelVersion
from nbmlops.store import Store
from nbmlops.store import labels as labels_sql
from nbmlops.store import registry as registry_sql
from nbmlops.store.labels import LabelledSums

if TYPE_CHECKING:
    import pandas as pd

Array = np.ndarray[Any, Any]
LEVEL = 0.95
# Below this many labelled rows no skew is called significant, whatever the interval says.
MIN_LABELS = 30


@dataclass(frozen=True)
class _Metric:
    combine: Callable[[Array], Array]  # (..., k) means of per-row statistics -> (...) metric
    log_scale: bool  # the interval is taken on the log scale (positive, right-skewed metrics)
    sums: tuple[str, ...]  # the store's sums (store.labels.SUMS) that moments reads
    # The sums of the statistics and of their pairwise products: (k,) and (k, k).
    moments: Callable[[Mapping[str, float]], tuple[Array, Array]]


def _one(total: float, square: float) -> tuple[Array, Array]:
    return np.array([total], dtype="float64"), np.array([[square]], dtype="float64")


def _r2_moments(s: Mapping[str, float]) -> tuple[Array, Array]:
    sums = np.array([s["d2"], s["y"], s["y2"]])
    products = np.array(
        [
            [s["d4"], s["d2_y"], s["d2_y2"]],
            [s["d2_y"], s["y2"], s["y3"]],
            [s["d2_y2"], s["y3"], s["y4"]],
        ]
    )
    return sums, products


def _f1_moments(s: Mapping[str, float]) -> tuple[Array, Array]:
    counts = np.array([s["tp"], s["fp"], s["fn"]], dtype="float64")  # exclusive indicators
    return counts, np.diag(counts)


METRICS: dict[str, _Metric] = {
    "mae": _Metric(
        lambda m: m[..., 0],
        True,
        ("abs_d", "d2"),
        lambda s: _one(s["abs_d"], s["d2"]),
    ),
    "mse": _Metric(
        lambda m: m[..., 0],
        True,
        ("d2", "d4"),
        lambda s: _one(s["d2"], s["d4"]),
    ),
    "rmse": _Metric(
        lambda m: np.sqrt(m[..., 0]),
        True,
        ("d2", "d4"),
        lambda s: _one(s["d2"], s["d4"]),
    ),
    "r2": _Metric(
        lambda m: 1 - m[..., 0] / (m[..., 2] - m[..., 1] ** 2),
        False,
        ("d2", "y", "y2", "d4", "d2_y", "d2_y2", "y3", "y4"),
        _r2_moments,
    ),
    "accuracy": _Metric(
        lambda m: m[..., 0],
        False,
        ("eq",),
        lambda s: _one(s["eq"], s["eq"]),
    ),
    "f1": _Metric(
        lambda m: 2 * m[..., 0] / (2 * m[..., 0] + m[..., 1] + m[..., 2]),
        False,
        ("tp", "fp", "fn"),
        _f1_moments,
    ),
}


@dataclass(frozen=True)
class VersionSkew:
    """One served version (in one window, when asked): ``n_labelled`` rows, the ``served``
    metric on them, the ``offline`` one recorded at registration (under ``offline_key``),
    ``difference`` = served - offline, its interval [``ci_low``, ``ci_high``] and whether that
    interval excludes 0. ``window_start``/``window_end``:
    the requests' arrival times (UTC seconds) the window covers, None without windows."""

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
    window_start: float | None = None
    window_end: float | None = None


@dataclass(frozen=True)
class ProductionSkew:
    """Production skew of model ``name``, one :class:`VersionSkew` per version that served
    labelled traffic (or the one version asked for), oldest version first. Per version also
    ``features``: the drift report of its served inputs against its training profile (None
    without a profile or profiled traffic), and ``signature``: how its requests fitted its
    signature (:func:`nbmlops.monitoring.drift_windows.signature_skew`). ``skipped``: the
    versions that served labelled traffic but recorded no offline metric to compare with."""

    name: str
    versions: list[VersionSkew]
    level: float = LEVEL
    features: dict[int, DriftReport | None] = field(default_factory=dict)
    signature: dict[int, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[int, str] = field(default_factory=dict)  # version -> why it has no skew

    def to_frame(self) -> pd.DataFrame:
        """One row per version (and window): the :class:`VersionSkew` fields, then
        ``feature_drift_share`` and ``signature_share`` of the version."""
        import pandas as pd  # heavy: kept out of import nbmlops

        columns = list(VersionSkew.__dataclass_fields__)
        frame = pd.DataFrame([asdict(v) for v in self.versions], columns=columns)
        features = {v: None if r is None else r.drift_share for v, r in self.features.items()}
        frame["feature_drift_share"] = frame["version"].map(features)
        shares = {v: s.get("share") for v, s in self.signature.items()}
        frame["signature_share"] = frame["version"].map(shares)
        return frame

    def _inputs_line(self, version: int) -> str:
        report = self.features.get(version)
        if report is None:
            text = "features: no training profile or profiled traffic"
        else:
            drifted = ", ".join(map(str, report.drifted_columns)) or "none"
            text = f"features: drift share {report.drift_share:.2f} (drifted: {drifted})"
        sig = self.signature.get(version) or {}
        if sig.get("requests"):
            text += (
                f"; signature: {sig['signature_errors']} refused, "
                f"{sig['with_extra_columns']} with extra columns of {sig['requests']} requests"
            )
        return text

    def __repr__(self) -> str:
        lines = [f"ProductionSkew({self.name}: {len(self.versions)} version(s))"]
        shown: set[int] = set()
        for v in self.versions:
            lines.append(
                f"  v{v.version} {v.metric}: served {v.served:.4g} vs offline {v.offline:.4g} "
                f"({v.difference:+.4g}, {self.level:.0%} CI [{v.ci_low:+.4g}, {v.ci_high:+.4g}], "
                f"n={v.n_labelled}){' SIGNIFICANT' if v.significant else ''}"
            )
            if v.version not in shown and (
                v.version in self.features or v.version in self.signature
            ):
                shown.add(v.version)
                lines.append(f"    {self._inputs_line(v.version)}")
        lines += [f"  v{v} skipped: {why}" for v, why in sorted(self.skipped.items())]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in VersionSkew.__dataclass_fields__)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(_cell(x))}</td>" for x in asdict(v).values())
            + "</tr>"
            for v in self.versions
        )
        title = f"Production skew of {html.escape(self.name)} ({self.level:.0%} intervals)"
        inputs = "".join(
            f"<li>v{v}: {html.escape(self._inputs_line(v))}</li>"
            for v in sorted(set(self.features) | set(self.signature))
        )
        more = f"<ul>{inputs}</ul>" if inputs else ""
        return f"<b>{title}</b><table><tr>{head}</tr>{body}</table>{more}"


def _cell(x: object) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def production_skew(
    store: Store,
    name: str,
    version: int | None,
    *,
    since: float | None = None,
    until: float | None = None,
    window: float | None = None,
    metric: str | None = None,
    features: bool = True,
) -> ProductionSkew:
    """The skew of ``name`` (of ``version`` only when given) on the requests that arrived in
    [``since``, ``until``), per version, and per window of ``window`` seconds when given;
    ``features``: also each version's feature and signature skew over the same range."""
    numbers = (
        [version]
        if version is not None
        else labels_sql.labelled_versions(store, name, since=since, until=until)
    )
    if metric is not None and metric not in METRICS:
        raise RegistryError(
            f"Production skew has no metric {metric!r}; use one of {', '.join(METRICS)}."
        )
    results = []
    skipped: dict[int, str] = {}
    for number in numbers:
        row = registry_sql.version_row(store, name, number)
        if row is None:  # predictions has no foreign key: a log copied from another store
            continue
        mv = ModelVersion.from_row(store, row)
        try:
            key = choose_metric(mv, metric)
        except RegistryError as exc:
            if version is not None:
                raise
            skipped[number] = str(exc)  # the other versions still have their skew
            continue
        windows = labels_sql.labelled_sums(
            store, name, number, METRICS[key[0]].sums, since=since, until=until, window=window
        )
        if not windows and window is None:  # the version asked for served nothing labelled
            windows = [LabelledSums(number, 0, {"n": 0})]
        for s in windows:
            start = None if window is None else s.window * window
            end = None if start is None or window is None else start + window
            results.append(_version_skew(mv, key, s.sums, start, end))
    served = sorted({r.version for r in results}) if features else []
    return ProductionSkew(
        name,
        results,
        features={v: feature_skew(store, name, v, since, until) for v in served},
        signature={v: signature_skew(store, name, v, since, until) for v in served},
        skipped=skipped,
    )


def _version_skew(
    mv: ModelVersion,
    key: tuple[str, str],
    sums: Mapping[str, float],
    start: float | None,
    end: float | None,
) -> VersionSkew:
    """The delta method's interval: Var(f(mean)) ~ grad(f)' Cov(stats) grad(f) / n, with f the
    metric or its logarithm, Cov the per-row statistics' sample covariance."""
    name, offline_key = key
    offline = float(mv.metrics[offline_key])
    n = int(sums["n"])
    nan = math.nan
    if n == 0:
        return VersionSkew(
            mv.version, name, offline_key, 0, nan, offline, nan, nan, nan, False, start, end
        )
    spec = METRICS[name]
    totals, products = spec.moments(sums)
    means = totals / n
    covariance = (products / n - np.outer(means, means)) * (n / (n - 1) if n > 1 else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        served = float(spec.combine(means))
        log_scale = spec.log_scale and served > 0
        scale: Callable[[Array], Array] = (
            (lambda m: np.log(spec.combine(m))) if log_scale else spec.combine
        )
        gradient = _gradient(scale, means)
        se = math.sqrt(max(float(gradient @ covariance @ gradient), 0.0) / n)
    half = _quantile(n) * se
    center = math.log(served) if log_scale else served
    low, high = ((math.exp(b) if log_scale else b) for b in (center - half, center + half))
    low, high = low - offline, high - offline
    significant = n >= MIN_LABELS and bool(low > 0 or high < 0)
    return VersionSkew(
        mv.version,
        name,
        offline_key,
        n,
        served,
        offline,
        served - offline,
        low,
        high,
        significant,
        start,
        end,
    )


def _gradient(combine: Callable[[Array], Array], at: Array) -> Array:
    """The gradient of ``combine`` at ``at`` by central differences (the metrics are smooth
    functions of a few means, so a relative step of 1e-6 is exact to about 1e-9)."""
    steps = 1e-6 * np.maximum(np.abs(at), 1e-3)
    shifted = np.repeat(at[None, :], 2 * len(at), axis=0)
    for i, h in enumerate(steps):
        shifted[2 * i, i] += h
        shifted[2 * i + 1, i] -= h
    values = combine(shifted)
    return np.asarray((values[0::2] - values[1::2]) / (2 * steps), dtype="float64")


def choose_metric(mv: ModelVersion, metric: str | None) -> tuple[str, str]:
    """``(metric function, key in mv.metrics)``: ``metric`` if given, else the first of
    :data:`METRICS` the version recorded; a key matches exactly or as a suffix, a test set's
    (``test_mae``) before a validation set's (``val_mae``) before the plain name, never a
    training set's (``train_mae``)."""
    names = [metric] if metric is not None else list(METRICS)
    for name in names:
        key = _recorded(mv.metrics, name)
        if key is not None:
            return name, key
    recorded = ", ".join(sorted(mv.metrics)) or "none"
    raise RegistryError(
        f"{mv.ref} recorded no offline {metric or 'metric production skew knows'} at "
        f"registration (its metrics: {recorded}; training metrics such as train_mae do not "
        f"count); pass metric= one of {', '.join(METRICS)} that its run logged on held-out data."
    )


# Which recorded key stands for the offline value of a metric, best first: a test set's, a
# validation set's, the plain name, then any other; never the training set's (its error is not
# what the model makes on unseen data: comparing served traffic with it cries wolf).
_SETS = (("test",), ("val", "valid", "validation", "eval", "holdout"), ("",))
_TRAINING = ("train", "training", "fit")


def _recorded(metrics: Mapping[str, float], name: str) -> str | None:
    def prefix(key: str) -> str | None:
        for sep in ("_", ".", "/"):
            if key.endswith(f"{sep}{name}"):
                return key[: -len(name) - 1].lower()
        return "" if key == name else None

    candidates = {k: p for k in metrics if (p := prefix(k)) is not None and p not in _TRAINING}
    for names in _SETS:
        found = sorted(k for k, p in candidates.items() if p in names)
        if found:
            return found[0]
    return min(candidates, default=None)


def _quantile(n: int) -> float:
    """Student's t quantile of the interval's level for ``n`` rows."""
    from scipy import stats as scipy_stats  # heavy: kept out of import nbmlops.monitoring

    return float(scipy_stats.t.ppf(0.5 + LEVEL / 2, max(n - 1, 1)))
