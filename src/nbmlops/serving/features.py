"""Serving a model trained from a feature store training set (issue #17 items 3-4): requests
may carry entity keys instead of features, and every request is checked against the data
contract of the training set.

* **Features fetched online.** A request whose rows carry every entity key column and none of
  the model's feature columns gets the features from the online store
  (:func:`nbmlops.feature_store.online.online_features`, the view versions the model was
  trained on, TTL enforced): an expired or never materialised value is null, and both the
  response (``feature_status``, per row) and the prediction log say so. Rows that carry the
  features are served as before; some feature columns without the others is a 400 naming the
  missing ones (half a row fetched and half sent would mix two moments' values silently).
* **The data contract.** The values the model is given (sent or fetched) are checked against
  :func:`nbmlops.feature_store.contract.violations`: a null where training had none, a number
  outside the training range, a category never seen, a value of the wrong type. The policy
  (``nbmlops serve --contract``): ``reject`` answers 400 naming the column, row and value;
  ``log`` (default) serves, names the columns in ``X-Nbmlops-Contract-Violations`` and records
  each violation with the prediction; ``off`` checks nothing.

What happened to a request (values fetched expired or missing, violations served under
``log``) is recorded in the prediction log's ``error`` column of the 200 answer: the log has
no other column for it (docs/schema.md, ``predictions``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbmlops.errors import EntityKeyError, FeatureError
from nbmlops.feature_store.contract import violations
from nbmlops.feature_store.model_features import ModelFeatures
from nbmlops.feature_store.online import PRESENT, online_features
from nbmlops.serving.formats import RequestError
from nbmlops.store import Store

if TYPE_CHECKING:
    import pandas as pd

CONTRACT_POLICIES = ("reject", "log", "off")


def check_contract_policy(policy: str) -> str:
    """``policy`` if it is a contract policy, else ValueError listing the choices."""
    if policy not in CONTRACT_POLICIES:
        raise ValueError(
            f"contract={policy!r} is not a policy; choose one of {', '.join(CONTRACT_POLICIES)}."
        )
    return policy


@dataclass
class FeatureNotes:
    """What the feature layer did to one request: per row, each fetched feature's status
    (None: nothing fetched), the lines for the log, the columns that broke the contract."""

    status: list[dict[str, str]] | None = None
    lines: list[str] = field(default_factory=list)
    violated: list[str] = field(default_factory=list)

    def logged(self) -> str | None:
        """The text recorded with a served prediction (None when all was well)."""
        return "; ".join(self.lines) or None


@dataclass(frozen=True)
class FeatureInputs:
    """How the inputs of a version trained from a training set are completed and checked."""

    model: str  # the version's reference, for messages
    features: ModelFeatures
    signature: tuple[str, ...]  # the version's input columns

    def complete(
        self, store: Store, frame: pd.DataFrame, positional: bool, notes: FeatureNotes
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The rows as scored (logged and profiled) and the rows for the model: ``frame``
        itself when it carries the features (or values by position), else ``frame`` with the
        features fetched online by its entity key columns, and without the keys the model
        does not take. RequestError when a row carries some features but not all, or neither
        the features nor the keys."""
        if positional:
            return frame, frame
        given = {str(c) for c in frame.columns}
        columns, keys = self.features.columns, self.features.keys
        sent = [c for c in columns if c in given]
        if len(sent) == len(columns):
            return frame, frame
        if sent:
            missing = [c for c in columns if c not in given]
            raise RequestError(
                400,
                f"The request carries feature column(s) {_names(sent)} of {self.model} but not "
                f"{_names(missing)}: send every feature column ({_names(columns)}), or only the "
                f"entity key column(s) ({_names(keys)}) to have them fetched online.",
                column=missing[0],
            )
        absent = [k for k in keys if k not in given]
        if absent:
            raise RequestError(
                400,
                f"The request carries neither the feature columns of {self.model} "
                f"({_names(columns)}) nor the entity key column(s) to fetch them by: "
                f"{_names(absent)} missing.",
                column=absent[0],
            )
        return self._fetch(store, frame, notes)

    def _fetch(
        self, store: Store, frame: pd.DataFrame, notes: FeatureNotes
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        import pandas as pd  # loaded with the request's frame already

        keys = self.features.keys
        sent = {str(c): frame[c].tolist() for c in frame.columns}  # per column: ~10x to_dict
        for key in keys:
            for index, value in enumerate(sent[key]):
                if value is None or value != value:  # None or NaN: no entity to look up
                    raise RequestError(
                        400,
                        f"Row {index} has no value for the entity key column {key!r}; "
                        f"{self.model} fetches its features by {_names(keys)}.",
                        column=key,
                    )
        rows = [
            dict(zip(keys, values, strict=True))
            for values in zip(*(sent[k] for k in keys), strict=True)
        ]
        try:
            online = online_features(store, self.features.refs, rows)
        except EntityKeyError as exc:  # the request's keys
            raise RequestError(400, str(exc), column=keys[0]) from None
        except FeatureError as exc:  # the server's store, not the request, is at fault
            raise RequestError(
                503, f"{self.model} cannot fetch its features online: {exc}"
            ) from None
        columns = self.features.columns
        values = {c: [row[i] for row in online.values] for i, c in enumerate(columns)}
        notes.status = [dict(zip(columns, row, strict=True)) for row in online.statuses]
        for index, statuses in enumerate(notes.status):
            unavailable = {c: s for c, s in statuses.items() if s != PRESENT}
            if unavailable:
                entity = ", ".join(f"{k}={rows[index][k]!r}" for k in keys)
                what = ", ".join(f"{c} {s}" for c, s in unavailable.items())
                notes.lines.append(f"row {index} ({entity}): {what}, served as null")
        scored = pd.DataFrame({**sent, **values})
        unused = set(keys) - set(self.signature)
        return scored, pd.DataFrame(
            {c: v for c, v in {**sent, **values}.items() if c not in unused}
        )

    def check(self, model_input: Any, policy: str, notes: FeatureNotes) -> None:
        """Check the model's input against the contract; under ``reject`` a RequestError names
        every violation, under ``log`` they are noted."""
        if policy == "off" or not hasattr(model_input, "columns"):
            return
        specs = self.features.contract.get("columns", {})
        names = [c for c in specs if c in model_input.columns]
        if not names:
            return
        found = [
            (c, line)
            for c in names
            for line in violations(
                {"columns": {c: specs[c]}}, [{c: v} for v in model_input[c].tolist()]
            )
        ]
        if not found:
            return
        if policy == "reject":
            raise RequestError(
                400,
                f"The request breaks the data contract of {self.model} (its training set): "
                + "; ".join(line for _, line in found)
                + ". Send values like those it was trained on, or serve it with --contract log.",
                column=found[0][0],
            )
        notes.violated = list(dict.fromkeys(c for c, _ in found))
        notes.lines.extend(f"contract: {line}" for _, line in found)


def logged_body(frame: pd.DataFrame) -> bytes:
    """The inputs as scored, for the prediction log of a request whose features were fetched:
    the entity keys and the fetched values (a null where one was expired or missing), as a
    ``dataframe_split`` body."""
    split = frame.to_json(orient="split", index=False, date_format="iso")
    return b'{"dataframe_split": ' + split.encode() + b"}"


def response_status(notes: FeatureNotes) -> dict[str, Any]:
    """What the answer says of fetched features (nothing when none were fetched)."""
    return {} if notes.status is None else {"feature_status": notes.status}


def _names(columns: Any) -> str:
    return ", ".join(map(str, columns))
