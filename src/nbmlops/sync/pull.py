"""Pull runs from an MLflow tracking server into the local store (issue #19 items 2-3).

Runs pushed by nbmlops (another person's store) and runs logged by MLflow itself come in so that
``nbm.runs()``, the filters and the panels compare them with local ones. The mapping is push's
read backwards (:mod:`nbmlops.sync.push`): the ``nbmlops.*`` tags that stand for run columns
(cell, notebook, user, host, error) become those columns again, a value push kept as an artifact
(a long or changed param, a cut tag, +/-inf points, keys MLflow rejects) is put back whole from
it, the cell source comes back from ``nbmlops/cell.py``, a run keeps its nbmlops run id, and
dataset inputs whose source is nbmlops keep our fingerprint. Artifacts are downloaded through
the server's artifact proxy and stored content-addressed, by their sha256.

A pulled run carries the tag ``nbmlops.pulled_from`` (``<server>#<MLflow run id>``; a filter
``tags.nbmlops.pulled_from`` selects them) and its state is recorded in the ``sync_*`` tables
for that server, so pulling again imports only new runs and new metric points, and pushing to
that server sends nothing of it back. A run whose ``nbmlops.run_id`` names a run of this store
that was not pulled is this store's own run pushed earlier: it is left alone.

The registry comes after the runs (:mod:`nbmlops.sync.pull_registry`: versions verified by
their sha256, events replayed with their original times; a version whose file does not match is
refused and listed in the report's ``refused``).

Not pulled (listed in the report's ``notes`` when met): MLflow-native model versions (counted),
the git commit/branch/dirty flag (kept as the tags they were sent as, ``mlflow.source.git.*`` and
``nbmlops.git_dirty``: a run's environment row needs the Python, platform and packages MLflow
does not hold), an artifact's kind and meta (a pulled artifact is a ``file``, the notebook
snapshot a ``notebook``). A dataset input keeps its role from ``nbmlops.role`` (push sends
``mlflow.data.context`` "train" for the data a model was fitted on), else from the context.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from nbmlops._display import count
from nbmlops.errors import SyncError
from nbmlops.store import StoreLike, open_store
from nbmlops.store import sync as store_sync
from nbmlops.store.db import Row, Store
from nbmlops.store.sync import MetricMark, PulledRun
from nbmlops.sync.mlflow_rest import Json, MlflowClient
from nbmlops.sync.pull_registry import pull_registry
from nbmlops.sync.push import _CUT, HOLDER_EXPERIMENT, _digest, source_type

PULLED_FROM = "nbmlops.pulled_from"
STATUS = {
    "RUNNING": "running",
    "SCHEDULED": "running",
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "interrupted",
}
# Tags push writes for run columns: they become the columns again.
_COLUMN_TAGS = {
    "nbmlops.run_id": "run_id",
    "nbmlops.cell_id": "cell_id",
    "nbmlops.notebook": "notebook",
    "mlflow.user": "user",
    "nbmlops.host": "host",
    "nbmlops.previous_run_id": "previous_run_id",
}
_RESTORED_FROM = ("nbmlops.long_param.", "nbmlops.param_changed.", "nbmlops.infinite.")
_NOTEBOOK_ARTIFACT = "nbmlops/notebook.ipynb"
_CELL_ARTIFACT = "nbmlops/cell.py"
_REJECTED_ARTIFACT = "nbmlops/rejected_keys.json"
_MAX_DOUBLE = 1.7976931348623157e308


@dataclass
class PullReport:
    """What a pull imported; ``notes`` name what could not come over as it was."""

    server: str
    runs: int = 0  # runs seen on the server
    created: int = 0  # runs new here
    updated: int = 0  # runs pulled before that had something new
    own: int = 0  # this store's own runs, pushed earlier: left alone
    params: int = 0
    metrics: int = 0  # metric points
    tags: int = 0
    artifacts: int = 0
    inputs: int = 0
    models: int = 0  # registered models with nbmlops versions
    versions: int = 0  # model versions imported
    events: int = 0  # registry events replayed
    foreign_versions: int = 0  # model versions without nbmlops tags: not imported
    notes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # model versions not imported, and why
    seconds: float = 0.0

    def __str__(self) -> str:
        head = (
            f"Pulled from {self.server} in {self.seconds:.1f} s: {count(self.runs, 'run')} "
            f"({self.created} new, {self.updated} with something new, {self.own} this store's "
            f"own), {count(self.params, 'param')}, {count(self.metrics, 'metric point')}, "
            f"{count(self.tags, 'tag')}, {count(self.artifacts, 'artifact')}, "
            f"{count(self.inputs, 'dataset input')}; {count(self.models, 'model')}: "
            f"{count(self.versions, 'version')} imported, {count(self.events, 'registry event')}, "
            f"{count(self.foreign_versions, 'MLflow-native version')} left on the server."
        )
        for title, lines in (("Refused", self.refused), ("Notes", self.notes)):
            if lines:
                head += f"\n{title} ({len(lines)}):\n" + "\n".join(f"  - {n}" for n in lines)
        return head

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pull(
    store: StoreLike,
    uri: str,
    *,
    experiment: str | None = None,
    token: str | None = None,
) -> PullReport:
    """Import the runs of ``experiment`` (all experiments by default) on the MLflow tracking
    server at ``uri`` (``mlflow://HOST:PORT`` or ``http://HOST:PORT``) into the store: new runs
    whole, runs pulled before only what they gained since; then the registered models (all, or
    those with a version trained by a run of ``experiment``): new versions, verified, and the
    events not here yet (:mod:`nbmlops.sync.pull_registry`)."""
    started = time.monotonic()
    handle = open_store(store)
    with MlflowClient(uri, token=token) as client:
        report = PullReport(client.server)
        puller = _Puller(handle, client, report)
        seen: set[str] = set()
        for exp_id, name in puller.experiments(experiment):
            if name == HOLDER_EXPERIMENT:  # holds registry files, not runs of anybody's
                continue
            for run in _pages(client, "POST", "runs/search", "runs", {"experiment_ids": [exp_id]}):
                report.runs += 1
                seen.add(str(run["info"]["run_id"]))
                puller.pull_run(run, name)
        registry = pull_registry(handle, client, None if experiment is None else seen)
    report.models, report.versions = registry.models, registry.versions
    report.events, report.foreign_versions = registry.events, registry.foreign
    report.notes += registry.notes
    report.refused += registry.refused
    report.seconds = time.monotonic() - started
    return report


class _Puller:
    def __init__(self, store: Store, client: MlflowClient, report: PullReport) -> None:
        self.store = store
        self.client = client
        self.report = report
        self.pulled = store_sync.pulled_runs(store, client.server)

    def experiments(self, name: str | None) -> list[tuple[str, str]]:
        if name is not None:
            found = self.client.call(
                "GET",
                "experiments/get-by-name",
                {"experiment_name": name},
                ok=("RESOURCE_DOES_NOT_EXIST",),
            )
            if "experiment" not in found:
                raise SyncError(
                    f"The MLflow server {self.client.server} has no experiment {name!r}: pull "
                    "without --experiment to import every experiment, or check the name.",
                    server=self.client.server,
                    call="GET experiments/get-by-name",
                )
            return [(str(found["experiment"]["experiment_id"]), name)]
        return [
            (str(e["experiment_id"]), str(e["name"]))
            for e in _pages(
                self.client, "POST", "experiments/search", "experiments", {"max_results": 1000}
            )
        ]

    # -- one run --------------------------------------------------------------------------

    def pull_run(self, run: Json, experiment: str) -> None:
        info, data = run["info"], run.get("data", {})
        remote_id = str(info["run_id"])
        tags = {t["key"]: t["value"] for t in data.get("tags", [])}
        before = self.pulled.get(remote_id)
        ours = tags.get("nbmlops.run_id")
        if before is None and ours and store_sync.local_run_exists(self.store, ours):
            self.report.own += 1
            return
        status = str(info["status"])
        end_time = _seconds(info.get("end_time"))
        unchanged = before is not None and (before.status, before.end_time) == (status, end_time)
        if unchanged and status == "FINISHED":
            return  # a finished run does not change
        run_id = before.run_id if before is not None else (ours or remote_id[:12])
        work = _Work(run_id)
        files = self._artifact_files(info)
        restored = self._restore(tags, files, work)
        params = {p["key"]: p["value"] for p in data.get("params", [])}
        params.update(restored.get("params", {}))
        tags.update(restored.get("tags", {}))
        cell = self._cell(tags, files)
        self._params(params, before, work)
        self._metrics(remote_id, data, restored, before, work)
        columns = {col: tags.pop(key, None) for key, col in _COLUMN_TAGS.items()}
        for key, column in (
            ("mlflow.source.name", columns["notebook"]),
            ("mlflow.source.type", source_type(columns["notebook"])),
            ("mlflow.runName", info.get("run_name")),
        ):
            if key in tags and tags[key] == column:
                del tags[key]  # MLflow's copy of a column
        error = tags.pop("nbmlops.error", None)
        tags.pop("nbmlops.cell_version", None)
        tags[PULLED_FROM] = f"{self.client.server}#{remote_id}"
        self._tags(tags, before, work)
        self._artifacts(info, files, before, work, nbmlops_run=ours is not None)
        self._inputs(run.get("inputs", {}).get("dataset_inputs", []), before, work)
        error_type, _, error_message = error.partition(": ") if error else (None, "", None)
        finish = {
            "status": STATUS.get(status, "finished"),
            "end_time": end_time,
            "error_type": error_type,
            "error_message": error_message or None,
            "traceback": None,
        }
        new_run = None
        if before is None:
            new_run = {
                "run_id": run_id,
                "name": info.get("run_name") or None,
                "status": finish["status"],
                "start_time": _seconds(info["start_time"]) or time.time(),
                "end_time": end_time,
                "user": columns["user"] or info.get("user_id") or None,
                "host": columns["host"],
                "notebook": columns["notebook"],
                "cell_id": columns["cell_id"],
                "cell_version": cell[0] if cell else None,
                "previous_run_id": columns["previous_run_id"],
            }
        if new_run is not None:
            work.items.extend(_column_items(new_run, error, cell, kept=tags))
        if unchanged and not work.anything():
            return
        store_sync.save_pulled_run(
            self.store,
            self.client.server,
            remote_id=remote_id,
            remote_experiment_id=str(info["experiment_id"]),
            status=status,
            end_time=end_time,
            new_run=new_run,
            experiment=experiment,
            cell_source=cell,
            data={
                "run_id": run_id,
                "params": work.params,
                "metrics": work.metrics,
                "tags": work.tags,
                "datasets": work.datasets,
                "artifacts": work.artifacts,
                "finish": finish,
            },
            items=work.items,
            marks=work.marks,
        )
        if new_run is not None:
            self.report.created += 1
        else:
            self.report.updated += 1
        self.report.params += len(work.params)
        self.report.metrics += len(work.metrics)
        self.report.tags += len(work.tags)
        self.report.artifacts += len(work.artifacts)
        self.report.inputs += len(work.datasets)

    def _restore(self, tags: dict[str, str], files: dict[str, int], work: _Work) -> dict[str, Any]:
        """Values push kept as artifacts, put back whole; their marker tags dropped."""
        out: dict[str, Any] = {"params": {}, "tags": {}, "infinite": {}, "metrics": {}}
        for key in [k for k in tags if k.startswith(_RESTORED_FROM)]:
            path = tags.pop(key)
            if path not in files:
                continue
            files.pop(path)
            content = self._download_text(path)
            if key.startswith("nbmlops.infinite."):
                out["infinite"][key.removeprefix("nbmlops.infinite.")] = {
                    (p["step"], _ms(p["timestamp"])): math.inf if p["value"] == "inf" else -math.inf
                    for p in json.loads(content)
                }
            else:
                out["params"][key.split(".", 2)[2]] = content
        for key, value in list(tags.items()):
            cut = _CUT.format(path=f"tags/{key}.txt")
            if value.endswith(cut) and f"tags/{key}.txt" in files:
                files.pop(f"tags/{key}.txt")
                out["tags"][key] = self._download_text(f"tags/{key}.txt")
        if tags.pop("nbmlops.rejected_keys", None) is not None and _REJECTED_ARTIFACT in files:
            files.pop(_REJECTED_ARTIFACT)
            rejected = json.loads(self._download_text(_REJECTED_ARTIFACT))
            out["params"].update(rejected.get("params", {}))
            out["tags"].update(rejected.get("tags", {}))
            out["metrics"] = rejected.get("metrics", {})
        return out

    def _cell(self, tags: dict[str, str], files: dict[str, int]) -> tuple[str, str] | None:
        version = tags.get("nbmlops.cell_version")
        if _CELL_ARTIFACT not in files:
            return None
        files.pop(_CELL_ARTIFACT)
        source = self._download_text(_CELL_ARTIFACT)
        if version is None or hashlib.sha256(source.encode()).hexdigest() != version:
            tags.pop("nbmlops.cell_version", None)
            self.report.notes.append(
                f"run {tags.get('nbmlops.run_id')}: {_CELL_ARTIFACT} does not match its "
                "nbmlops.cell_version tag: the cell source was not imported"
            )
            return None
        return version, source

    def _params(self, params: dict[str, str], before: PulledRun | None, work: _Work) -> None:
        for key, value in params.items():
            digest = _digest(value)
            if before is not None and ("param", key) in before.items:
                continue  # MLflow params never change
            work.params.append((key, value, _number(value), "mlflow"))
            work.items.append(("param", key, digest))

    def _tags(self, tags: dict[str, str], before: PulledRun | None, work: _Work) -> None:
        for key, value in tags.items():
            digest = _digest(value)
            if before is not None and before.items.get(("tag", key)) == digest:
                continue
            work.tags.append((key, value))
            work.items.append(("tag", key, digest))

    def _metrics(
        self,
        remote_id: str,
        data: Json,
        restored: dict[str, Any],
        before: PulledRun | None,
        work: _Work,
    ) -> None:
        keys = {m["key"] for m in data.get("metrics", [])}
        for key in sorted(keys):
            points = [
                (
                    int(p.get("step", 0)),
                    _seconds(p["timestamp"]) or 0.0,
                    _value(p["value"], restored["infinite"].get(key), p),
                )
                for p in _pages(
                    self.client,
                    "GET",
                    "metrics/get-history",
                    "metrics",
                    {"run_id": remote_id, "metric_key": key},
                )
            ]
            self._add_points(key, points, before, work)
        for key, rows in restored["metrics"].items():
            self._add_points(key, [(int(s), float(t), v) for v, s, t in rows], before, work)

    def _add_points(
        self,
        key: str,
        points: list[tuple[int, float, float | None]],
        before: PulledRun | None,
        work: _Work,
    ) -> None:
        points.sort(key=lambda p: (p[1], p[0]))
        done = before.marks[key].sent if before is not None and key in before.marks else 0
        for step, timestamp, value in points[done:]:
            work.metrics.append((key, value, step, timestamp, "mlflow"))
        if points and len(points) > done:
            step, timestamp, _ = points[-1]
            work.marks[key] = MetricMark(step, timestamp, len(points))

    def _artifacts(
        self,
        info: Json,
        files: dict[str, int],
        before: PulledRun | None,
        work: _Work,
        *,
        nbmlops_run: bool,
    ) -> None:
        for path in sorted(files):
            if path.startswith("registry/") and nbmlops_run:
                continue  # a registered version's file, uploaded beside the run by push
            if before is not None and ("artifact", path) in before.items:
                continue
            data = self._download(path)
            sha256, size = self.store.objects.put_bytes(data)
            notebook = path == _NOTEBOOK_ARTIFACT
            work.artifacts.append(
                {
                    "name": path,
                    "kind": "notebook" if notebook else "file",
                    "sha256": sha256,
                    "size": size,
                    "media_type": None,
                    "meta": json.dumps({"pulled_from": f"{self.client.server}#{info['run_id']}"}),
                    "created_at": time.time(),
                }
            )
            work.items.append(("artifact", path, sha256))

    def _inputs(self, inputs: list[Json], before: PulledRun | None, work: _Work) -> None:
        for entry in inputs:
            dataset = entry.get("dataset", {})
            ctx = {t["key"]: t["value"] for t in entry.get("tags", [])}
            # Our role first: push sends "train" as the context of the data a model was fitted
            # on; an MLflow run's context ("train", "eval") is an input of it.
            role = ctx.get("nbmlops.role") or ctx.get("mlflow.data.context", "input")
            role = role if role in ("input", "output") else "input"
            source = _json(dataset.get("source"))
            profile = _json(dataset.get("profile"))
            ours = dataset.get("source_type") == "nbmlops" and "fingerprint" in source
            dataset_id = (
                str(source["fingerprint"]) if ours else f"mlflow-{dataset.get('digest', '')}"
            )
            key = f"{role}:{dataset.get('name', '')}"
            if before is not None and before.items.get(("input", key)) == dataset_id:
                continue
            schema = profile.get("nbmlops_schema") if ours else None
            work.datasets.append(
                {
                    "dataset_id": dataset_id,
                    "kind": source.get("kind", "dataframe") if ours else "mlflow",
                    "n_rows": profile.get("num_rows"),
                    "n_columns": profile.get("num_columns"),
                    "schema": json.dumps(schema) if schema is not None else None,
                    "created_at": time.time(),
                    "role": role,
                    "name": dataset.get("name", ""),
                    "source": source.get("source") if ours else dataset.get("source"),
                }
            )
            work.items.append(("input", key, dataset_id))

    # -- artifacts --------------------------------------------------------------------------

    def _artifact_files(self, info: Json) -> dict[str, int]:
        """Every artifact file of a run: path -> size."""
        self._root = str(info["artifact_uri"])
        files: dict[str, int] = {}
        folders = [""]
        while folders:
            folder = folders.pop()
            body: Json = {"run_id": info["run_id"]}
            if folder:
                body["path"] = folder
            listed = self.client.call("GET", "artifacts/list", body)
            for f in listed.get("files", []):
                if f.get("is_dir"):
                    folders.append(f["path"])
                else:
                    files[f["path"]] = int(f.get("file_size", 0))
        return files

    def _download(self, path: str) -> bytes:
        """An artifact of the current run, through the server's artifact proxy."""
        return self.client.get_artifact(self._root, path)

    def _download_text(self, path: str) -> str:
        return self._download(path).decode()


@dataclass
class _Work:
    """What one pulled run adds to the store."""

    run_id: str
    params: list[tuple[str, str, float | None, str]] = field(default_factory=list)
    metrics: list[tuple[str, float | None, int, float, str]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    datasets: list[Row] = field(default_factory=list)
    artifacts: list[Row] = field(default_factory=list)
    items: list[tuple[str, str, str]] = field(default_factory=list)
    marks: dict[str, MetricMark] = field(default_factory=dict)

    def anything(self) -> bool:
        return bool(self.params or self.metrics or self.tags or self.datasets or self.artifacts)


def _column_items(
    run: Row, error: str | None, cell: tuple[str, str] | None, *, kept: dict[str, str]
) -> list[tuple[str, str, str]]:
    """The tags push derives from a run's columns, as sent: the server holds the run, so pushing
    it there again must find nothing new (push.py ``_Pusher._tags_of``). A key the run keeps as
    a tag of its own (``kept``: an MLflow run's ``mlflow.source.type`` JOB) is recorded with
    that tag's value, not with what the columns would give."""
    values = {
        "nbmlops.run_id": run["run_id"],
        "nbmlops.cell_id": run["cell_id"],
        "nbmlops.cell_version": run["cell_version"],
        "nbmlops.notebook": run["notebook"],
        "mlflow.source.name": run["notebook"],
        "mlflow.source.type": source_type(run["notebook"]),
        "mlflow.user": run["user"],
        "nbmlops.host": run["host"],
        "nbmlops.previous_run_id": run["previous_run_id"],
        "nbmlops.error": error,
    }
    items = [
        ("tag", k, _digest(str(v))) for k, v in values.items() if v is not None and k not in kept
    ]
    if cell is not None:
        items.append(("artifact", _CELL_ARTIFACT, cell[0]))
    return items


def _pages(
    client: MlflowClient, method: str, endpoint: str, field_name: str, body: Json
) -> Iterator[Json]:
    token: str | None = None
    while True:
        page = client.call(method, endpoint, {**body, **({"page_token": token} if token else {})})
        yield from page.get(field_name, [])
        token = page.get("next_page_token")
        if not token:
            return


def _seconds(ms: object) -> float | None:
    return None if ms in (None, "", 0, "0") else int(str(ms)) / 1000


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _value(
    value: object, infinite: dict[tuple[int, int], float] | None, point: Json
) -> float | None:
    if value in ("NaN", "nan") or (isinstance(value, float) and math.isnan(value)):
        return None
    if value in ("Infinity", "-Infinity"):
        return math.inf if value == "Infinity" else -math.inf
    number = float(str(value))
    if infinite and abs(number) >= _MAX_DOUBLE:
        exact = infinite.get((int(point.get("step", 0)), int(point["timestamp"])))
        if exact is not None:
            return exact
    return number


def _number(text: str) -> float | None:
    """The numeric value the param codec (nbmlops._params) gives the text MLflow holds: a bool's
    ``True``/``False``, a number's digits (a string param that reads as a number comes back as
    that number: MLflow keeps text only)."""
    if text in ("True", "False"):
        return float(text == "True")
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _json(text: object) -> dict[str, Any]:
    try:
        value = json.loads(str(text)) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


__all__ = ["PULLED_FROM", "PullReport", "pull"]
