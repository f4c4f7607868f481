"""Drift: keep a reference profile, check current data against a reference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbmlops.capture import run as _run
from nbmlops.errors import DriftInputError, NotFoundError, RegistryError
from nbmlops.registry.versions import resolve as resolve_version
from nbmlops.store import Store, StoreLike, open_store

if TYPE_CHECKING:
    from nbmlops.drift import DriftReport


def save_reference(
    data: Any,
    columns: list[str] | None = None,
    *,
    max_rows: int | None = None,
    store: StoreLike = None,
) -> str:
    """Profile ``data`` (bins, counts, quantile sketch, category frequencies) and keep the
    profile in the store, keyed by the data's fingerprint; returns the profile id. Later drift
    checks against it (or against a model trained on it) never need the data again.
    ``max_rows`` profiles a deterministic sample of that many rows of longer data."""
    # nbmlops.drift loads pandas and numpy; `import nbmlops` must not.
    from nbmlops import drift

    return drift.save_profile(
        open_store(store), drift.build_profile(data, columns, max_rows=max_rows)
    )


def check_drift(
    reference: Any,
    current: Any,
    columns: list[str] | None = None,
    method: Any = None,
    *,
    save: bool = True,
    store: StoreLike = None,
    **options: Any,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column.

    ``reference`` is a DataFrame/Series; the id (or a unique prefix) of a saved reference
    profile; the fingerprint of a dataset that has one (a run's input, see
    ``nbm.get_run(id).datasets``); or a registered model (``"name@alias"``, ``"name/3"``,
    ``"name"``), checked against its training data's profile: the one pinned when it was
    registered, else the newest one of that data (kept by ``%%track`` or
    ``nbm.save_reference(X_train)``). The report is saved in the store (linked to the active
    run, and to the model) unless ``save=False``. ``options``: ``threshold``, ``drift_share``,
    ``multiple_testing`` (see nbmlops.drift).
    """
    # nbmlops.drift loads pandas and numpy; `import nbmlops` must not.
    from nbmlops import drift

    st = open_store(store)
    active = _run.active_run()
    run_id = active.run_id if active is not None and active.store is st else None
    target = st if save else None
    if not isinstance(reference, str):
        return drift.check_drift(
            reference, current, columns, method, store=target, run_id=run_id, **options
        )
    profile, model_name, model_version = _reference_profile(st, reference)
    return drift.check_against_profile(
        profile,
        current,
        method,
        columns=columns,
        store=target,
        run_id=run_id,
        model_name=model_name,
        model_version=model_version,
        **options,
    )


def _reference_profile(st: Store, reference: str) -> tuple[Any, str | None, int | None]:
    """The profile a string reference names, and the model version when it names one."""
    # nbmlops.drift loads pandas and numpy; `import nbmlops` must not.
    from nbmlops import drift

    if "@" in reference or "/" in reference:
        version = resolve_version(st, reference)
    else:  # a model's name first, then a profile id (or prefix), then a dataset fingerprint
        try:
            version = resolve_version(st, reference)
        except RegistryError:
            try:
                return drift.load_profile(st, reference), None, None
            except NotFoundError:
                pass
            by_dataset = drift.profiles_for_dataset(st, reference)
            if by_dataset:
                return by_dataset[0], None, None
            raise DriftInputError(
                f"Reference {reference!r} is not a registered model, a saved profile id or the "
                "fingerprint of a dataset with a saved profile; pass a DataFrame, or save one "
                "with nbm.save_reference(df)."
            ) from None
    profile_id = version.reference_profile_id
    if profile_id is not None:
        return drift.load_profile(st, profile_id), version.name, version.version
    raise DriftInputError(_no_reference_message(version))


def _no_reference_message(version: Any) -> str:
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
