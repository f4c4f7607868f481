"""Data drift: detectors fitted on a reference, checked against current data.

    import nbmlops.drift as drift
    report = drift.check_drift(reference_df, current_df)        # Evidently's default choice
    report.dataset_drift, report.drift_share, report.to_frame()
    detector = drift.DriftDetector(method={"age": "ks"}).fit(reference_df)
    detector.check(current_df).plot()

Detectors follow the scikit-learn contract: ``__init__`` only stores parameters,
``fit(reference) -> self`` keeps a compact :class:`Profile` of the reference,
``check(current) -> DriftReport``, and ``check`` before ``fit`` raises
:class:`~nbmlops.errors.NotFittedError`. Checking only computes; nothing in a detector or in
:func:`check_drift` touches a store. Saving is a separate step, decided one level up:
``nbmlops.check_drift(..., save=True)`` (the public path) checks, then calls
:func:`save_report`, which keeps the report and the profile it was checked against.

Vocabulary: ``nbmlops.save_reference(data)`` is the user's verb, "keep this data as a drift
reference" (it profiles the data, then saves the profile); :func:`save_profile` is the domain
step, "store this already built :class:`Profile`". A *reference* is what a check compares with
(data, a stored profile, a model's training data); a *profile* is what is kept of it.

Modules: the shared detector base (``_base``), the tests (``_stat_tests``), the distances
(``_distances``), the per-column choice (``_auto``), profiles (``_profile``), the store side
(``_persist``) and references (``_references``: kept by ``%%track``, and the rule that resolves
a string reference).

Methods and the conventions that reproduce other tools' numbers
==================  ==========================================  ===========================
name (class)        definition (drift when)                     reproduces
==================  ==========================================  ===========================
ks (KS)             scipy.stats.ks_2samp (p < 0.05)             Evidently, alibi-detect,
                                                                NannyML (exact below 10k)
chi2_gof            scipy.stats.chisquare, expected from the    Evidently "chisquare"
(Chi2GOF)           reference proportions (p < 0.05)
chi2_contingency    scipy.stats.chi2_contingency on the 2 x k   alibi-detect, NannyML
(Chi2Contingency)   table, correction=True (p < 0.05)           ("chi2")
z (ZTest)           pooled two-proportion z-test (p < 0.05)     Evidently "z"
wasserstein         W1 / max(std(reference, ddof=0), 0.001)     Evidently "wasserstein"
(Wasserstein)       (>= 0.1)                                    (NannyML: unnormed)
jensenshannon       scipy.spatial.distance.jensenshannon,       Evidently (base=None,
(JensenShannon)     base and squared explicit (>= 0.1)          bins="evidently"); NannyML
                                                                (base=2, bins="doane");
                                                                TFDV (base=2, squared=True)
psi (PSI)           sum((p - q) ln(p / q)), epsilon for empty   Evidently (bins="evidently",
                    bins explicit (>= 0.1)                      epsilon="evidently"); classic
                                                                deciles: bins=10
hellinger           sqrt(sum((sqrt p - sqrt q)^2) / 2)          NannyML (bins="doane"),
(Hellinger)         (>= 0.1)                                    Evidently (categorical)
l_infinity          max |p - q| over values or bins (>= 0.1)    NannyML, TFDV (categorical)
(LInfinity)
==================  ==========================================  ===========================

Every test's p-value comes with an effect size that does not grow with the sample size (KS D,
Cramér's V, Cohen's h); for distances the effect size is the distance.

Default choice per column (:func:`select_method`, Evidently 0.7's rule)
=====================================  ============================  ========================
column                                 reference n <= 1000           reference n > 1000
=====================================  ============================  ========================
numeric with > 5 distinct values       ks                            wasserstein (normed)
numeric with <= 5 distinct values,     chi2_gof (> 2 values),        jensenshannon
or categorical                         z (<= 2 values)
=====================================  ============================  ========================

"n" counts the reference's non-missing values; distinct values are counted over reference and
current together. Floats are numeric; integers are numeric when the reference has more than 10
distinct values (else categorical); bools, categoricals and strings are categorical; datetimes
and other types are refused (convert them, or leave them out with ``columns=``). Missing values
and ±inf are left out and counted. Override per column: ``method={"age": "ks"}`` or a configured
detector, ``method={"age": JensenShannon(base=2)}``; ``threshold`` likewise.

Dataset verdict: drift when the share of drifted columns is >= ``drift_share`` (0.5, as
Evidently). ``multiple_testing="bonferroni"`` (alpha / k) or ``"bh"`` (Benjamini-Hochberg)
corrects the tests' thresholds over the k tested columns; then the dataset drifts when any
column does.

Profiles: the reference is summarised once (category counts; numeric distinct values and counts,
or above ``sketch_size`` distinct values an ECDF sketch with recorded error bounds) and stored
keyed by the reference's fingerprint, so later checks (``check_drift(profile, current)``) never
read the reference again; profiles of windows merge with :func:`merge_profiles`, or add up at
once with :func:`pool_profiles`. The current side may be a profile too
(``check_drift(reference_profile, pool_profiles(windows))``): then a check costs what the two
profiles' size costs, not the rows, with every statistic the rows' one when both are exact and
within the sketches' recorded bounds otherwise.
:func:`profile_dataset` keeps one for data a run reads (capped at 100,000 sampled rows), which is
how a registered model's training data gets its reference without anyone asking.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nbmlops.drift._auto import METHODS, DriftDetector, MethodSpec
from nbmlops.drift._base import BaseDetector, select_method, validate_kinds
from nbmlops.drift._distances import PSI, Hellinger, JensenShannon, LInfinity, Wasserstein
from nbmlops.drift._persist import (
    drift_reports,
    load_profile,
    load_report,
    profiles_for_dataset,
    save_profile,
    save_report,
)
from nbmlops.drift._profile import (
    DEFAULT_SKETCH_SIZE,
    ColumnProfile,
    Kind,
    NumericSummary,
    Profile,
    as_frame,
    build_profile,
    merge_profiles,
    pool_profiles,
)
from nbmlops.drift._references import (
    DEFAULT_MAX_ROWS,
    ModelVersionLike,
    Reference,
    datasets_with_profiles,
    model_references,
    profile_dataset,
    resolve_reference,
)
from nbmlops.drift._stat_tests import KS, Chi2Contingency, Chi2GOF, ZTest
from nbmlops.drift.report import ColumnDrift, DriftReport
from nbmlops.errors import DriftInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_MAX_ROWS",
    "KS",
    "METHODS",
    "PSI",
    "BaseDetector",
    "Chi2Contingency",
    "Chi2GOF",
    "ColumnDrift",
    "ColumnProfile",
    "DriftDetector",
    "DriftReport",
    "Hellinger",
    "JensenShannon",
    "Kind",
    "LInfinity",
    "ModelVersionLike",
    "NumericSummary",
    "Profile",
    "Reference",
    "Wasserstein",
    "ZTest",
    "build_profile",
    "check_drift",
    "datasets_with_profiles",
    "drift_reports",
    "load_profile",
    "load_report",
    "merge_profiles",
    "model_references",
    "pool_profiles",
    "profile_dataset",
    "profiles_for_dataset",
    "resolve_reference",
    "save_profile",
    "save_report",
    "select_method",
]


def check_drift(
    reference: pd.DataFrame | pd.Series[Any] | Profile,
    current: pd.DataFrame | pd.Series[Any] | Profile,
    columns: Sequence[Hashable] | None = None,
    method: MethodSpec | Mapping[Hashable, MethodSpec] | None = None,
    *,
    threshold: float | Mapping[Hashable, float] | None = None,
    drift_share: float = 0.5,
    multiple_testing: str | None = None,
    kinds: Mapping[Hashable, Kind] | None = None,
    sketch_size: int | None = None,
    fingerprint: bool = False,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column; one call, one report. Computes
    only: keep the report with :func:`save_report` (``nbmlops.check_drift`` does, by default).

    ``reference`` is data (a DataFrame or Series; without ``columns`` both sides must have the
    same columns) or a stored :class:`Profile` (:func:`load_profile`): then the reference data
    is never read and the cost depends on the current rows only. ``current`` is data or a
    :class:`Profile` of it (:meth:`BaseDetector.check` says what is then exact). ``kinds`` and
    ``sketch_size`` shape the profile built from reference data, so they go with data only.

    ``fingerprint=True`` records the reference data's fingerprint in the profile, which the
    store keys profiles by: a report to be saved needs it. Off by default because hashing the
    reference costs about 5% of a check that is not saved.
    """
    if isinstance(reference, Profile):
        if kinds is not None or sketch_size is not None:
            raise DriftInputError(
                "kinds= and sketch_size= shape the profile built from reference data; a "
                "Profile is already built. Pass the reference data to use them."
            )
        profile = reference
    else:
        ref = as_frame(reference, "reference")
        cur = (
            list(current.columns)
            if isinstance(current, Profile)
            else as_frame(current, "current").columns
        )
        if columns is None:
            only_ref = [c for c in ref.columns if c not in set(cur)]
            only_cur = [c for c in cur if c not in set(ref.columns)]
            if only_ref or only_cur:
                raise DriftInputError(
                    "Reference and current data have different columns: only in the reference "
                    f"{only_ref}, only in the current {only_cur}. Pass columns=[...] to compare "
                    "the ones they share.",
                    [str(c) for c in only_ref + only_cur],
                )
        validate_kinds(kinds)
        profile = build_profile(
            ref,
            columns,
            sketch_size=DEFAULT_SKETCH_SIZE if sketch_size is None else sketch_size,
            kinds=kinds,
            fingerprint=fingerprint,
        )
    detector = DriftDetector(
        method,
        threshold,
        columns=columns,
        drift_share=drift_share,
        multiple_testing=multiple_testing,
    )
    return detector.fit(profile).check(current)
