"""One tracked cell: what it is (notebook, cell id, version) and what it read, made and scored.

:class:`TrackedCell` is driven by the IPython glue in :mod:`nbmlops.magics` but needs no IPython:
``begin`` before the user's code runs, ``collect_figures`` right after it (before an inline
backend closes them), ``finish`` with the outcome. Every capture step is guarded on its own, so an
odd object costs only that item; the problems are returned, never raised, and the magic turns
them into one warning.

Cell identity, in order of preference (documented in the README):
1. the front end's ``cellId`` (JupyterLab, Notebook 7, VS Code and ``nbmlops execute`` send it
   with each execution);
2. the id of the cell with the same source in the saved notebook (nbclient, papermill and
   ``jupyter nbconvert --execute`` send no id);
3. for a ``%%track NAME`` cell, the id that name had earlier in this kernel: a cell edited and
   run again in a headless kernel no longer matches the saved file, and keeps its history;
4. ``name:<NAME>`` when the ``%%track`` line names the run;
5. ``src:<first 12 hex of the source hash>``: stable until the source changes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from nbmlops._jsonable import jsonable
from nbmlops.capture import analysis as _analysis
from nbmlops.capture import boosting, estimators, pytorch, scoring
from nbmlops.capture.files import FileReads
from nbmlops.capture.notebook import NotebookSnapshot, from_saved_file
from nbmlops.capture.run import Logged, Run, Status, begin_run, end_tracked_run, metric_value
from nbmlops.capture.training_rows import TrainingRows
from nbmlops.fingerprint import fingerprint
from nbmlops.store import Store
from nbmlops.store.cells import CellExecution

TRACK_PREFIX = "%%track"


@dataclass(frozen=True)
class TrackOptions:
    """The parsed ``%%track`` line; frozen, so one parse can serve every run of a cell."""

    name: str | None = None
    experiment: str | None = None
    params: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    data: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    auto: bool = True
    quiet: bool = False


@dataclass
class CellContext:
    """Who a cell is: the notebook it belongs to, its id, its source, its execution count."""

    source: str
    notebook: str | None
    cell_id: str
    execution_count: int | None
    session: str

    @property
    def source_hash(self) -> str:
        return source_hash(self.source)


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def body_of(source: str) -> str:
    """The cell with its ``%%track`` line blanked, so line numbers stay those of the cell."""
    first, sep, rest = source.partition("\n")
    if first.lstrip().startswith(TRACK_PREFIX):
        return sep + rest
    return source


def saved_cells(notebook: str | None) -> tuple[tuple[str, str], ...]:
    """(cell id, source) of the code cells of the notebook as last saved; () if unreadable."""
    saved = from_saved_file(notebook)
    return () if saved is None else saved.code_cells


def identify_cell(
    source: str,
    front_end_id: str | None,
    notebook: str | None,
    run_name: str | None,
    named: Mapping[str, str] | None = None,
) -> str:
    """The cell's id (see the module docstring); ``named`` maps a run name to the id its cell
    had when it was last identified by the front end or the saved notebook."""
    if front_end_id:
        return front_end_id
    stripped = source.strip()
    for cell_id, saved in saved_cells(notebook):
        if saved.strip() == stripped:
            return cell_id
    if run_name:
        return (named or {}).get(run_name) or f"name:{run_name}"
    return f"src:{source_hash(source)[:12]}"


def is_derived_id(cell_id: str) -> bool:
    """Whether the id was made up here (``name:``, ``src:``) rather than given by the notebook."""
    return cell_id.startswith(("name:", "src:"))


class EvaluationResult(Protocol):
    """What the cell reads of an evaluation (``nbmlops.evaluation.result.Evaluation``, which
    capture, a layer below, cannot import)."""

    @property
    def status(self) -> str: ...
    @property
    def badge(self) -> str: ...
    @property
    def overlap(self) -> Mapping[str, Any] | None: ...
    @property
    def failing_columns(self) -> Sequence[str]: ...


Evaluator = Callable[..., EvaluationResult]
"""``evaluate(store, model, X, y, *, source=...)``: the interface that starts the capture
session passes ``nbmlops.evaluation.evaluate.evaluate``; without one, nothing is evaluated."""

FeatureChecker = Callable[[Store, Mapping[str, tuple[str, object]]], list[str]]
"""``check(store, {name: (fingerprint, data)})`` -> findings: the training data a cell reads
checked against the feature store (``nbmlops.feature_store.validation``, above capture: the
interface passes it in); without one, nothing is checked."""


@dataclass(frozen=True)
class EvaluationNote:
    """One evaluation a tracked cell made, for its summary line: the badge, what earned it
    (``leaky: 18 rows seen in training``) and the metrics of the cell it qualifies."""

    badge: str
    detail: str
    metrics: tuple[str, ...] = ()

    @classmethod
    def of(cls, result: EvaluationResult, metrics: Sequence[str]) -> EvaluationNote:
        overlap = result.overlap or {}
        if result.status == "leaky":
            seen = max(int(overlap.get("rows") or 0), int(overlap.get("rows_without_target") or 0))
            detail = f"{result.badge}: {seen:,} row{'s' if seen != 1 else ''} seen in training"
        elif result.status == "not_comparable" and result.failing_columns:
            columns = list(result.failing_columns)
            more = f" +{len(columns) - 3}" if len(columns) > 3 else ""
            detail = f"{result.badge}: {', '.join(columns[:3])}{more}"
        elif result.status == "unchecked":
            detail = f"{result.badge}: training data unknown"
        else:
            detail = result.badge
        return cls(result.badge, detail, tuple(metrics))


@dataclass
class Summary:
    """What a tracked cell recorded, for the one-line report after the cell."""

    run_id: str
    name: str | None
    status: Status
    duration_s: float
    logged: Logged
    figures: int = 0
    stale: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    evaluations: list[EvaluationNote] = field(default_factory=list)


def _is_data(obj: object) -> bool:
    module = type(obj).__module__
    return (module.startswith("pandas") and type(obj).__name__ in ("DataFrame", "Series")) or (
        module == "numpy" and type(obj).__name__ == "ndarray"
    )


class TrackedCell:
    """Capture around one execution of a ``%%track`` cell."""

    def __init__(
        self,
        store: Store,
        context: CellContext,
        options: TrackOptions,
        namespace: dict[str, Any],
        *,
        stale: dict[str, str] | None = None,
        default_experiment: str | None = None,
        snapshot: NotebookSnapshot | None = None,
        evaluator: Evaluator | None = None,
        feature_checker: FeatureChecker | None = None,
    ) -> None:
        self.store = store
        self.evaluator = evaluator
        self.feature_checker = feature_checker
        self.snapshot = snapshot
        self.context = context
        self.options = options
        self.namespace = namespace
        self.stale = stale or {}
        self.default_experiment = default_experiment
        self.problems: list[str] = []
        self.analysis = _analysis.analyze_cell(body_of(context.source))
        self.run: Run | None = None
        self._inputs: dict[str, str] = {}
        self._outputs: dict[str, str] = {}  # data the cell made: name -> fingerprint
        self._figures_before: dict[int, bool] = {}
        self._figures: list[str] = []
        self._file_reads = FileReads(namespace)
        self._training = boosting.TrainingWatch()
        self._training_rows = TrainingRows(store)
        self._evaluations: list[EvaluationNote] = []
        self._started = 0.0

    def _guard(self, what: str, step: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return step(*args, **kwargs)
        except Exception as exc:
            self.problems.append(f"{what}: {type(exc).__name__}: {exc}")
            return None

    def begin(self) -> Run:
        """Start the run and take what must be seen before the user's code runs (the library
        ``train`` functions are watched from here to :meth:`collect_figures`).

        Raises only if the run itself cannot be created (e.g. the store is locked); the caller
        then runs the cell untracked.
        """
        ctx = self.context
        self._started = time.perf_counter()
        self.run = begin_run(
            self.store,
            name=self.options.name,
            experiment=self.options.experiment or self.default_experiment,
            tags=dict(self.options.tags),
            notebook=ctx.notebook,
            cell_id=ctx.cell_id,
            cell_source=ctx.source,
            execution_count=ctx.execution_count,
        )
        if self.stale:
            self.run.set_tag("stale_inputs", ", ".join(sorted(self.stale)))
        if self.snapshot is not None:
            self._guard("notebook snapshot", self._log_snapshot, self.snapshot)
        names = dict.fromkeys(self.options.data)
        if self.options.auto:
            names.update(dict.fromkeys(self.analysis.loads))
        for name in names:
            obj = self.namespace.get(name)
            if name in self.options.data or _is_data(obj):
                self._guard(f"input {name}", self._log_input, name, obj)
        if self.options.auto:
            self._guard("xgboost/lightgbm train", self._training.start, ctx.source)
        if self.options.auto and (self.analysis.fitted or self._training.trains(ctx.source)):
            self._profile_training_data()
        self._figures_before = self._guard("figures", _open_figures) or {}
        if self.options.auto:
            self._file_reads.__enter__()
        return self.run

    def _profile_training_data(self) -> None:
        """A cell that fits an estimator (or calls ``xgboost.train``/``lightgbm.train``): keep a
        drift reference profile of each DataFrame or Series it reads, keyed by the fingerprint
        just taken, so a model registered from this run is checked against its training data
        with nothing else to call. Done before the user's code runs, so the profile is of the
        data the fingerprint names; a fingerprint that already has a profile costs one lookup,
        a new one ~0.1-0.2 s (at most 100,000 sampled rows).

        The row hashes of each such input (arrays too) are taken beside it, ~0.4 s for 1M x 20
        once per dataset content (:mod:`nbmlops.capture.training_rows`), for the unseen check
        of an evaluation of the model."""
        # nbmlops.drift loads pandas and numpy; %load_ext nbmlops must not.
        from nbmlops.drift import profile_dataset

        for name, digest in self._inputs.items():
            obj = self.namespace.get(name)
            if type(obj).__name__ in ("DataFrame", "Series"):
                self._guard(
                    f"reference profile {name}", profile_dataset, self.store, obj, dataset_id=digest
                )
        data = {name: (digest, self.namespace.get(name)) for name, digest in self._inputs.items()}
        hashed = {name: item for name, item in data.items() if _is_data(item[1])}
        self.problems += self._training_rows.take(hashed)
        if self.feature_checker is not None:
            findings = self._guard("feature check", self.feature_checker, self.store, data)
            if findings:
                self.problems += findings
                assert self.run is not None
                self._guard("feature check", self.run.set_tag, "feature_mismatch", findings[0])

    def _log_snapshot(self, snapshot: NotebookSnapshot) -> None:
        assert self.run is not None
        self.run.log_notebook(
            snapshot.content, snapshot.meta(self.context.cell_id, self.context.source)
        )

    def _log_input(self, name: str, obj: object) -> None:
        assert self.run is not None
        line = self.analysis.loads.get(name)
        how = "--data" if name in self.options.data else f"read:{line}"
        self._inputs[name] = self.run.log_dataset(obj, name=name, role="input", source=how)

    def collect_figures(self) -> None:
        """Save figures the cell made or changed; call before the inline backend closes them.
        The first call after the cell's code: the library ``train`` functions are restored."""
        self._training.stop()
        if self.run is None or not self.options.auto:
            return
        for number, figure in self._guard("figures", _changed_figures, self._figures_before) or []:
            name = f"figure-{number}"
            if self._guard(name, self.run.log_figure, figure, name, source="pyplot"):
                self._figures.append(name)

    def finish(self, error: BaseException | None, execution: CellExecution) -> Summary:
        """Record what the cell produced and its outcome; never raises for capture problems.

        ``execution``, this cell run (its ``run_id`` this run's), is written in the same
        transaction as the run's outcome. Raises only if that write fails.
        """
        assert self.run is not None
        run = self.run
        self._file_reads.__exit__(None, None, None)
        self._training.stop()
        merged: dict[str, list[str]] = {}
        if self.options.auto:
            merged = self._guard("params", self._estimator_params) or {}
            self._guard("optimizer params", self._optimizer_params, merged)
            absorbed = self._guard("train params", self._train_params, merged) or set()
            for param in self.analysis.params:
                if param.name in absorbed:
                    continue
                source = "; ".join([f"literal:{param.line}", *merged.get(param.name, [])])
                self._guard(
                    f"param {param.name}", run.log_param, param.name, param.value, source=source
                )
            self._guard("outputs", self._auto_outputs)
            self._guard("models", self._auto_models)
            self._guard("training", self._auto_training)
            self._guard("statsmodels", self._auto_statsmodels)
            self._guard("torch modules", self._auto_torch)
            self._guard("curves", self._auto_curves)
            self._guard("metrics", self._auto_metrics)
            for path, how in self._file_reads.paths.items():
                self._guard(f"file {path}", run.log_dataset, path, path, "input", source=how)
        for name in self.options.params:
            if name in self.namespace:
                source = "; ".join(["--params", *merged.get(name, [])])
                self._guard(
                    f"param {name}", run.log_param, name, self.namespace[name], source=source
                )
            else:
                self.problems.append(f"--params {name}: no variable named {name!r} after the cell")
        for name in self.options.metrics:
            self._guard(
                f"--metrics {name}",
                run.log_metric,
                name,
                self.namespace.get(name),
                source="--metrics",
            )
        written = None
        if self.options.auto and self.evaluator is not None and error is None:
            written = self._guard("evaluation", self._auto_evaluations, self.evaluator)
        summary = Summary(
            run.run_id,
            self.options.name,
            Status.of(error),
            time.perf_counter() - self._started,
            # Buffered, so summarised without a query (an evaluation writes what came before).
            run.unwritten() if written is None else _added(written, run.unwritten()),
            figures=len(self._figures),
            stale=self.stale,
            problems=self.problems,
            evaluations=self._evaluations,
        )
        end_tracked_run(run, error, execution)
        self.problems += self._training_rows.save()  # the summary's list: shown with the others
        return summary

    def _estimator_params(self) -> dict[str, list[str]]:
        """Log the non-default params of the estimators the cell made or fitted, except those
        holding the value of a param named in the cell: ``C = 0.05`` then
        ``LogisticRegression(C=C)`` is one param, ``C`` (issue #13). Returns, per such name, the
        estimator arguments that carry it, for that param's ``source``."""
        assert self.run is not None
        named = {p.name: p.value for p in self.analysis.params}
        named.update(
            (name, jsonable(self.namespace[name]))
            for name in self.options.params
            if name in self.namespace
        )
        merged: dict[str, list[str]] = {}
        seen: set[int] = set()
        candidates = {**self.analysis.constructed, **self.analysis.fitted}
        for name, line in sorted(candidates.items(), key=lambda kv: kv[1]):
            obj = self.namespace.get(name)
            if id(obj) in seen or not estimators.is_estimator(obj):
                continue
            seen.add(id(obj))
            self._log_params("estimator", line, estimators.non_default_params(obj), named, merged)
        return merged

    def _log_params(
        self,
        kind: str,
        line: int,
        params: Mapping[str, Any],
        named: dict[str, object],
        merged: dict[str, list[str]],
    ) -> None:
        """Log the ``params`` of one estimator or optimizer (``kind``) built at ``line``, but
        those holding the value of a param ``named`` in the cell: each adds its argument to
        that name's entry of ``merged`` instead (the named param's ``source``)."""
        assert self.run is not None
        for key, value in params.items():
            argument = self._argument_holding(key, value, named)
            if argument is not None:
                merged.setdefault(argument.name, []).append(
                    f"{kind}:{argument.line} {argument.func}({argument.keyword}={argument.name})"
                )
                continue
            self._guard(f"param {key}", self.run.log_param, key, value, source=f"{kind}:{line}")

    def _optimizers(self) -> list[tuple[str, int, Any]]:
        """``(name, line, optimizer)`` for the torch optimizers the cell bound or used."""
        names = {**self.analysis.mutated, **self.analysis.stores}
        return [
            (name, line, self.namespace.get(name))
            for name, line in sorted(names.items(), key=lambda kv: kv[1])
            if pytorch.is_optimizer(self.namespace.get(name))
        ]

    def _optimizer_params(self, merged: dict[str, list[str]]) -> None:
        """``<Optimizer>.lr`` and the like (:mod:`nbmlops.capture.pytorch`); as for estimators,
        ``lr = 1e-3`` then ``Adam(params, lr=lr)`` stays the one param ``lr``."""
        named = {p.name: p.value for p in self.analysis.params}
        for _, line, optimizer in self._optimizers():
            self._log_params("optimizer", line, pytorch.optimizer_params(optimizer), named, merged)

    def _auto_torch(self) -> None:
        """The modules the cell made or trained: weights as a model, parameter count, layers."""
        assert self.run is not None
        if not any(
            pytorch.is_module(self.namespace.get(n))
            for n in (*self.analysis.stores, *self.analysis.loads)
        ):
            return  # torch not imported, or no module in sight: nothing to look for
        candidates = {**self.analysis.mutated, **self.analysis.stores}
        optimizers = [opt for _, _, opt in self._optimizers()]
        modules = pytorch.captured_modules(
            {n: self.namespace.get(n) for n in candidates}, optimizers, self.namespace
        )
        for name, module in modules:
            source = f"torch:{candidates.get(name, self.analysis.loads.get(name))}"
            self._guard(f"model {name}", self.run.log_model, module, name, source=source)
            self._guard(
                f"param {name}.n_parameters",
                self.run.log_param,
                f"{name}.n_parameters",
                pytorch.n_parameters(module),
                source=source,
            )
            self._guard(
                f"{name} architecture",
                self.run._log_generated,
                f"{name}.architecture.txt",
                pytorch.architecture(module),
                "text/plain",
                source,
            )

    def _auto_curves(self) -> None:
        """Lists of numbers the cell built in place become step metrics
        (:mod:`nbmlops.capture.pytorch`), unless the cell logged that metric itself."""
        assert self.run is not None
        params = {p.name for p in self.analysis.params}
        logged = set(self.run._next_step)  # keys the cell logged itself, flushed or not
        for name, line in self.analysis.mutated.items():
            if name in params:
                continue
            for key, points in pytorch.series(name, self.namespace.get(name)):
                if key in logged:
                    continue
                for step, value in points:
                    self._guard(
                        f"metric {key}",
                        self.run.log_metric,
                        key,
                        value,
                        step,
                        source=f"list:{line}",
                    )

    def _train_params(self, merged: dict[str, list[str]]) -> set[str]:
        """Log the params of each native ``xgboost.train`` / ``lightgbm.train`` call, one per
        key. Returns the literal params they absorb: ``params = {...}`` passed as the params
        dict is logged key by key, not also as one dict; ``rounds = 100`` passed as
        ``num_boost_round=rounds`` stays ``rounds`` (as for estimators, issue #13), its source
        naming the call."""
        assert self.run is not None
        literals = {p.name: p for p in self.analysis.params}
        absorbed: set[str] = set()
        for call in self._training.calls:
            params = boosting.train_params(call)
            holder = next((p for p in literals.values() if p.value == params_value(call)), None)
            if holder is not None:
                absorbed.add(holder.name)
            for key, value in params.items():
                source = f"{call.library}.train"
                if key.endswith(".num_boost_round"):
                    argument = self._argument_holding(
                        "train.num_boost_round", value, {n: p.value for n, p in literals.items()}
                    )
                    if argument is not None:
                        merged.setdefault(argument.name, []).append(f"{source}:{argument.line}")
                        continue
                elif holder is not None:
                    source += f"; literal:{holder.line} {holder.name}"
                self._guard(f"param {key}", self.run.log_param, key, value, source=source)
        return absorbed

    def _argument_holding(
        self, key: str, value: object, named: dict[str, object]
    ) -> _analysis.KeywordArg | None:
        """The ``Class(param=name)`` argument of the cell that gave estimator param ``key``
        (``Class.param`` or ``Class[path].param``) its ``value`` from the named param ``name``."""
        label, _, param = key.rpartition(".")
        cls = label.partition("[")[0]
        for argument in self.analysis.keywords:
            if (
                argument.func == cls
                and argument.keyword == param
                and argument.name in named
                and _same_value(named[argument.name], value)
            ):
                return argument
        return None

    def _auto_outputs(self) -> None:
        assert self.run is not None
        changed = {**self.analysis.mutated, **self.analysis.stores}
        for name, line in changed.items():
            obj = self.namespace.get(name)
            if not _is_data(obj):
                continue
            digest = fingerprint(obj).digest
            if self._inputs.get(name) == digest:
                continue  # read, not changed
            self._outputs[name] = self.run.log_dataset(
                obj, name=name, role="output", source=f"assign:{line}"
            )

    def _auto_models(self) -> None:
        """Each estimator the cell fitted, with the names of the data it was fitted on. Data
        the cell made itself (``X_train`` from ``train_test_split``) gets, after the cell, what
        an input gets before it: a drift profile and row hashes, so an evaluation compares
        against the rows the model saw and not the frame they were split from."""
        assert self.run is not None
        fits = scoring.fitted_data(body_of(self.context.source))
        for name, line in self.analysis.fitted.items():
            obj = self.namespace.get(name)
            if estimators.is_estimator(obj) and estimators.is_fitted(obj):
                self.run.log_model(obj, name, source=f"fit:{line}", fitted_on=fits.get(name))
                self._guard(
                    f"training data of {name}", self._keep_made_training_data, fits.get(name)
                )

    def _keep_made_training_data(self, names: tuple[str, str | None] | None) -> None:
        from nbmlops.drift import profile_dataset  # pandas, numpy: not at %load_ext

        made = {n: self._outputs[n] for n in names or () if n in self._outputs}
        for name, digest in made.items():
            obj = self.namespace.get(name)
            if type(obj).__name__ in ("DataFrame", "Series"):
                profile_dataset(self.store, obj, dataset_id=digest)
        self.problems += self._training_rows.take(
            {n: (digest, self.namespace.get(n)) for n, digest in made.items()}
        )

    def _auto_training(self) -> None:
        """What a boosting model knows after fitting (:mod:`nbmlops.capture.boosting`): the
        wrappers the cell fitted and the Boosters its native ``train`` calls returned."""
        assert self.run is not None
        models: list[tuple[str, Any, str, Any]] = []  # name, model, source, eval history
        for name, line in self.analysis.fitted.items():
            obj = self.namespace.get(name)
            if boosting.is_boosting_wrapper(obj) and estimators.is_fitted(obj):
                models.append((name, obj, f"fit:{line}", boosting.eval_history(obj)))
        for call in self._training.calls:
            name = self._name_of(call.booster) or f"{call.library}_booster"
            source = f"{call.library}.train"
            models.append((name, call.booster, source, call.history))
            self._guard(f"model {name}", self.run.log_model, call.booster, name, source=source)
        for name, model, source, history in models:
            prefix = f"{name}." if len(models) > 1 else ""
            best = self._guard(f"{name} best_iteration", boosting.best_iteration, model)
            if best is not None:
                self._guard(
                    "best_iteration",
                    self.run.log_metric,
                    f"{prefix}best_iteration",
                    best,
                    source=source,
                )
            for key, step, value in boosting.step_metrics(history):
                self._guard(
                    f"metric {key}",
                    self.run.log_metric,
                    prefix + key,
                    value,
                    step,
                    source=f"eval:{source}",
                )
            importances = self._guard(
                f"{name} feature importances", boosting.feature_importances, model
            )
            if importances:
                self._guard(
                    f"{name} feature importances",
                    self.run._log_generated,
                    f"{name}.feature_importances.json",
                    boosting.importances_json(importances),
                    "application/json",
                    source,
                )

    def _name_of(self, obj: object) -> str | None:
        """The name the cell bound ``obj`` to, if any."""
        for name in self.analysis.stores:
            if self.namespace.get(name) is obj:
                return name
        return None

    def _auto_statsmodels(self) -> None:
        """Fitted statsmodels results the cell made: coefficients and fit statistics as
        metrics, the summary as text (:mod:`nbmlops.capture.boosting`)."""
        assert self.run is not None
        names = {**self.analysis.constructed, **self.analysis.fitted}
        found = [
            (name, line, self.namespace.get(name))
            for name, line in sorted(names.items(), key=lambda kv: kv[1])
            if boosting.is_statsmodels_results(self.namespace.get(name))
        ]
        for name, line, results in found:
            prefix = f"{name}." if len(found) > 1 else ""
            metrics = self._guard(f"{name} statistics", boosting.statsmodels_metrics, results)
            for key, value in (metrics or {}).items():
                self._guard(
                    f"metric {key}",
                    self.run.log_metric,
                    prefix + key,
                    value,
                    source=f"statsmodels:{line}",
                )
            summary = self._guard(f"{name} summary", lambda r=results: str(r.summary()))
            if summary is not None:
                self._guard(
                    f"{name} summary",
                    self.run._log_generated,
                    f"{name}.summary.txt",
                    summary.encode(),
                    "text/plain",
                    f"statsmodels:{line}",
                )

    def _auto_metrics(self) -> None:
        assert self.run is not None
        for candidate in self.analysis.metrics:
            if candidate.rule == "call" and not self._is_sklearn_metric(candidate.func):
                continue
            value = self.namespace.get(candidate.name)
            try:
                metric_value(candidate.name, value)
            except TypeError:
                continue  # e.g. a per-class array: not a scalar metric
            except ValueError:
                pass  # a number that cannot be stored: log_metric says so, as a problem
            rule = "score" if candidate.rule == "score" else "sklearn.metrics"
            self._guard(
                f"metric {candidate.name}",
                self.run.log_metric,
                candidate.name,
                value,
                source=f"{rule}:{candidate.line}",
            )

    def _auto_evaluations(self, evaluate: Evaluator) -> Logged | None:
        """Evaluate each fitted model the cell scored on data it did not fit it on
        (:mod:`nbmlops.capture.scoring`), once per (model, X, y): its metrics and whether the
        data was unseen and comparable (``nbmlops.evaluation``), recorded with this run.

        The run is written first, so that the evaluation finds the model the cell fitted (its
        artifact) and the data it was fitted on (the run's inputs, their row hashes); returns
        what that write took from the buffer, for the summary (None: nothing evaluated)."""
        assert self.run is not None
        scored: dict[tuple[int, int, int], tuple[scoring.Scored, Any, Any, Any, list[str]]] = {}
        for score in scoring.scored_calls(body_of(self.context.source)):
            model, X, y = (self.namespace.get(n) for n in (score.model, score.X, score.y))
            if not (estimators.is_fitted(model) and _is_data(X) and _is_data(y)):
                continue
            if score.func is not None and not self._is_sklearn_metric(score.func):
                continue
            entry = scored.setdefault((id(model), id(X), id(y)), (score, model, X, y, []))
            if score.metric is not None and score.metric not in entry[4]:
                entry[4].append(score.metric)
        if not scored:
            return None
        written = self.run.unwritten()
        self.run.flush()
        self.problems += self._training_rows.save()  # this cell's training data, if it trains
        for score, model, X, y, metrics in scored.values():
            rule = "score" if score.func is None else "sklearn.metrics"
            what = f"evaluation of {score.model} on {score.X}, {score.y}"
            result = self._guard(
                what, evaluate, self.store, model, X, y, source=f"{rule}:{score.line}"
            )
            note = None if result is None else self._guard(what, EvaluationNote.of, result, metrics)
            if note is not None:
                self._evaluations.append(note)
        return written

    def _is_sklearn_metric(self, func: tuple[str, ...] | None) -> bool:
        if not func:
            return False
        obj: Any = self.namespace.get(func[0])
        if obj is None and func[0] == "sklearn":
            import sys

            obj = sys.modules.get("sklearn")
        for part in func[1:]:
            obj = getattr(obj, part, None)
        module = getattr(obj, "__module__", "") or ""
        return callable(obj) and module.startswith("sklearn.metrics")


def _added(first: Logged, then: Logged) -> Logged:
    """What a run logged in two parts (written, then still buffered), as one."""
    return Logged(
        params=first.params + then.params,
        metrics={**first.metrics, **then.metrics},
        inputs=first.inputs + then.inputs,
        outputs=first.outputs + then.outputs,
        models=first.models + then.models,
    )


def params_value(call: boosting.TrainCall) -> object:
    """A train call's params dict as a literal param of the cell holds it."""
    return jsonable(call.params)


def _same_value(a: object, b: object) -> bool:
    """Equal, and of the same kind: ``True`` and ``1`` are two values here."""
    return type(a) is type(b) and a == b


def _pyplot_figures() -> dict[int, Any]:
    import sys

    if "matplotlib.pyplot" not in sys.modules:
        return {}
    # Gcf lists pyplot's figures without making one current, as pyplot.figure(n) would.
    from matplotlib._pylab_helpers import Gcf

    return {number: manager.canvas.figure for number, manager in sorted(Gcf.figs.items())}


def _open_figures() -> dict[int, bool]:
    """Figure number -> whether it already had undrawn changes when the cell started."""
    return {number: bool(figure.stale) for number, figure in _pyplot_figures().items()}


def _changed_figures(before: dict[int, bool]) -> list[tuple[int, Any]]:
    """Figures the cell created, or changed after they had been drawn."""
    return [
        (number, figure)
        for number, figure in _pyplot_figures().items()
        if number not in before or (figure.stale and not before[number])
    ]
