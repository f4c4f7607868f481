"""Push runs and the model registry to an MLflow tracking server (issue #19 item 1).

What maps to what (MLflow's model: https://mlflow.org/docs/latest/rest-api.html):

- experiment -> the experiment of the same name (created when missing);
- run -> a run: name, status (running/finished/failed/interrupted -> RUNNING/FINISHED/FAILED/
  KILLED), start and end time, params, every metric point with its step and timestamp (MLflow
  keeps milliseconds), tags: the run's own, ``nbmlops.run_id``, ``nbmlops.cell_id``,
  ``nbmlops.cell_version``, ``nbmlops.notebook`` (also ``mlflow.source.name``, and
  ``mlflow.source.type`` NOTEBOOK for a .ipynb, else LOCAL), the git commit and branch
  (``mlflow.source.git.commit``, ``mlflow.source.git.branch``) and dirty flag
  (``nbmlops.git_dirty``), user and host, the error of a failed run; no
  ``mlflow.source.git.repoURL``: the environment record holds no remote;
- the cell source -> artifact ``nbmlops/cell.py``; every artifact (the notebook snapshot, figures,
  files, models) -> an artifact of the same name;
- datasets -> dataset inputs: our full-content fingerprint as the digest, the shape in the
  profile, the columns as an ``mlflow_colspec`` schema; ``mlflow.data.context`` is "train" for
  the data a model of the run was fitted on (as MLflow's autolog says), else our role, which
  ``nbmlops.role`` always holds;
- registered models -> registered models with their description; each version -> a version
  whose source is an MLflow model folder (sync/mlflow_model.py: ``MLmodel``, the model file,
  ``requirements.txt``, so ``mlflow.pyfunc.load_model("models:/<name>@<alias>")`` loads it),
  under the training run's artifacts in ``registry/<name>/<v>/``, or without a run under a
  holder run of experiment ``nbmlops-registry`` in ``registry/<name>/<sha256>/``; beside the
  model ``version.json``, the whole ``model_versions`` row (signature, datasets, metrics,
  libraries); tagged with our version number, sha256 and the model file's name
  (``nbmlops.file``); aliases -> aliases; the decision history (each promotion, alias move,
  deprecation, deletion) -> version tags ``nbmlops.event.<time>.<kind>``.

Nothing is truncated silently. MLflow truncates params over 6,000 characters and tags over 8,000
itself, so such a value is sent cut with a marker, kept whole as an artifact (``params/<key>.txt``,
``tags/<key>.txt``) and named by a tag; keys MLflow rejects (characters, ``..``, over 250
characters) are kept in ``nbmlops/rejected_keys.json`` and named by ``nbmlops.rejected_keys``;
MLflow keeps NaN but stores +/-inf as the largest finite doubles, so the exact points go to
``metrics/<key>.infinite.json``. Each of these is listed in the report.

Pushing is idempotent: ``sync_*`` tables (store/sync.py) remember per server what was sent, and
a run is written there once the server confirmed it, with the run's revision (which moves with
every write of its records), so a push reads only the runs written since, sends only what is
new of them, and a push interrupted half way resumes. A run this store never pushed is first
looked up on the server by its ``nbmlops.run_id`` tag, so two stores holding the same run do
not create it twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from nbmlops._display import count
from nbmlops.errors import SyncError
from nbmlops.filter import And, Field, In, parse_filter
from nbmlops.store import StoreLike, open_store
from nbmlops.store import registry as store_registry
from nbmlops.store import runs as store_runs
from nbmlops.store import sync as store_sync
from nbmlops.store.db import Row, Store
from nbmlops.store.sync import MetricMark, RunState
from nbmlops.sync.mlflow_model import COLSPEC_TYPES, folder_files, model_file
from nbmlops.sync.mlflow_rest import Json, MlflowClient

# MLflow's limits (mlflow/utils/validation.py)
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_KEY = 250
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_BATCH_BYTES = 900_000  # MLflow's limit is 1 MB per log-batch request; room for the envelope
MAX_DIGEST = 36
_KEY_CHARS = re.compile(r"^[/\w.\- :]*$")
STATUS = {"running": "RUNNING", "finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
_CUT = "... [cut by nbmlops: the whole value is the artifact {path}]"


@dataclass
class PushReport:
    """What a push sent, and every value stored another way than asked (``notes``)."""

    server: str
    runs: int = 0  # runs considered
    created: int = 0  # runs created on the server
    updated: int = 0  # runs that had something new
    params: int = 0
    metrics: int = 0  # metric points
    tags: int = 0
    artifacts: int = 0
    inputs: int = 0
    versions: int = 0
    events: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        head = (
            f"Pushed to {self.server} in {self.seconds:.1f} s: {count(self.runs, 'run')} "
            f"({self.created} created, {self.updated} with something new), "
            f"{count(self.params, 'param')}, {count(self.metrics, 'metric point')}, "
            f"{count(self.tags, 'tag')}, {count(self.artifacts, 'artifact')}, "
            f"{count(self.inputs, 'dataset input')}, {count(self.versions, 'model version')}, "
            f"{count(self.events, 'registry event')}."
        )
        if not self.notes:
            return head
        return (
            head
            + f"\nStored another way ({len(self.notes)}):\n"
            + "\n".join(f"  - {n}" for n in self.notes)
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Where versions without a training run are held on the server (see _Pusher._holder_run); a
# pull skips these runs.
HOLDER_EXPERIMENT = "nbmlops-registry"
HOLDER_TAG = "nbmlops.registry_model"


def push(
    store: StoreLike,
    uri: str,
    *,
    experiment: str | None = None,
    filter: str | None = None,
    token: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    run_ids: Sequence[str] | None = None,
) -> PushReport:
    """Push the runs ``experiment`` and ``filter`` select (all by default), and the registered
    models (all of them, or those with a version trained by a selected run), to the MLflow
    tracking server at ``uri`` (``mlflow://HOST:PORT`` or ``http://HOST:PORT``).
    ``progress(done, total)`` is called after each run. ``run_ids`` pushes only those runs and
    every model with something new (the background push of finished runs, sync/background.py:
    a version registered after its run ended goes with the next run that ends)."""
    started = time.monotonic()
    handle = open_store(store, create=False)
    with MlflowClient(uri, token=token) as client:
        report = PushReport(client.server)
        where = parse_filter(filter) if filter else None
        if run_ids is not None:
            given = In(Field("attributes", "run_id"), tuple(run_ids))
            where = given if where is None else And((where, given))
        selected, states = store_sync.run_states(handle, client.server, where, experiment)
        report.runs = len(selected)
        pusher = _Pusher(handle, client, report)
        try:
            for done, state in enumerate(states, 1):
                pusher.push_run(state)
                if progress is not None:
                    progress(done, len(states))
        finally:
            store_sync.record_unchanged(handle, client.server, pusher.unchanged)
        everything = run_ids is not None or (where is None and experiment is None)
        for model in store_sync.models_to_push(handle, None if everything else selected):
            pusher.push_model(model)
    report.seconds = time.monotonic() - started
    return report


def valid_key(key: str) -> bool:
    """Whether MLflow accepts ``key`` as a param, metric or tag key (its validation rules)."""
    if not key or len(key) > MAX_KEY or not _KEY_CHARS.match(key):
        return False
    parts = key.split("/")
    return not (key.startswith("/") or any(p in ("", ".", "..") for p in parts))


def _digest(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()[:32]


@dataclass
class _RunWork:
    """What one run needs sent, built from its state before anything is sent."""

    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes | str] = field(default_factory=dict)  # artifact path -> content
    inputs: list[Json] = field(default_factory=list)
    items: list[tuple[str, str, str]] = field(default_factory=list)  # to record once confirmed
    rejected: dict[str, Any] = field(default_factory=dict)


class _Pusher:
    def __init__(self, store: Store, client: MlflowClient, report: PushReport) -> None:
        self.store = store
        self.client = client
        self.report = report
        self._experiments: dict[str, str] = {}
        self._known: dict[str, dict[str, Json]] = {}  # experiment id -> nbmlops run id -> info
        self._artifact_roots: dict[str, str] = {}  # MLflow run id -> artifact root
        # (run_id, revision) of runs compared with what the server holds and found the same
        self.unchanged: list[tuple[str, int]] = []

    # -- runs ---------------------------------------------------------------------------------

    def push_run(self, state: RunState) -> None:
        row = state.row
        status = STATUS[row["status"]]
        work = self._run_work(state)
        metric_keys = [
            k for k, n in state.metric_counts.items() if n != getattr(state.marks.get(k), "sent", 0)
        ]
        remote = state.remote
        same_outcome = (
            remote is not None
            and remote["status"] == status
            and (remote["end_time"] == row["end_time"])
        )
        nothing_new = not (work.params or work.tags or work.files or work.inputs or metric_keys)
        if same_outcome and nothing_new:
            self.unchanged.append((row["run_id"], row["revision"]))
            return
        run_id = row["run_id"]
        if remote is None:
            remote_id, experiment_id = self._find_or_create(row)
        else:
            remote_id, experiment_id = remote["remote_id"], remote["experiment_id"]
        marks = self._send_metrics(state, remote_id, metric_keys, work)
        if work.rejected:
            self._add_rejected(state, work)
        self._log_batch(remote_id, work.params, work.tags, [])
        if work.files:
            root = self._artifact_root(remote_id, experiment_id)
            for path, content in work.files.items():
                self.client.put_artifact(
                    root, path, content.encode() if isinstance(content, str) else content
                )
        if work.inputs:
            self.client.call(
                "POST", "runs/log-inputs", {"run_id": remote_id, "datasets": work.inputs}
            )
        end_ms = _ms(row["end_time"]) if row["end_time"] is not None else None
        if remote is None or remote["status"] != status or remote["end_time"] != row["end_time"]:
            body: Json = {"run_id": remote_id, "status": status}
            if end_ms is not None:
                body["end_time"] = end_ms
            self.client.call("POST", "runs/update", body)
        store_sync.record_run(
            self.store,
            self.client.server,
            run_id,
            status=status,
            end_time=row["end_time"],
            revision=row["revision"],
            items=work.items,
            marks=marks,
        )
        self.report.updated += 1
        self.report.params += len(work.params)
        self.report.tags += len(work.tags)
        self.report.artifacts += len(work.files)
        self.report.inputs += len(work.inputs)

    def _run_work(self, state: RunState) -> _RunWork:
        work = _RunWork()
        row = state.row
        sent = state.sent
        for key, value in state.params.items():
            digest = _digest(value)
            if sent.get(("param", key)) == digest:
                continue
            work.items.append(("param", key, digest))
            if not valid_key(key):
                work.rejected.setdefault("params", {})[key] = value
                self._note(
                    row, f"param {key!r}: a key MLflow rejects, kept in nbmlops/rejected_keys.json"
                )
            elif ("param", key) in sent:
                path = f"params/{key}.txt"
                work.files[path] = value
                work.tags[f"nbmlops.param_changed.{key}"] = path
                self._note(
                    row,
                    f"param {key!r} changed after it was pushed (MLflow params never change): "
                    f"the new value is the artifact {path}",
                )
            elif len(value) > MAX_PARAM_VALUE:
                path = f"params/{key}.txt"
                work.files[path] = value
                work.params[key] = value[
                    : MAX_PARAM_VALUE - len(_CUT.format(path=path))
                ] + _CUT.format(path=path)
                work.tags[f"nbmlops.long_param.{key}"] = path
                self._note(
                    row,
                    f"param {key!r} has {len(value):,} characters, over MLflow's "
                    f"{MAX_PARAM_VALUE:,}: sent cut, whole in the artifact {path}",
                )
            else:
                work.params[key] = value
        for key, value in self._tags_of(state).items():
            digest = _digest(value)
            if sent.get(("tag", key)) == digest:
                continue
            work.items.append(("tag", key, digest))
            if not valid_key(key):
                work.rejected.setdefault("tags", {})[key] = value
                self._note(
                    row, f"tag {key!r}: a key MLflow rejects, kept in nbmlops/rejected_keys.json"
                )
            elif len(value) > MAX_TAG_VALUE:
                path = f"tags/{key}.txt"
                work.files[path] = value
                work.tags[key] = value[: MAX_TAG_VALUE - len(_CUT.format(path=path))] + _CUT.format(
                    path=path
                )
                self._note(
                    row,
                    f"tag {key!r} has {len(value):,} characters, over MLflow's "
                    f"{MAX_TAG_VALUE:,}: sent cut, whole in the artifact {path}",
                )
            else:
                work.tags[key] = value
        if (
            row["cell_source"] is not None
            and sent.get(("artifact", "nbmlops/cell.py")) != row["cell_version"]
        ):
            work.files["nbmlops/cell.py"] = row["cell_source"]
            work.items.append(("artifact", "nbmlops/cell.py", row["cell_version"]))
        for artifact in state.artifacts:
            name = artifact["name"]
            if sent.get(("artifact", name)) == artifact["sha256"]:
                continue
            path = "nbmlops/notebook.ipynb" if artifact["kind"] == "notebook" else name
            if not _safe_path(path):
                path = f"nbmlops/artifacts/{artifact['sha256']}"
                self._note(row, f"artifact {name!r}: not a path MLflow accepts, sent as {path}")
            work.files[path] = self.store.objects.read_verified(artifact["sha256"])
            work.items.append(("artifact", name, artifact["sha256"]))
        datasets = [
            d
            for d in state.datasets
            if sent.get(("input", f"{d['role']}:{d['name']}")) != d["dataset_id"]
        ]
        fitted = self._fitted_on(state) if datasets else set()
        for dataset in datasets:
            context = "train" if dataset["name"] in fitted else dataset["role"]
            work.inputs.append(_dataset_input(dataset, context))
            work.items.append(
                ("input", f"{dataset['role']}:{dataset['name']}", dataset["dataset_id"])
            )
        return work

    def _fitted_on(self, state: RunState) -> set[str]:
        """The names of the data the run's models were fitted on (``fitted_on`` in a model
        artifact's meta, as ``%%track`` records it): MLflow calls such a dataset input the
        "train" one, where our role says only that the cell made it ("output")."""
        if not any(a["kind"] == "model" for a in state.artifacts):
            return set()  # no model: no read of the artifacts' meta
        names: set[str] = set()
        for artifact in store_runs.artifacts_of(self.store, state.row["run_id"]):
            meta = json.loads(artifact["meta"]) if artifact["meta"] else {}
            if artifact["kind"] == "model" and isinstance(meta.get("fitted_on"), dict):
                names.update(n for n in meta["fitted_on"].values() if isinstance(n, str))
        return names

    def _tags_of(self, state: RunState) -> dict[str, str]:
        row = state.row
        tags = {
            "nbmlops.run_id": row["run_id"],
            "nbmlops.cell_id": row["cell_id"],
            "nbmlops.cell_version": row["cell_version"],
            "nbmlops.notebook": row["notebook"],
            "mlflow.source.name": row["notebook"],
            "mlflow.source.type": source_type(row["notebook"]),
            "mlflow.source.git.commit": row["git_commit"],
            # MLflow sends no branch for a detached HEAD (git names it "HEAD"); neither do we.
            "mlflow.source.git.branch": None
            if row["git_branch"] in (None, "HEAD")
            else row["git_branch"],
            "nbmlops.git_dirty": None
            if row["git_dirty"] is None
            else str(bool(row["git_dirty"])).lower(),
            "mlflow.user": row["user"],
            "nbmlops.host": row["host"],
            "nbmlops.previous_run_id": row["previous_run_id"],
            "nbmlops.error": f"{row['error_type']}: {row['error_message']}"
            if row["error_type"]
            else None,
        }
        out = {k: str(v) for k, v in tags.items() if v is not None}
        out.update(state.tags)
        return out

    def _note(self, row: Row, text: str) -> None:
        self.report.notes.append(f"run {row['run_id']} ({row['name'] or 'unnamed'}): {text}")

    def _add_rejected(self, state: RunState, work: _RunWork) -> None:
        """All of a run's values under rejected keys, rewritten whole in one artifact."""
        whole: dict[str, Any] = {
            "params": {k: v for k, v in state.params.items() if not valid_key(k)},
            "tags": {k: v for k, v in state.tags.items() if not valid_key(k)},
            "metrics": {
                k: [
                    list(p[1:])
                    for p in store_sync.metrics_after(self.store, state.row["run_id"], {}, [k])
                ]
                for k in state.metric_counts
                if not valid_key(k)
            },
        }
        whole = {kind: values for kind, values in whole.items() if values}
        work.files["nbmlops/rejected_keys.json"] = json.dumps(whole, indent=1, allow_nan=True)
        keys = "; ".join(
            f"{kind}: {', '.join(map(repr, values))}" for kind, values in whole.items()
        )
        work.tags["nbmlops.rejected_keys"] = keys[: MAX_TAG_VALUE - 40] + (
            " ..." if len(keys) > MAX_TAG_VALUE - 40 else ""
        )

    def _send_metrics(
        self, state: RunState, remote_id: str, keys: list[str], work: _RunWork
    ) -> dict[str, MetricMark]:
        run_id = state.row["run_id"]
        points = store_sync.metrics_after(self.store, run_id, state.marks, keys)
        marks: dict[str, MetricMark] = {}
        infinite: set[str] = set()
        entities: list[Json] = []
        for p in points:
            old = marks.get(p.key) or state.marks.get(p.key)
            marks[p.key] = MetricMark(p.step, p.timestamp, (old.sent if old else 0) + 1)
            if not valid_key(p.key):
                work.rejected.setdefault("metrics", {})[p.key] = True
                continue
            if p.value is not None and math.isinf(p.value):
                infinite.add(p.key)
            entities.append(
                {
                    "key": p.key,
                    "value": _metric_value(p.value),
                    "timestamp": _ms(p.timestamp),
                    "step": p.step,
                }
            )
        for key in sorted(infinite):
            path = f"metrics/{key}.infinite.json"
            exact = [
                {
                    "step": p.step,
                    "timestamp": p.timestamp,
                    "value": "inf" if p.value and p.value > 0 else "-inf",
                }
                for p in store_sync.infinite_points(self.store, run_id, key)
            ]
            work.files[path] = json.dumps(exact)
            work.tags[f"nbmlops.infinite.{key}"] = path
            self._note(
                state.row,
                f"metric {key!r} has +/-inf points: MLflow stores them as +/-1.8e308; "
                f"the exact points are the artifact {path}",
            )
        for key in work.rejected.get("metrics", {}):
            self._note(
                state.row,
                f"metric {key!r}: a key MLflow rejects, kept in nbmlops/rejected_keys.json",
            )
        self._log_batch(remote_id, {}, {}, entities)
        self.report.metrics += len(entities)
        return marks

    def _log_batch(
        self, remote_id: str, params: dict[str, str], tags: dict[str, str], metrics: list[Json]
    ) -> None:
        for batch in _batches(params, tags, metrics):
            self.client.call("POST", "runs/log-batch", {"run_id": remote_id, **batch})

    def _find_or_create(self, row: Row) -> tuple[str, str]:
        experiment_id = self._experiment_id(row["experiment"])
        known = self._known_runs(experiment_id)
        info = known.get(row["run_id"])
        if info is None:
            body: Json = {
                "experiment_id": experiment_id,
                "run_name": row["name"] or row["run_id"],
                "start_time": _ms(row["start_time"]),
                "tags": [{"key": "nbmlops.run_id", "value": row["run_id"]}],
            }
            if row["user"]:
                body["user_id"] = row["user"]
            info = self.client.call("POST", "runs/create", body)["run"]["info"]
            self.report.created += 1
        remote_id = str(info["run_id"])
        self._artifact_roots[remote_id] = str(info["artifact_uri"])
        store_sync.remember_remote_run(
            self.store, self.client.server, row["run_id"], remote_id, experiment_id
        )
        return remote_id, experiment_id

    def _experiment_id(self, name: str) -> str:
        if name not in self._experiments:
            found = self.client.call(
                "GET",
                "experiments/get-by-name",
                {"experiment_name": name},
                ok=("RESOURCE_DOES_NOT_EXIST",),
            )
            if "experiment" in found:
                self._experiments[name] = str(found["experiment"]["experiment_id"])
            else:
                created = self.client.call("POST", "experiments/create", {"name": name})
                self._experiments[name] = str(created["experiment_id"])
        return self._experiments[name]

    def _known_runs(self, experiment_id: str) -> dict[str, Json]:
        """The experiment's runs on the server that carry an nbmlops run id, read once a push."""
        if experiment_id not in self._known:
            known: dict[str, Json] = {}
            for run in _pages(
                self.client,
                "runs/search",
                "runs",
                {
                    "experiment_ids": [experiment_id],
                    "filter": "tags.`nbmlops.run_id` LIKE '%'",
                    "max_results": 1000,
                },
            ):
                for tag in run.get("data", {}).get("tags", []):
                    if tag["key"] == "nbmlops.run_id":
                        known.setdefault(tag["value"], run["info"])
            self._known[experiment_id] = known
        return self._known[experiment_id]

    def _holder_run(self, name: str) -> tuple[str, str]:
        """The run holding model ``name``'s versions that have no training run (found by its
        tag, else created, finished): its id and artifact root."""
        experiment_id = self._experiment_id(HOLDER_EXPERIMENT)
        found = self.client.call(
            "POST",
            "runs/search",
            {
                "experiment_ids": [experiment_id],
                "filter": f"tags.`{HOLDER_TAG}` = '{_quoted(name)}'",
                "max_results": 1,
            },
        ).get("runs", [])
        if found:
            info = found[0]["info"]
        else:
            body = {
                "experiment_id": experiment_id,
                "run_name": f"registry:{name}",
                "tags": [{"key": HOLDER_TAG, "value": name}],
            }
            info = self.client.call("POST", "runs/create", body)["run"]["info"]
            self.client.call(
                "POST", "runs/update", {"run_id": info["run_id"], "status": "FINISHED"}
            )
        return str(info["run_id"]), str(info["artifact_uri"])

    def _artifact_root(self, remote_id: str, experiment_id: str) -> str:
        if remote_id not in self._artifact_roots:
            info = self.client.call("GET", "runs/get", {"run_id": remote_id})["run"]["info"]
            self._artifact_roots[remote_id] = str(info["artifact_uri"])
        return self._artifact_roots[remote_id]

    # -- registry -----------------------------------------------------------------------------

    def push_model(self, model: Row) -> None:
        name = model["name"]
        server = self.client.server
        pushed = store_sync.pushed_versions(self.store, server, name)
        events = [
            e
            for e in store_registry.events_of(self.store, name)
            if e.event_id > store_sync.last_event_sent(self.store, server, name)
        ]
        versions = [
            v for v in store_registry.versions_of(self.store, name) if v.version not in pushed
        ]
        if not versions and not events:
            return
        created = self.client.call(
            "POST",
            "registered-models/create",
            {"name": name, "description": model["description"] or ""},
            ok=("RESOURCE_ALREADY_EXISTS",),
        )
        if "error_code" in created and model["description"]:
            self.client.call(
                "PATCH",
                "registered-models/update",
                {"name": name, "description": model["description"]},
            )
        remote_by_sha = self._remote_versions(name) if versions else {}
        for v in versions:
            remote = remote_by_sha.get(v.sha256)
            if remote is None:
                remote = self._create_version(v)
            store_sync.record_version(self.store, server, name, v.version, remote)
            pushed[v.version] = remote
            self.report.versions += 1
        for event in events:
            self._send_event(name, event, pushed)
            store_sync.record_event_sent(self.store, server, name, event.event_id)
            self.report.events += 1

    def _remote_versions(self, name: str) -> dict[str, str]:
        """sha256 -> MLflow version of the model's versions already there (another store's)."""
        out: dict[str, str] = {}
        for v in _pages(
            self.client,
            "model-versions/search",
            "model_versions",
            {
                "filter": f"name = '{_quoted(name)}'",
                "max_results": 1000,
            },
        ):
            for tag in v.get("tags", []):
                if tag["key"] == "nbmlops.sha256":
                    out.setdefault(tag["value"], str(v["version"]))
        return out

    def _create_version(self, v: store_registry.VersionRow) -> str:
        remotes = store_sync.remote_run_ids(
            self.store, self.client.server, [v.run_id] if v.run_id else []
        )
        data = self.store.objects.read_verified(v.sha256)
        body: Json = {"name": v.name, "description": v.description or ""}
        if v.run_id in remotes:
            remote_id, experiment_id = remotes[v.run_id]
            root = self._artifact_root(remote_id, experiment_id)
            body["run_id"] = remote_id
            folder = f"registry/{v.name}/{v.version}"
        else:
            # MLflow takes a version's source only inside a run's artifacts: a version registered
            # from a live object goes under one holder run per model, shared by every store
            # pushing to this server, in a folder keyed by content so two stores' different
            # version 1 never overwrite each other.
            body["run_id"], root = self._holder_run(v.name)
            folder = f"registry/{v.name}/{v.sha256}"
        file = model_file(v.format)
        self.client.put_artifact(root, f"{folder}/{file}", data)
        schemas = store_sync.dataset_schemas(
            self.store, [d["fingerprint"] for d in json.loads(v.datasets or "[]")]
        )
        for name, content in folder_files(v, data, schemas).items():
            self.client.put_artifact(root, f"{folder}/{name}", content)
        # The whole row beside the model (MLflow has no field for the signature, datasets,
        # metrics and libraries): a pull reads it back (sync/pull_registry.py). JSON columns stay
        # the text they are, so the row comes back byte for byte.
        row = {
            "name": v.name,
            "version": v.version,
            "sha256": v.sha256,
            "size": v.size,
            "format": v.format,
            "class": v.model_class,
            "run_id": v.run_id,
            "signature": v.signature,
            "datasets": v.datasets,
            "metrics": v.metrics,
            "libraries": v.libraries,
            "description": v.description,
            "created_by": v.created_by,
            "created_at": v.created_at,
        }
        self.client.put_artifact(root, f"{folder}/version.json", json.dumps(row, indent=1).encode())
        body["source"] = f"{root}/{folder}"  # the MLflow model folder (sync/mlflow_model.py)
        tags = {
            "nbmlops.version": str(v.version),
            "nbmlops.sha256": v.sha256,
            "nbmlops.format": v.format,
            "nbmlops.file": file,  # the model file in the folder
            "nbmlops.class": v.model_class,
            "nbmlops.run_id": v.run_id,
            "nbmlops.created_by": v.created_by,
            "nbmlops.created_at": str(v.created_at),
        }
        body["tags"] = [{"key": k, "value": val} for k, val in tags.items() if val is not None]
        created = self.client.call("POST", "model-versions/create", body)
        return str(created["model_version"]["version"])

    def _send_event(
        self, name: str, event: store_registry.EventRow, pushed: dict[int, str]
    ) -> None:
        remote = pushed.get(event.version) if event.version is not None else None
        if event.kind == "alias_set" and remote is not None:
            self.client.call(
                "POST",
                "registered-models/alias",
                {"name": name, "alias": event.alias, "version": remote},
            )
        elif event.kind == "alias_removed":
            self.client.call(
                "DELETE",
                "registered-models/alias",
                {"name": name, "alias": event.alias},
                ok=("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"),
            )
        record = {
            "kind": event.kind,
            "version": event.version,
            "alias": event.alias,
            "actor": event.actor,
            "host": event.host,
            "at": event.at,
            "payload": json.loads(event.payload) if event.payload else None,
        }
        value = json.dumps(record, sort_keys=True)
        # Keyed by time and kind rather than event_id: ids are per store, and two stores may
        # push the history of one model.
        key = f"nbmlops.event.{event.at:.6f}.{event.kind}"
        if remote is not None:
            self.client.call(
                "POST",
                "model-versions/set-tag",
                {"name": name, "version": remote, "key": key, "value": value},
            )
        else:
            self.client.call(
                "POST", "registered-models/set-tag", {"name": name, "key": key, "value": value}
            )


def _pages(client: MlflowClient, endpoint: str, field_name: str, body: Json) -> Iterator[Json]:
    token: str | None = None
    while True:
        page = client.call(
            "POST" if endpoint == "runs/search" else "GET",
            endpoint,
            {**body, **({"page_token": token} if token else {})},
        )
        yield from page.get(field_name, [])
        token = page.get("next_page_token")
        if not token:
            return


def _safe_path(path: str) -> bool:
    """Whether the artifact proxy takes ``path`` (relative, no ``..``, no empty part)."""
    parts = path.split("/")
    return not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _quoted(text: str) -> str:
    return text.replace("'", "\\'")


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _metric_value(value: float | None) -> float | str:
    # Protobuf's JSON spelling of the non-finite doubles; json.dumps would write NaN, which the
    # server reads as 0.
    if value is None or math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def source_type(notebook: str | None) -> str:
    """MLflow's ``mlflow.source.type`` of a run of ``notebook`` (the runs column): NOTEBOOK for
    a Jupyter notebook, LOCAL for anything else (a script, a run started from the API), as
    MLflow's own tracking sets it outside Databricks."""
    return "NOTEBOOK" if notebook is not None and notebook.endswith(".ipynb") else "LOCAL"


def _dataset_input(dataset: Row, context: str) -> Json:
    schema = json.loads(dataset["schema"]) if dataset["schema"] else {}
    colspec = [
        {"name": str(col), "type": COLSPEC_TYPES.get(str(dtype), "string")}
        for col, dtype in (schema.items() if isinstance(schema, dict) else [])
    ]
    source = {
        "fingerprint": dataset["dataset_id"],
        "kind": dataset["kind"],
        "source": dataset["source"],
    }
    profile = {
        "num_rows": dataset["n_rows"],
        "num_columns": dataset["n_columns"],
        "nbmlops_schema": schema,
    }
    return {
        "tags": [
            {"key": "mlflow.data.context", "value": context},
            {"key": "nbmlops.role", "value": dataset["role"]},
        ],
        "dataset": {
            "name": dataset["name"],
            "digest": dataset["dataset_id"][:MAX_DIGEST],
            "source_type": "nbmlops",
            "source": json.dumps(source),
            "schema": json.dumps({"mlflow_colspec": colspec}),
            "profile": json.dumps(profile),
        },
    }


def _batches(params: dict[str, str], tags: dict[str, str], metrics: list[Json]) -> Iterator[Json]:
    """log-batch bodies within MLflow's limits: 100 params and 100 tags, 1,000 entities in all
    and 1 MB per call."""
    batch: Json = {"params": [], "tags": [], "metrics": []}
    size = count = 0
    entities = [("params", {"key": k, "value": v}) for k, v in params.items()]
    entities += [("tags", {"key": k, "value": v}) for k, v in tags.items()]
    entities += [("metrics", m) for m in metrics]
    for kind, entity in entities:
        entity_size = len(json.dumps(entity)) + 2
        full = (
            count >= MAX_ENTITIES_PER_BATCH
            or size + entity_size > MAX_BATCH_BYTES
            or (kind != "metrics" and len(batch[kind]) >= MAX_PARAMS_TAGS_PER_BATCH)
        )
        if full:
            yield {k: v for k, v in batch.items() if v}
            batch = {"params": [], "tags": [], "metrics": []}
            size = count = 0
        batch[kind].append(entity)
        size += entity_size
        count += 1
    if count:
        yield {k: v for k, v in batch.items() if v}


__all__ = ["PushReport", "SyncError", "push", "source_type", "valid_key"]
