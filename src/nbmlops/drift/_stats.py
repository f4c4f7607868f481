"""Vectorised statistics on a reference summary and a current sample.

Every function here works from the reference's distinct values and counts (or its sketch) and
the current data, in O(current log current + reference summary) time, without the reference rows.
The results equal scipy's on the same data (see tests/test_drift_golden.py): KS as
``scipy.stats.ks_2samp``, W1 as ``scipy.stats.wasserstein_distance``, histogram edges as
``numpy.histogram_bin_edges``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]


# --- Wasserstein-1 via quantile functions -------------------------------------------------------


def _merge_breakpoints(a: FloatArray, b: FloatArray) -> tuple[FloatArray, IntArray, IntArray]:
    """Merged sorted breakpoints of two step quantile functions, with for each merged segment
    the index of the step of ``a`` and of ``b`` it lies in."""
    positions = np.searchsorted(b, a, side="left")
    merged = np.insert(b, positions, a)
    from_a = np.zeros(len(merged), dtype=np.int64)
    from_a[positions + np.arange(len(a))] = 1
    a_before = np.cumsum(from_a) - from_a
    b_before = np.cumsum(1 - from_a) - (1 - from_a)
    a_idx = np.minimum(a_before, len(a) - 1)
    b_idx = np.minimum(b_before, len(b) - 1)
    return merged, a_idx, b_idx


def w1_step_step(v: FloatArray, v_cum: FloatArray, w: FloatArray, w_cum: FloatArray) -> float:
    """W1 between two discrete distributions: sorted values with CDF fractions at each value."""
    merged, k, j = _merge_breakpoints(v_cum, w_cum)
    lengths = np.diff(merged, prepend=0.0)
    return float(np.dot(np.abs(v[k] - w[j]), lengths))


def w1_linear_sorted(knots: FloatArray, fractions: FloatArray, current_sorted: FloatArray) -> float:
    """W1 between a piecewise-linear CDF (``knots`` x, CDF ``fractions`` from 0 to 1) and the
    ECDF of a sorted sample, as the integral over t of |Q_F(t) - Q_G(t)|.

    On each step (j/m, (j+1)/m] of the sample's quantile function, Q_F is linear unless a knot
    falls inside; the integral of |linear - constant| is exact, and the few steps holding a knot
    are split there. When knots are as dense as the sample's steps, the points are merged.
    """
    m = len(current_sorted)
    inner = fractions[1:-1]
    scaled = inner * m
    step_of_knot = np.floor(scaled).astype(np.int64)
    inside = scaled > step_of_knot  # a knot on a step boundary needs no split
    j = step_of_knot[inside]
    if m < 2 * len(knots) or np.any(np.diff(j) == 0):
        return _w1_linear_merged(knots, fractions, current_sorted)
    t = np.arange(m + 1, dtype=np.float64)
    t /= m
    q = np.interp(t, fractions, knots)
    del t
    h0 = q[:-1] - current_sorted
    h1 = q[1:]
    h1 -= current_sorted  # q itself is not needed any more
    area = _abs_linear_integral(h0, h1, 1.0 / m)
    # Steps that hold a knot: replace the straight line by the two exact halves.
    t_k = inner[inside]
    mid = knots[1:-1][inside] - current_sorted[j]
    exact = _abs_linear_integral(h0[j], mid, t_k - j / m)
    exact += _abs_linear_integral(mid, h1[j], (j + 1) / m - t_k)
    return area + exact - _abs_linear_integral(h0[j], h1[j], 1.0 / m)


def _abs_linear_integral(h0: FloatArray, h1: FloatArray, width: FloatArray | float) -> float:
    """Sum over segments of the integral of |h|, h linear from h0 to h1 over ``width``."""
    total = np.abs(h0)
    total += np.abs(h1)
    per_width = total
    per_width *= 0.5  # same sign: the trapezoid
    crossing = np.flatnonzero(np.signbit(h0) != np.signbit(h1))
    if len(crossing):  # a sign change: (h0^2 + h1^2) / (2 (|h0| + |h1|))
        a, b = h0[crossing], h1[crossing]
        t = 2.0 * per_width[crossing]
        per_width[crossing] = 0.5 * (a * a + b * b) / np.where(t > 0, t, 1.0)
    if isinstance(width, float):
        return float(per_width.sum()) * width
    return float(np.dot(per_width, width))


def w1_limits(
    grid: FloatArray,
    f_below: FloatArray,
    f_at: FloatArray,
    n: int,
    g_below: FloatArray,
    g_at: FloatArray,
    m: int,
) -> float:
    """W1 as the integral over x of |F - G| for two CDFs (counts of n and m values) that are
    linear between consecutive points of ``grid`` (every breakpoint of either): F - G runs
    linearly from its value at one point to its left limit at the next, so each piece's
    integral of |F - G| is exact."""
    h0 = f_at[:-1] / n - g_at[:-1] / m
    h1 = f_below[1:] / n - g_below[1:] / m
    return _abs_linear_integral(h0, h1, np.diff(grid))


def _w1_linear_merged(
    knots: FloatArray, fractions: FloatArray, current_sorted: FloatArray
) -> float:
    """The same W1 by merging knots and sample points: F linear and G constant between them."""
    m = len(current_sorted)
    positions = np.searchsorted(current_sorted, knots, side="left")
    merged = np.insert(current_sorted, positions, knots)
    steps = np.arange(1, m + 1, dtype=np.float64) / m
    g = np.insert(steps, positions, positions / m)[:-1]  # G on [merged[i], merged[i + 1])
    f = np.interp(merged, knots, fractions, left=0.0, right=1.0)
    return _abs_linear_integral(f[:-1] - g, f[1:] - g, np.diff(merged))


# --- Kolmogorov-Smirnov ---------------------------------------------------------------------


def ks_step(values: FloatArray, counts: IntArray, current_sorted: FloatArray) -> float:
    """sup |F - G| for a discrete reference (distinct values, counts) and a sorted sample."""
    n = counts.sum()
    m = len(current_sorted)
    cum = np.cumsum(counts)
    f_at = cum / n
    f_before = (cum - counts) / n
    g_at = np.searchsorted(current_sorted, values, side="right") / m
    g_before = np.searchsorted(current_sorted, values, side="left") / m
    return float(max(np.max(np.abs(f_at - g_at)), np.max(np.abs(f_before - g_before))))


def ks_linear(knots: FloatArray, fractions: FloatArray, current_sorted: FloatArray) -> float:
    """sup |F - G| for a piecewise-linear reference CDF and a sorted sample."""
    m = len(current_sorted)
    f = np.interp(current_sorted, knots, fractions, left=0.0, right=1.0)
    steps = np.arange(m, dtype=np.float64) / m
    return float(max(np.max(steps + 1.0 / m - f), np.max(f - steps), 0.0))


def ks_limits(
    f_below: FloatArray, f_at: FloatArray, n: int, g_below: FloatArray, g_at: FloatArray, m: int
) -> float:
    """sup |F - G| from two CDFs (as counts of n and m values) at the points where it is
    reached: their left limits and their values there. Given at a step CDF's values, as the
    counts of two exact summaries, this is :func:`ks_step` number for number."""
    return float(
        max(np.max(np.abs(f_at / n - g_at / m)), np.max(np.abs(f_below / n - g_below / m)))
    )


def ks_asymp_pvalue(d: float, n1: int, n2: int) -> float:
    """scipy.stats.ks_2samp's two-sided asymptotic p-value (method='asymp')."""
    from scipy.stats import kstwo

    big, small = sorted([float(n1), float(n2)], reverse=True)
    en = big * small / (big + small)
    return float(np.clip(kstwo.sf(d, np.round(en)), 0.0, 1.0))


# --- histogram edges (numpy's rules, from summary statistics) ------------------------------------


def _outer_edges(lo: float, hi: float) -> tuple[float, float]:
    if lo == hi:
        return lo - 0.5, hi + 0.5
    return lo, hi


def equal_width_edges(lo: float, hi: float, width: float) -> FloatArray:
    """numpy.histogram_bin_edges for a rule that returned ``width`` on data spanning lo..hi."""
    first, last = _outer_edges(lo, hi)
    n_bins = int(np.ceil((last - first) / width)) if width else 1
    n_bins = max(n_bins, 1)
    return np.linspace(first, last, n_bins + 1, endpoint=True, dtype=np.float64)


def sturges_edges(lo: float, hi: float, size: int) -> FloatArray:
    """np.histogram_bin_edges(data, 'sturges') for data of ``size`` values spanning lo..hi."""
    width = (hi - lo) / (np.log2(size) + 1.0)
    return equal_width_edges(lo, hi, float(width))


def doane_edges(lo: float, hi: float, size: int, std: float, skewness: float) -> FloatArray:
    """np.histogram_bin_edges(data, 'doane') from the data's size, range, std and skewness."""
    width = 0.0
    if size > 2 and std > 0.0:
        sg1 = np.sqrt(6.0 * (size - 2) / ((size + 1.0) * (size + 3)))
        width = (hi - lo) / (1.0 + np.log2(size) + np.log2(1.0 + np.absolute(skewness) / sg1))
    return equal_width_edges(lo, hi, float(width))


def histogram_counts(sorted_or_raw: FloatArray, edges: FloatArray) -> IntArray:
    """np.histogram(x, edges)[0]: bins [e_i, e_i+1), the last one closed."""
    counts, _ = np.histogram(sorted_or_raw, bins=edges)
    return counts.astype(np.int64)


# --- distances on probability vectors ---------------------------------------------------------


def jensenshannon(p: FloatArray, q: FloatArray, base: float | None, squared: bool) -> float:
    from scipy.spatial.distance import jensenshannon as js

    distance = float(js(p, q, base=base))
    return distance * distance if squared else distance


def evidently_fill_zeros(p: FloatArray) -> FloatArray:
    """Evidently's PSI convention: zeros become min(non-zero) / 1e6 when that minimum is at most
    1e-4, else 1e-4 (``get_binned_data(..., feel_zeroes=True)``)."""
    out = p.copy()
    nonzero = out[out != 0]
    if len(nonzero) == 0:
        return out
    smallest = float(nonzero.min())
    out[out == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return out


def psi(p: FloatArray, q: FloatArray) -> float:
    return float(np.sum((p - q) * np.log(p / q)))


def hellinger(p: FloatArray, q: FloatArray) -> float:
    """sqrt(sum (sqrt p - sqrt q)^2) / sqrt 2, in [0, 1]; equals sqrt(1 - sum sqrt(p q))."""
    diff = np.sqrt(p) - np.sqrt(q)
    return float(math.sqrt(float(np.dot(diff, diff))) / math.sqrt(2.0))


def cohens_h(p1: float, p2: float) -> float:
    return abs(2.0 * math.asin(math.sqrt(p1)) - 2.0 * math.asin(math.sqrt(p2)))


def cramers_v(ref_counts: FloatArray, cur_counts: FloatArray) -> float:
    """Cramér's V of the 2 x k table (reference, current) x categories, no continuity correction."""
    table = np.vstack((ref_counts, cur_counts)).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0
    total = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    chi2 = float(np.sum((table - expected) ** 2 / expected))
    return math.sqrt(chi2 / total)  # min(2, k) - 1 == 1
