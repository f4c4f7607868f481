"""Drift references: keeping them without being asked, and finding the one a string names.

:func:`profile_dataset` profiles a DataFrame a run reads and keeps the profile keyed by the
data's fingerprint, so that a model trained on it can later be checked for drift with no
``save_reference`` call: ``check_drift("wine@champion", new_data)`` finds the profile of the
model's training data by that fingerprint (the registry pins it when the model is registered).

:func:`resolve_reference` is the one rule for a string reference, used by
``nbmlops.check_drift`` and so by the drift panel, the magics and REST alike: a registered model
(``"name@alias"``, ``"name/3"``, ``"name"``), else a saved profile's id (or unique prefix), else
the fingerprint of a dataset with a saved profile. Looking a model up is the registry's job, and
the registry sits above drift in the layers (it pins drift profiles when it registers), so the
caller passes the lookup in (``find_version``) rather than drift importing the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from itertools import groupby
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from nbmlops.drift._persist import load_profile, profiles_for_dataset, save_profile
from nbmlops.drift._profile import Profile, as_frame, build_profile, infer_kind
from nbmlops.errors import DriftInputError, NotFoundError, RegistryError
from nbmlops.fingerprint import fingerprint
from nbmlops.store import drift as sql

if TYPE_CHECKING:
    from nbmlops.store import Store

DEFAULT_MAX_ROWS = 100_000
"""Longer data is profiled from a deterministic sample of this many rows (``Profile.sampled``)."""


def profile_dataset(
    store: Store,
    data: Any,
    *,
    dataset_id: str | None = None,
    max_rows: int | None = DEFAULT_MAX_ROWS,
) -> str | None:
    """Keep a drift reference profile of ``data`` (a DataFrame or Series) in ``store``, keyed by
    its fingerprint; return the profile id, or None when there is nothing to profile.

    Meant to be called for every DataFrame a run reads, so it is cheap when it can be:

    - ``dataset_id`` is the fingerprint the caller already computed (``nbmlops.fingerprint``
      of the same object); when a profile of that fingerprint is stored, its id is returned
      and the data is not read at all. Without it the data is fingerprinted first.
    - Data longer than ``max_rows`` (default 100,000; None: no cap) is profiled from a
      deterministic sample of ``max_rows`` rows (the same rows every time; the profile records
      ``source_rows``). Profiling 100,000 rows x 25 columns takes ~0.1 s on a 2-core VM.
    - Columns drift checks cannot compare (datetimes, unhashable objects) are left out; data
      with no such column left, or no rows, gives None. An object whose fingerprint cannot be
      computed gives None too: there would be nothing to key the profile by.

    Anything else that is not a DataFrame or Series raises DriftInputError.
    """
    frame = as_frame(data, "reference")
    if len(frame) == 0 or frame.shape[1] == 0:
        return None
    if dataset_id is None:
        try:
            dataset_id = fingerprint(data).digest
        except TypeError:
            return None
    existing = sql.profile_ids_for_datasets(store, [dataset_id])[dataset_id]
    if existing:
        return existing[0]
    columns = [name for name in frame.columns if _comparable(name, frame[name])]
    while columns:
        try:
            profile = build_profile(frame, columns, dataset_id=dataset_id, max_rows=max_rows)
        except DriftInputError as exc:  # e.g. unhashable values: leave those columns out
            bad = set(exc.columns)
            kept = [c for c in columns if str(c) not in bad]
            if not bad or len(kept) == len(columns):
                raise
            columns = kept
            continue
        return save_profile(store, profile)
    return None


def _comparable(name: Hashable, series: Any) -> bool:
    try:
        infer_kind(name, series)
    except (DriftInputError, TypeError):
        return False
    return True


# --- finding a reference ----------------------------------------------------------------------


class ModelVersionLike(Protocol):
    """What reference resolution reads of a registered version
    (:class:`nbmlops.registry.ModelVersion` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def run_id(self) -> str | None: ...
    @property
    def reference_profile_id(self) -> str | None: ...
    @property
    def training_datasets(self) -> list[dict[str, Any]]: ...


class Reference(NamedTuple):
    """The profile a string reference names, and the model version when it names one."""

    profile: Profile
    model_name: str | None = None
    model_version: int | None = None


def resolve_reference(
    store: Store, reference: str, find_version: Callable[[str], ModelVersionLike]
) -> Reference:
    """The reference profile ``reference`` names (see the module docstring for the order).

    ``find_version`` looks a model reference up in the registry and raises a
    :class:`~nbmlops.errors.RegistryError` when there is none; a reference with ``@`` or ``/``
    can only be a model, so its error is the one raised. A model's reference is its training
    data's profile: the one pinned when it was registered, else the newest one of that data.
    """
    if "@" in reference or "/" in reference:
        return _model_reference(store, find_version(reference))
    try:
        version = find_version(reference)
    except RegistryError:
        pass
    else:
        return _model_reference(store, version)
    try:
        return Reference(load_profile(store, reference))
    except NotFoundError:
        pass
    by_dataset = profiles_for_dataset(store, reference)
    if by_dataset:
        return Reference(by_dataset[0])
    raise DriftInputError(
        f"Reference {reference!r} is not a registered model, a saved profile id or the "
        "fingerprint of a dataset with a saved profile; pass a DataFrame, or save one with "
        "nbm.save_reference(df)."
    )


def _model_reference(store: Store, version: ModelVersionLike) -> Reference:
    profile_id = version.reference_profile_id
    if profile_id is None:
        raise DriftInputError(_no_reference_message(version))
    return Reference(load_profile(store, profile_id), version.name, version.version)


def _no_reference_message(version: ModelVersionLike) -> str:
    ref = f"{version.name}/{version.version}"
    if version.run_id is None:
        return (
            f"{ref} was registered from a model object, not a run, so its training data is "
            "unknown; pass the reference data instead: nbm.check_drift(X_train, current)."
        )
    training = version.training_datasets
    if not training:
        return (
            f"{ref}'s training run {version.run_id} recorded no input DataFrame matching the "
            "model's features, so its training data is unknown; pass the reference data "
            "instead: nbm.check_drift(X_train, current)."
        )
    names = ", ".join(f"{d['name']} ({str(d['fingerprint'])[:12]})" for d in training)
    return (
        f"No saved reference for the training data of {ref} ({names}). Save one where that "
        f"data is in memory: nbm.save_reference({training[0]['name']}); or pass the "
        "reference data instead: nbm.check_drift(X_train, current)."
    )


# --- what a check can be made against ---------------------------------------------------------


def model_references(store: Store) -> list[str]:
    """The model references a drift check can name, in one query: per model (by name) its
    aliases (``"name@alias"``, in version order), then its versions newest first
    (``"name/3"``); deleted versions are left out."""
    out: list[str] = []
    for name, group in groupby(sql.model_references(store), key=lambda r: r.name):
        versions = list(group)
        out += [f"{name}@{alias}" for r in versions for alias in r.aliases]
        out += [f"{name}/{r.version}" for r in reversed(versions)]
    return out


def datasets_with_profiles(store: Store, dataset_ids: Iterable[str]) -> set[str]:
    """The dataset fingerprints among ``dataset_ids`` that have a saved reference profile
    (one query; the profiles themselves are not read)."""
    ids: Sequence[str] = list(dataset_ids)
    return {d for d, profiles in sql.profile_ids_for_datasets(store, ids).items() if profiles}
