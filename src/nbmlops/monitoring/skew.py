"""Production skew: the metric of each registry version on its served, labelled traffic, against
the offline metric recorded when it was registered.

Every metric is written as a function of the means of per-row statistics (MAE: the mean of
``|y - ŷ|``; F1: the means of true positives, false positives and false negatives), so the
served value and each of the bootstrap's resamples cost one mean per statistic. The formulas are
scikit-learn's (``mean_absolute_error``, ``root_mean_squared_error``, ``r2_score``,
``accuracy_score``, ``f1_score`` with ``pos_label=1``), the functions the offline metric was
most likely computed with. The interval is of served minus offline, the offline value being a
recorded constant: up to :data:`BOOTSTRAP_MAX` labelled rows a percentile bootstrap (Efron and
Tibshirani 1993, ch. 13), which needs every row; above it the normal interval of the delta
method (the metric's gradient at the means, times the covariance of the per-row statistics),
which needs only sums that SQLite adds up in the store: a million labelled rows cost 0.3 s
instead of the bootstrap's 13 s, and at that size the two intervals agree (tested). The skew
is ``significant`` only when the interval excludes 0 and at least :data:`MIN_LABELS` rows were
labelled, so that a few labels do not cry wolf: a percentile bootstrap of a handful of rows has
no width to speak of (two identical errors give an interval of one point, which excludes 0).

``window``: the skew per version and per window of that many seconds (windows start at
multiples of it since the epoch: "1d" windows are UTC days), the served metric over time.
"""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
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
RESAMPLES = 1000
SEED = 0
LEVEL = 0.95
# Below this many labelled rows no skew is called significant, whatever the interval says.
MIN_LABELS = 30
# Up to this many labelled rows (of one version and window) the bootstrap; above, the analytic.
BOOTSTRAP_MAX = 10_000


@dataclass(frozen=True)
class _Metric:
    stats: Callable[[Array, Array], Array]  # (y_true, y_pred) -> (n, k) per-row statistics
    combine: Callable[[Array], Array]  # (..., k) means -> (...) metric
    sums: tuple[str, ...]  # the store's sums (store.labels.SUMS) that moments reads
    # The sums of the statistics and of their pairwise products: (k,) and (k, k).
    moments: Callable[[Mapping[str, float]], tuple[Array, Array]]


def _num(y: Array) -> Array:
    return y.astype("float64")


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
        lambda t, p: np.abs(_num(t) - _num(p))[:, None],
        lambda m: m[..., 0],
        ("abs_d", "d2"),
        lambda s: _one(s["abs_d"], s["d2"]),
    ),
    "mse": _Metric(
        lambda t, p: ((_num(t) - _num(p)) ** 2)[:, None],
        lambda m: m[..., 0],
        ("d2", "d4"),
        lambda s: _one(s["d2"], s["d4"]),
    ),
    "rmse": _Metric(
        lambda t, p: ((_num(t) - _num(p)) ** 2)[:, None],
        lambda m: np.sqrt(m[..., 0]),
        ("d2", "d4"),
        lambda s: _one(s["d2"], s["d4"]),
    ),
    "r2": _Metric(
        lambda t, p: np.stack([(_num(t) - _num(p)) ** 2, _num(t), _num(t) ** 2], axis=1),
        lambda m: 1 - m[..., 0] / (m[..., 2] - m[..., 1] ** 2),
        ("d2", "y", "y2", "d4", "d2_y", "d2_y2", "y3", "y4"),
        _r2_moments,
    ),
    "accuracy": _Metric(
        lambda t, p: (t == p).astype("float64")[:, None],
        lambda m: m[..., 0],
        ("eq",),
        lambda s: _one(s["eq"], s["eq"]),
    ),
    "f1": _Metric(
        lambda t, p: np.stack([(t == 1) & (p == 1), (t != 1) & (p == 1), (t == 1) & (p != 1)], 1),
        lambda m: 2 * m[..., 0] / (2 * m[..., 0] + m[..., 1] + m[..., 2]),
        ("tp", "fp", "fn"),
        _f1_moments,
    ),
}


@dataclass(frozen=True)
class VersionSkew:
    """One served version (in one window, when asked): ``n_labelled`` rows, the ``served``
    metric on them, the ``offline`` one recorded at registration (under ``offline_key``),
    ``difference`` = served - offline, its interval [``ci_low``, ``ci_high``] (``interval``:
    bootstrap or normal) and whether that interval excludes 0. ``window_start``/``window_end``:
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
    interval: str = "bootstrap"
    window_start: float | None = None
    window_end: float | None = None


@dataclass(frozen=True)
class ProductionSkew:
    """Production skew of model ``name``, one :class:`VersionSkew` per version that served
    labelled traffic (or the one version asked for), oldest version first. Per version also
    ``features``: the drift report of its served inputs against its training profile (None
    without a profile or profiled traffic), and ``signature``: how its requests fitted its
    signature (:func:`nbmlops.monitoring.drift_windows.signature_skew`)."""

    name: str
    versions: list[VersionSkew]
    level: float = LEVEL
    features: dict[int, DriftReport | None] = field(default_factory=dict)
    signature: dict[int, dict[str, Any]] = field(default_factory=dict)

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
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> ProductionSkew:
    """The skew of ``name`` (of ``version`` only when given) on the requests that arrived in
    [``since``, ``until``), per version, and per window of ``window`` seconds when given;
    ``features``: also each version's feature and signature skew over the same range."""
    numbers = (
        [version]
        if version is not None
        else labels_sql.labelled_versions(store, name, since=since, until=until)
    )
    results = []
    for number in numbers:
        row = registry_sql.version_row(store, name, number)
        if row is None:  # predictions has no foreign key: a log copied from another store
            continue
        mv = ModelVersion.from_row(store, row)
        key = choose_metric(mv, metric)
        windows = labels_sql.labelled_sums(
            store, name, number, METRICS[key[0]].sums, since=since, until=until, window=window
        )
        if not windows and window is None:  # the version asked for served nothing labelled
            windows = [LabelledSums(number, 0, {"n": 0})]
        for s in windows:
            start = None if window is None else s.window * window
            end = None if start is None or window is None else start + window
            n = int(s.sums["n"])
            if 0 < n <= BOOTSTRAP_MAX:
                low = since if start is None else max(start, since or start)
                high = until if end is None else min(end, until or end)
                rows = labels_sql.labelled_outputs(
                    store, name, version=number, since=low, until=high
                )
                skew = _bootstrap_skew(
                    mv, key, [r[2] for r in rows], [r[3] for r in rows], resamples, seed
                )
            else:
                skew = _normal_skew(mv, key, s.sums)
            results.append(replace(skew, window_start=start, window_end=end))
    served = sorted({r.version for r in results}) if features else []
    return ProductionSkew(
        name,
        results,
        features={v: feature_skew(store, name, v, since, until) for v in served},
        signature={v: signature_skew(store, name, v, since, until) for v in served},
    )


def _bootstrap_skew(
    mv: ModelVersion,
    key: tuple[str, str],
    pred: Sequence[Any],
    true: Sequence[Any],
    resamples: int,
    seed: int,
) -> VersionSkew:
    name, offline_key = key
    offline = float(mv.metrics[offline_key])
    spec = METRICS[name]
    n = len(pred)
    stats = spec.stats(np.asarray(true), np.asarray(pred)).astype("float64")
    served = float(spec.combine(stats.mean(axis=0)))
    boot = _bootstrap(stats, spec.combine, resamples, seed) - offline
    tail = (1 - LEVEL) / 2
    low, high = (float(q) for q in np.nanquantile(boot, [tail, 1 - tail]))
    significant = n >= MIN_LABELS and bool(low > 0 or high < 0)
    return VersionSkew(
        mv.version, name, offline_key, n, served, offline, served - offline, low, high, significant
    )


def _normal_skew(mv: ModelVersion, key: tuple[str, str], sums: Mapping[str, float]) -> VersionSkew:
    """The delta method's interval: Var(g(mean)) ~ grad(g)' Cov(stats) grad(g) / n."""
    name, offline_key = key
    offline = float(mv.metrics[offline_key])
    n = int(sums["n"])
    if n == 0:
        nan = math.nan
        return VersionSkew(
            mv.version, name, offline_key, 0, nan, offline, nan, nan, nan, False, "normal"
        )
    spec = METRICS[name]
    totals, products = spec.moments(sums)
    means = totals / n
    covariance = products / n - np.outer(means, means)
    with np.errstate(divide="ignore", invalid="ignore"):
        served = float(spec.combine(means))
        gradient = _gradient(spec.combine, means)
        se = math.sqrt(max(float(gradient @ covariance @ gradient), 0.0) / n)
    half = statistics.NormalDist().inv_cdf(0.5 + LEVEL / 2) * se
    difference = served - offline
    low, high = difference - half, difference + half
    significant = n >= MIN_LABELS and bool(low > 0 or high < 0)
    return VersionSkew(
        mv.version,
        name,
        offline_key,
        n,
        served,
        offline,
        difference,
        low,
        high,
        significant,
        "normal",
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
