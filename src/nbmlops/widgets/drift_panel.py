"""The drift panel: choose the reference (a DataFrame variable, a run's input dataset that has a
saved profile, or a registered model's training data) and the current data, check, and see the
verdict, a sortable per-column table, and a column's reference vs current plot when it is
selected.

A thin layer: every check is one :func:`nbmlops.api.check_drift` call with the chosen reference
(the DataFrame, the dataset's fingerprint, or ``"name@alias"`` / ``"name/3"``), exactly what a
user could type; the string is resolved there, by ``nbmlops.drift.resolve_reference``. The
choices come from one query each (``nbmlops.drift.model_references``,
``datasets_with_profiles``).
"""

from __future__ import annotations

import html
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from nbmlops import api
from nbmlops.errors import NbmlopsError, StoreNotFoundError
from nbmlops.store import open_store
from nbmlops.widgets import _html
from nbmlops.widgets._panel import Panel

if TYPE_CHECKING:
    import pandas as pd

    from nbmlops.drift import DriftReport

SORTS = {
    "drifted first": (["drifted", "effect_size"], [False, False]),
    "effect size": (["effect_size"], [False]),
    "p-value": (["p_value"], [True]),
    "column": (["column"], [True]),
}
FRAME = "DataFrame"
RUN_INPUT = "run input"
MODEL = "model"
REFERENCE_KINDS = (FRAME, RUN_INPUT, MODEL)
_NARROW = widgets.Layout(width="260px")


class DriftPanel(Panel):
    """``report``: a finished check to show (else the panel waits for one). ``namespace``: where
    DataFrame variables are listed from (a notebook's ``user_ns``). ``reference`` and
    ``current`` preset the choosers (a DataFrame found in ``namespace``, or a model reference).
    ``options`` (``method``, ``threshold``, ``drift_share``, ``multiple_testing``) are passed to
    every check made from the panel."""

    def __init__(
        self,
        report: DriftReport | None = None,
        *,
        title: str = "",
        namespace: Mapping[str, Any] | None = None,
        store: Any = None,
        reference: Any = None,
        current: Any = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        # pandas, and nbmlops.drift (which loads it), are imported when a panel is built.
        import pandas as pd

        from nbmlops.drift.report import FRAME_COLUMNS

        self.store = store
        self.namespace: Mapping[str, Any] = namespace if namespace is not None else {}
        self.options = dict(options or {})
        self.report: DriftReport | None = None
        self.frame: pd.DataFrame = pd.DataFrame(columns=list(FRAME_COLUMNS))
        self.figure: Any = None

        # -- choosing what to compare
        self.reference_kind = widgets.ToggleButtons(
            options=list(REFERENCE_KINDS), description="reference"
        )
        self.reference_frame = widgets.Dropdown(description="DataFrame", layout=_NARROW)
        self.run_id = widgets.Text(
            description="run", placeholder="run id or prefix", continuous_update=False
        )
        self.run_input = widgets.Dropdown(description="input", layout=_NARROW)
        self.model = widgets.Dropdown(description="model", layout=_NARROW)
        self.reference_box = widgets.HBox()
        self.current = widgets.Dropdown(description="current", layout=_NARROW)
        self.only_columns = widgets.Text(description="columns", placeholder="all, or: a b c")
        self.check_button = widgets.Button(
            description="check drift", button_style="primary", icon="search"
        )
        self.refresh_button = widgets.Button(description="refresh lists", icon="refresh")
        self.message = widgets.HTML()

        # -- the result
        self.verdict = widgets.HTML()
        self.sort = widgets.ToggleButtons(options=list(SORTS), description="sort")
        self.table = widgets.HTML()
        self.column = widgets.Select(rows=2, description="plot")
        self.plot = widgets.HTML()

        self.reference_kind.observe(lambda _: self._draw_reference_box(), "value")
        self.run_id.observe(lambda _: self._list_run_inputs(), "value")
        self.check_button.on_click(lambda _: self.check())
        self.refresh_button.on_click(lambda _: self.refresh_lists())
        self.sort.observe(lambda _: self._draw_table(), "value")
        self.column.observe(lambda _: self._draw_plot(), "value")
        self.widget = widgets.VBox(
            [
                self.reference_kind,
                self.reference_box,
                widgets.HBox([self.current, self.only_columns]),
                widgets.HBox([self.check_button, self.refresh_button]),
                self.message,
                self.verdict,
                self.sort,
                self.table,
                widgets.HBox([self.column, self.plot]),
            ]
        )
        self.refresh_lists()
        self._preset(reference, current)
        self._draw_reference_box()
        if report is not None:
            self.show(report, title=title)
        else:
            self.verdict.value = (
                "<i>Choose a reference and the current data, then press check drift.</i>"
            )

    # -- choosers ------------------------------------------------------------------------------

    def frame_variables(self) -> list[str]:
        """The namespace's DataFrame variables (not starting with ``_``), sorted."""
        import pandas as pd

        return sorted(
            name
            for name, value in self.namespace.items()
            if isinstance(value, pd.DataFrame) and not name.startswith("_")
        )

    def refresh_lists(self) -> None:
        """List the namespace's DataFrames and the registered models again (one query)."""
        # nbmlops.drift loads pandas and numpy: the panels load them when first used, as here.
        from nbmlops import drift

        frames = self.frame_variables()
        for dropdown in (self.reference_frame, self.current):
            kept = dropdown.value
            dropdown.options = frames
            dropdown.value = kept if kept in frames else (frames[0] if frames else None)
        refs: list[str] = []
        try:
            refs = drift.model_references(open_store(self.store, create=False))
        except StoreNotFoundError:
            pass  # nothing tracked here yet: no models to choose
        except NbmlopsError as exc:
            self.message.value = _html.message(f"Could not list registered models: {exc}", ok=False)
        kept = self.model.value
        self.model.options = refs
        self.model.value = kept if kept in refs else (refs[0] if refs else None)
        if self.run_id.value:
            self._list_run_inputs()

    def _list_run_inputs(self) -> None:
        """The input DataFrames of the run in ``run_id`` that have a saved profile."""
        # nbmlops.drift loads pandas and numpy: the panels load them when first used, as here.
        from nbmlops import drift

        self.run_input.options = []
        prefix = self.run_id.value.strip()
        if not prefix:
            return
        try:
            run = api.get_run(prefix, store=self.store)
            inputs = [
                d
                for d in run.datasets
                if d["role"] == "input" and d.get("kind") in ("dataframe", "series")
            ]
            profiled = drift.datasets_with_profiles(
                open_store(self.store, create=False), [d["dataset_id"] for d in inputs]
            )
            with_profile = [d for d in inputs if d["dataset_id"] in profiled]
        except NbmlopsError as exc:
            self.message.value = _html.message(str(exc), ok=False)
            return
        self.run_input.options = [
            (f"{d['name']} · {d.get('n_rows') or '?'} rows", d["dataset_id"]) for d in with_profile
        ]
        self.run_input.value = with_profile[0]["dataset_id"] if with_profile else None
        missing = [d["name"] for d in inputs if d not in with_profile]
        if not with_profile:
            text = f"Run {run.run_id} has no input DataFrame with a saved profile"
            text += f" ({', '.join(missing)} have none)." if missing else "."
            if missing:
                text += f" Save one with nbm.save_reference({missing[0]})."
            self.message.value = _html.message(text, ok=False)
        else:
            self.message.value = ""

    def _draw_reference_box(self) -> None:
        kind = self.reference_kind.value
        children: list[widgets.Widget] = {
            FRAME: [self.reference_frame],
            RUN_INPUT: [self.run_id, self.run_input],
            MODEL: [self.model],
        }[kind]
        self.reference_box.children = children

    def _preset(self, reference: Any, current: Any) -> None:
        import pandas as pd

        def name_of(obj: Any) -> str | None:
            return next((n for n in self.frame_variables() if self.namespace[n] is obj), None)

        if isinstance(reference, pd.DataFrame) and name_of(reference) is not None:
            self.reference_kind.value = FRAME
            self.reference_frame.value = name_of(reference)
        elif isinstance(reference, str) and ("@" in reference or "/" in reference):
            if reference not in self.model.options:
                self.model.options = [reference, *self.model.options]
            self.reference_kind.value = MODEL
            self.model.value = reference
        if isinstance(current, pd.DataFrame) and name_of(current) is not None:
            self.current.value = name_of(current)

    def chosen_reference(self) -> Any:
        """What ``check_drift`` gets as its reference: the DataFrame, the dataset fingerprint
        or the model reference the choosers point at."""
        kind = self.reference_kind.value
        value = {FRAME: self.reference_frame, RUN_INPUT: self.run_input, MODEL: self.model}[
            kind
        ].value
        if value is None:
            what = {
                FRAME: "no DataFrame variable is chosen (press refresh lists after creating one)",
                RUN_INPUT: "no input dataset with a saved profile is chosen (enter a run id)",
                MODEL: "no registered model is chosen",
            }[kind]
            raise ValueError(f"Reference: {what}.")
        return self.namespace[value] if kind == FRAME else value

    # -- checking ------------------------------------------------------------------------------

    def check(self) -> DriftReport | None:
        """Check the chosen current data against the chosen reference; show the report."""
        try:
            reference = self.chosen_reference()
            if self.current.value is None:
                raise ValueError("Current data: no DataFrame variable is chosen.")
            current = self.namespace[self.current.value]
            columns = self.only_columns.value.split() or None
            report = api.check_drift(reference, current, columns, store=self.store, **self.options)
        except (NbmlopsError, ValueError, KeyError) as exc:
            self.message.value = _html.message(str(exc), ok=False)
            return None
        self.message.value = ""
        self.show(report, title=f"{self._reference_label()} vs {self.current.value}")
        return report

    def _reference_label(self) -> str:
        kind = self.reference_kind.value
        if kind == RUN_INPUT:
            return f"run {self.run_id.value.strip()} input {self.run_input.label}"
        return str({FRAME: self.reference_frame, MODEL: self.model}[kind].value)

    def show(self, report: DriftReport, *, title: str = "") -> None:
        """Show a report: verdict, table, the first drifted column's plot."""
        self.report = report
        self.frame = report.to_frame()
        verdict = "dataset drift" if report.dataset_drift else "no dataset drift"
        colour = "#c62828" if report.dataset_drift else "#2e7d32"
        drifted = int(self.frame["drifted"].sum())
        self.verdict.value = (
            f"<b style='color:{colour}'>{verdict}</b> · {drifted} of {len(self.frame)} columns "
            f"drifted (share {report.drift_share:.2f}) {html.escape(title)}"
        )
        self.column.rows = min(10, max(2, len(self.frame)))
        self._draw_table()

    # -- the result ----------------------------------------------------------------------------

    def sorted_frame(self) -> pd.DataFrame:
        by, ascending = SORTS[self.sort.value]
        return self.frame.sort_values(by, ascending=ascending, na_position="last", kind="stable")

    def _draw_table(self) -> None:
        if self.report is None:
            return
        shown = self.sorted_frame()
        self.table.value = _table_html(shown)
        labels: list[tuple[str, Hashable]] = [
            (f"{'⚠ ' if row.drifted else ''}{row.column}", row.column) for row in shown.itertuples()
        ]
        current = self.column.value
        self.column.options = labels
        first_drifted = next((c for c in shown[shown["drifted"]]["column"]), None)
        target = current if current in list(shown["column"]) else first_drifted
        if target is not None:
            self.column.value = target
        self._draw_plot()

    def _draw_plot(self) -> None:
        if self.column.value is None or self.report is None:
            self.plot.value = ""
            return
        try:
            self.figure = self.report.plot(columns=[self.column.value])
        except Exception as exc:  # e.g. a report saved before plots were stored
            self.plot.value = f"<i>{html.escape(str(exc))}</i>"
            return
        self.plot.value = _html.figure_png(self.figure)

    def to_frame(self) -> pd.DataFrame:
        return self.frame

    def to_html(self) -> str:
        if self.report is None:
            return f"<div>{self.verdict.value}</div>"
        return f"<div>{self.verdict.value}</div>" + _table_html(self.sorted_frame())

    def __repr__(self) -> str:
        if self.report is None:
            return "<DriftPanel: no check yet>"
        return f"<DriftPanel: {int(self.frame['drifted'].sum())}/{len(self.frame)} drifted>"


def _table_html(frame: pd.DataFrame) -> str:
    def style(label: Any, column: str) -> str:
        return _html.DIFFERENT if frame.loc[label, "drifted"] else ""

    return _html.table(frame, index=False, cell_style=style)
