"""Pull the model registry from an MLflow tracking server (issue #19 items 2-3: registry state in
the round trip).

Push's mapping of the registry (:mod:`nbmlops.sync.push`) read backwards. A version push sent
carries the tags ``nbmlops.sha256``, ``nbmlops.version``, ``nbmlops.file`` ..., its source is
the MLflow model folder ``registry/<name>/<v>/`` holding the model file and ``version.json``:
the whole ``model_versions`` row (signature, datasets, metrics and libraries have no MLflow
field). Every ``model_events`` row is a JSON tag ``nbmlops.event.<at>.<kind>`` on the version
(or on the model, for an event without a version).

What a pull does, per model (all of them, or those with a version trained by a run of the pulled
experiment):

- a version whose content is already here (same name and sha256) is only mapped to its MLflow
  version (``sync_model_versions``), so pushing back sends nothing;
- another one is downloaded through the artifact proxy, its sha256 checked against the
  ``nbmlops.sha256`` tag (and the row's) **before** anything is stored: a file changed on the
  server is refused, named in the report, and the pull goes on (a registry hands out models to
  load, and unpickling unverified bytes runs whatever they say: see
  :mod:`nbmlops.registry.serialization`); it is then registered with its original row (who, when,
  the ``registered`` event's actor, host, time and payload). Versions come in the pushing
  store's order, so an empty store gets the same numbers;
- every other event (alias moves, promotion decisions, deprecations, deletions) is replayed
  with its original time, actor, host and payload, in time order and interleaved with the
  registrations, so an alias points where it pointed and an empty store even gets the same
  event ids. An event already here (same time, kind, version and alias) is skipped: pulling
  twice adds nothing. In an alias event's payload, ``previous`` (a version number) and
  ``promotion`` (the event id of the decision) are translated to this store's numbers;
- a version without nbmlops tags (logged by MLflow or another tool) is not imported: its
  flavour is MLflow's, load it with mlflow. The report counts them.

A version pushed before ``version.json`` existed comes back from its tags: its signature,
datasets, metrics and libraries are unknown (NULL) and the report says so. A version whose
training run is not in this store (pulled with ``experiment=`` while it was trained in another
experiment) is not imported: its row names the run, and a row is never changed later.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from nbmlops.errors import SyncError
from nbmlops.store import registry as store_registry
from nbmlops.store import sync as store_sync
from nbmlops.store.db import Store
from nbmlops.store.objects import ChunkDigests, blake3_hex
from nbmlops.sync.mlflow_rest import Json, MlflowClient
from nbmlops.sync.push import _pages, _quoted

EVENT_TAG = "nbmlops.event."
_ROW_FILE = "version.json"
# model_versions columns but name and version (numbered here) and the digests (computed here).
_COLUMNS = (
    "sha256",
    "size",
    "format",
    "class",
    "run_id",
    "signature",
    "datasets",
    "metrics",
    "libraries",
    "description",
    "created_by",
    "created_at",
)
# Ties in time: a version is registered before anything happens to it, and a promotion decision
# is recorded before the alias move it caused.
_RANK = {"registered": 0, "promotion": 1}


@dataclass
class RegistryPull:
    """What a pull of the registry did: counts, notes, and the versions it refused."""

    models: int = 0  # models with nbmlops versions on the server
    versions: int = 0  # versions imported
    mapped: int = 0  # versions already here, mapped to their MLflow version
    events: int = 0  # events replayed
    foreign: int = 0  # versions without nbmlops tags: not imported
    notes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@dataclass
class _Remote:
    """One MLflow version carrying nbmlops tags."""

    mlflow_version: str
    sha256: str
    number: int  # the pushing store's version number
    tags: dict[str, str]
    source: str
    description: str | None


@dataclass
class _Event:
    record: dict[str, Any]
    remote: _Remote | None  # the version whose tag it was; None: a model tag

    @property
    def order(self) -> tuple[float, int]:
        return float(self.record["at"]), _RANK.get(str(self.record["kind"]), 2)


def pull_registry(store: Store, client: MlflowClient, runs: set[str] | None) -> RegistryPull:
    """Import the registered models of the server (``runs``: only those with a version trained
    by one of these MLflow runs; None: all)."""
    result = RegistryPull()
    for model in _pages(
        client, "registered-models/search", "registered_models", {"max_results": 1000}
    ):
        name = str(model["name"])
        versions = list(
            _pages(
                client,
                "model-versions/search",
                "model_versions",
                {"filter": f"name = '{_quoted(name)}'", "max_results": 1000},
            )
        )
        if runs is not None and not any(v.get("run_id") in runs for v in versions):
            continue
        _ModelPull(store, client, result, name).run(versions)
    return result


class _ModelPull:
    def __init__(self, store: Store, client: MlflowClient, result: RegistryPull, name: str):
        self.store = store
        self.client = client
        self.result = result
        self.name = name
        self.local_by_sha = {v.sha256: v.version for v in store_registry.versions_of(store, name)}
        self.mapped: dict[str, int] = {}  # MLflow version -> local version
        self.by_number: dict[int, int] = {}  # the pushing store's number -> local version
        self.seen: dict[tuple[float, str, int | None, str | None], int] = {}
        self.decisions: dict[str | None, int] = {}  # alias -> local id of its last decision

    def run(self, versions: list[Json]) -> None:
        ours, foreign = [], []
        for v in versions:
            tags = {t["key"]: t["value"] for t in v.get("tags", [])}
            if "nbmlops.sha256" in tags:
                ours.append(self._remote(v, tags))
            else:
                foreign.append(str(v["version"]))
        if foreign:
            self.result.foreign += len(foreign)
            self.result.notes.append(
                f"model {self.name!r}: MLflow version{'s' if len(foreign) > 1 else ''} "
                f"{', '.join(foreign)} without nbmlops tags not imported (their flavour is "
                "MLflow's; load them with mlflow)"
            )
        if not ours:
            return
        self.result.models += 1
        server = self.client.server
        events_before = store_registry.events_of(self.store, self.name)
        unsent = bool(events_before) and max(e.event_id for e in events_before) > (
            store_sync.last_event_sent(self.store, server, self.name)
        )
        for e in events_before:
            self.seen[(e.at, e.kind, e.version, e.alias)] = e.event_id
            if e.kind == "promotion":
                self.decisions[e.alias] = e.event_id
        info = self.client.call("GET", "registered-models/get", {"name": self.name})
        model = info["registered_model"]
        description = model.get("description") or None
        numbers = [r.number for r in ours]
        timeline: list[_Event] = []
        for r in ours:
            records = self._records(r.tags, f"version {r.mlflow_version}")
            registered = [x for x in records if x["kind"] == "registered"][:1]
            timeline.append(_Event((registered or [_registration(r)])[0], r))
            timeline += [_Event(x, r) for x in records if x["kind"] != "registered"]
        model_tags = {t["key"]: t["value"] for t in model.get("tags", [])}
        timeline += [
            _Event(x, None)
            for x in self._records(model_tags, "the model")
            if x["kind"] != "registered"  # a registration belongs to its version
        ]
        for event in sorted(timeline, key=lambda e: e.order):
            if event.record["kind"] == "registered" and event.remote is not None:
                local = self._register(event, description)
                if local is not None and numbers.count(event.remote.number) == 1:
                    self.by_number[event.remote.number] = local
            else:
                self._replay(event)
        if not unsent:
            after = store_registry.events_of(self.store, self.name)
            if after:  # all of them are on the server now: pushing back sends none
                store_sync.record_event_sent(
                    self.store, server, self.name, max(e.event_id for e in after)
                )

    def _remote(self, v: Json, tags: dict[str, str]) -> _Remote:
        number = tags.get("nbmlops.version", "0")
        return _Remote(
            mlflow_version=str(v["version"]),
            sha256=tags["nbmlops.sha256"],
            number=int(number) if number.isdigit() else 0,
            tags=tags,
            source=str(v.get("source", "")),
            description=v.get("description") or None,
        )

    def _records(self, tags: dict[str, str], where: str) -> list[dict[str, Any]]:
        records = []
        for key, value in tags.items():
            if not key.startswith(EVENT_TAG):
                continue
            try:
                record = json.loads(value)
                float(record["at"]), str(record["kind"])
            except (ValueError, TypeError, KeyError):
                self.result.notes.append(
                    f"model {self.name!r}, {where}: the tag {key} is not an nbmlops event "
                    "record (cut or edited on the server): that event was not imported"
                )
                continue
            records.append(record)
        return records

    # -- a version ------------------------------------------------------------------------

    def _register(self, event: _Event, description: str | None) -> int | None:
        remote = event.remote
        assert remote is not None
        server = self.client.server
        local = self.local_by_sha.get(remote.sha256)
        if local is None:
            try:
                local = self._import(remote, event.record, description)
            except _Refused as refused:
                self.result.refused.append(
                    f"{self.name} MLflow version {remote.mlflow_version} (nbmlops version "
                    f"{remote.number}): {refused}"
                )
                return None
            self.local_by_sha[remote.sha256] = local
            self.result.versions += 1
        else:
            self.result.mapped += 1
        store_sync.record_version(self.store, server, self.name, local, remote.mlflow_version)
        self.mapped[remote.mlflow_version] = local
        return local

    def _import(self, remote: _Remote, record: dict[str, Any], description: str | None) -> int:
        # The source is the MLflow model folder; nbmlops.file names the model file in it.
        file = remote.tags.get("nbmlops.file")
        root, marker, path = remote.source.partition("/registry/")
        if not marker or not file:
            raise _Refused(
                f"its source {remote.source} is not a model folder this nbmlops pushes (no "
                "nbmlops.file tag: an earlier nbmlops pushed the file alone); push it again "
                "from a store that has it"
            )
        source = f"{remote.source}/{file}"
        try:
            row = self._row(remote, root, f"registry/{path}/{_ROW_FILE}")
            data = self.client.get_artifact(root, source[len(root) + 1 :])
        except SyncError as exc:
            if exc.status is None and exc.call != "GET mlflow-artifacts":
                raise  # no answer: the server went away, the whole pull stops
            raise _Refused(str(exc)) from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != remote.sha256 or row["sha256"] != remote.sha256:
            raise _Refused(
                f"its file {source} has sha256 {actual}, but the version was pushed with "
                f"sha256 {remote.sha256}: it was changed on the server after it was pushed. "
                "Nothing of it was stored; push it again from a store that has it."
            )
        if row["run_id"] is not None and not store_sync.local_run_exists(self.store, row["run_id"]):
            raise _Refused(
                f"its training run {row['run_id']} is not in this store: pull that run's "
                "experiment too (or pull without --experiment), then pull again"
            )
        self.store.objects.put_bytes(data)
        row["size"] = len(data)  # verified: the row's own, or the one a row from tags lacks
        registered = store_registry.register_version(
            self.store,
            {**row, "blake3": blake3_hex(data), "chunks": ChunkDigests.of(data)},
            {k: record.get(k) for k in ("at", "actor", "host", "payload")},
            description,
        )
        return registered.row.version

    def _row(self, remote: _Remote, root: str, path: str) -> dict[str, Any]:
        """The ``model_versions`` row push wrote beside the model, or the one its tags give."""
        try:
            row: dict[str, Any] = json.loads(self.client.get_artifact(root, path))
        except SyncError as exc:
            if exc.status != 404:
                raise
            tags = remote.tags
            self.result.notes.append(
                f"{self.name} MLflow version {remote.mlflow_version} was pushed without "
                f"{_ROW_FILE}: its signature, datasets, metrics and libraries are unknown here"
            )
            row = {
                "sha256": remote.sha256,
                "format": tags.get("nbmlops.format"),
                "class": tags.get("nbmlops.class"),
                "run_id": tags.get("nbmlops.run_id"),
                "description": remote.description,
                "created_by": tags.get("nbmlops.created_by"),
                "created_at": float(tags.get("nbmlops.created_at", "0")),
            }
        return {"name": self.name, **{c: row.get(c) for c in _COLUMNS}}

    # -- an event -------------------------------------------------------------------------

    def _replay(self, event: _Event) -> None:
        record = event.record
        version: int | None = None
        if event.remote is not None:
            version = self.mapped.get(event.remote.mlflow_version)
            if version is None:
                return  # its version was refused (listed in the report)
        elif record.get("version") is not None:
            version = self.by_number.get(int(record["version"]))
            if version is None:
                self.result.notes.append(
                    f"model {self.name!r}: a {record['kind']} event of version "
                    f"{record['version']} at {record['at']} names no version pulled here: "
                    "not imported"
                )
                return
        at, kind, alias = float(record["at"]), str(record["kind"]), record.get("alias")
        key = (at, kind, version, alias)
        if key in self.seen:
            return
        payload = record.get("payload")
        if isinstance(payload, dict) and kind in store_registry.ALIAS_KINDS:
            payload = self._translated(payload, alias)
        event_id = store_registry.append_event(
            self.store,
            {
                "name": self.name,
                "version": version,
                "kind": kind,
                "alias": alias,
                "payload": payload,
                "actor": record.get("actor"),
                "host": record.get("host"),
                "at": at,
            },
        )
        self.seen[key] = event_id
        if kind == "promotion":
            self.decisions[alias] = event_id
        self.result.events += 1

    def _translated(self, payload: dict[str, Any], alias: str | None) -> dict[str, Any]:
        """An alias event's payload in this store's numbers: the version it pointed at before,
        the decision that moved it."""
        out = dict(payload)
        previous = out.get("previous")
        if isinstance(previous, int) and previous in self.by_number:
            out["previous"] = self.by_number[previous]
        if out.get("promotion") is not None and alias in self.decisions:
            out["promotion"] = self.decisions[alias]
        return out


def _registration(remote: _Remote) -> dict[str, Any]:
    """A ``registered`` event made from a version's tags, for one pushed without its event."""
    return {
        "kind": "registered",
        "at": float(remote.tags.get("nbmlops.created_at", "0")),
        "actor": remote.tags.get("nbmlops.created_by"),
        "host": None,
        "payload": {"format": remote.tags.get("nbmlops.format")},
    }


class _Refused(Exception):
    """A version not imported, and why (the report lists it)."""


__all__ = ["EVENT_TAG", "RegistryPull", "pull_registry"]
