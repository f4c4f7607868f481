"""The runs panel: a sortable, filterable, paginated table of runs with row selection, from core
ipywidgets only. The whole table is one DataFrame from ``nbm.runs()``; the grid shows one page
of it, and its widgets are created once per column set and refilled in place, so paging and
sorting 10,000 runs stay quick. Runs with an evaluation (``nbm.evaluate``) show its badge in an
``evaluation`` column before the metrics: unseen, leaky, not comparable or unchecked. Runs that
were re-run (``nbm.rerun``) show the newest outcome in a ``re-run`` column: reproduced, differs
or could not run, with the first difference or the reason on hover."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from ipywidgets.widgets.widget_bool import CheckboxStyle
from ipywidgets.widgets.widget_string import HTMLStyle

from nbmlops import api
from nbmlops.errors import NbmlopsError
from nbmlops.evaluation.result import Evaluation
from nbmlops.listings import latest_evaluations
from nbmlops.store import open_store
from nbmlops.store import reviews as review_store
from nbmlops.store.db import Row
from nbmlops.widgets import _html
from nbmlops.widgets._badges import badge_html, colour_of
from nbmlops.widgets._panel import Panel
from nbmlops.widgets.compare_view import CompareView

if TYPE_CHECKING:
    import pandas as pd

FIXED = ("name", "status", "start_time", "duration_s")
PULLED_TAG = "tags.nbmlops.pulled_from"
DEFAULT_EXTRA = 4  # params and metrics shown by default, each
RERUN = "re-run"
_OUTCOMES = {  # a re-run's outcome: its badge text and colour
    "reproduced": ("reproduced", "#2e7d32"),
    "differs": ("differs", "#c62828"),
    "unverified": ("nothing verified", "#6d6d6d"),
    "could_not_run": ("could not run", "#ef6c00"),
}


def _short(value: Any, width: int = 28) -> str:
    text = _html.fmt(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _nowrap(text: str) -> str:
    return f"<span style='white-space:nowrap'>{html.escape(text)}</span>"


class RunsPanel(Panel):
    def __init__(
        self,
        filter: str | None = None,
        experiment: str | None = None,
        *,
        store: Any = None,
        page_size: int = 20,
        columns: list[str] | None = None,
    ) -> None:
        self.store = store
        self.experiment = experiment
        self.page_size = page_size
        self.page = 0
        self.sort_by = "start_time"
        self.ascending = False
        self.selected: set[str] = set()
        self.frame: pd.DataFrame | None = None
        self.evaluations: dict[str, Evaluation] = {}
        self.reruns: dict[str, Row] = {}  # the newest re-run of each run that has one
        self.pulled: dict[str, tuple[str, str]] = {}  # run id -> (user, server) of pulled runs
        self.view: pd.DataFrame | None = None
        self.compare_view: CompareView | None = None
        self._filling = False
        self._requested_columns = columns

        self.filter_box = widgets.Text(
            value=filter or "",
            placeholder="filter, e.g. metrics.accuracy > 0.9 AND params.C < 1",
            continuous_update=False,
            layout=widgets.Layout(width="60%"),
        )
        self.refresh_button = widgets.Button(description="refresh", icon="refresh")
        self.columns_box = widgets.TagsInput(allowed_tags=[], allow_duplicates=False)
        self.status = widgets.HTML()
        self.prev_button = widgets.Button(description="◀", layout=widgets.Layout(width="40px"))
        self.next_button = widgets.Button(description="▶", layout=widgets.Layout(width="40px"))
        self.page_label = widgets.HTML()
        self.compare_button = widgets.Button(
            description="compare selected", disabled=True, button_style="primary"
        )
        self.grid = widgets.GridBox(
            layout=widgets.Layout(grid_gap="0px 10px", overflow="auto", align_items="center")
        )
        self.compare_area = widgets.VBox()

        self.filter_box.observe(lambda _: self.reload(), "value")
        self.refresh_button.on_click(lambda _: self.reload())
        self.columns_box.observe(lambda _: self._build_grid(), "value")
        self.prev_button.on_click(lambda _: self.go_to(self.page - 1))
        self.next_button.on_click(lambda _: self.go_to(self.page + 1))
        self.compare_button.on_click(lambda _: self.compare())

        self.widget = widgets.VBox(
            [
                widgets.HBox([self.filter_box, self.refresh_button]),
                widgets.HBox([widgets.HTML("columns&nbsp;"), self.columns_box]),
                self.status,
                self.grid,
                widgets.HBox(
                    [self.prev_button, self.page_label, self.next_button, self.compare_button]
                ),
                self.compare_area,
            ]
        )
        self._shared = {
            "header": widgets.Layout(width="auto", height="26px", padding="0 6px"),
            "header_style": widgets.ButtonStyle(),
            "check": widgets.Layout(width="24px", height="22px", margin="0"),
            "check_style": CheckboxStyle(),
            "cell": widgets.Layout(width="auto", margin="0"),
            "cell_style": HTMLStyle(),
        }
        self._corner = widgets.HTML(
            "", layout=self._shared["cell"], style=self._shared["cell_style"]
        )
        self._header: list[widgets.Button] = []
        self._checks: list[widgets.Checkbox] = []
        self._cells: list[list[widgets.HTML]] = []
        self._page_ids: list[str | None] = []
        self.reload()

    # -- data --------------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the runs again (after a new filter, or to see new runs)."""
        try:
            frame = api.runs(self.filter_box.value or None, self.experiment, store=self.store)
            store = open_store(self.store, create=False)
            self.evaluations = latest_evaluations(store, list(frame["run_id"]))
            self.reruns = review_store.latest_reruns(store, list(frame["run_id"]))
        except NbmlopsError as exc:
            self.status.value = f"<pre style='color:#c62828;margin:0'>{html.escape(str(exc))}</pre>"
            return
        if self.evaluations:
            badges = {run_id: e.badge for run_id, e in self.evaluations.items()}
            frame = frame.assign(evaluation=frame["run_id"].map(badges))
        if self.reruns:
            outcomes = {run_id: _OUTCOMES[r["outcome"]][0] for run_id, r in self.reruns.items()}
            frame = frame.assign(**{RERUN: frame["run_id"].map(outcomes)})
        self.frame = frame
        # Runs pulled from an MLflow server are other people's (or other machines'): said next
        # to the name, with who ran them and where they came from.
        pulled = frame.get(PULLED_TAG)
        self.pulled = (
            {}
            if pulled is None
            else {
                str(run_id): (str(user or "?"), str(server))
                for run_id, user, server in zip(frame["run_id"], frame["user"], pulled, strict=True)
                if isinstance(server, str) and server
            }
        )
        optional = [c for c in self.frame.columns if c.startswith(("params.", "metrics.", "tags."))]
        wanted = self._requested_columns or self.columns_box.value or self._default_columns()
        self.columns_box.allowed_tags = optional
        kept = [c for c in wanted if c in optional]
        if list(self.columns_box.value) != kept:
            self.columns_box.value = kept  # rebuilds the grid through the observer
        else:
            self._build_grid()
        self._requested_columns = None

    def _default_columns(self) -> list[str]:
        assert self.frame is not None
        filled = self.frame.notna().sum()
        chosen = []
        for prefix in ("params.", "metrics."):
            names = [c for c in self.frame.columns if c.startswith(prefix)]
            chosen += sorted(names, key=lambda c: -int(filled[c]))[:DEFAULT_EXTRA]
        return chosen

    @property
    def columns(self) -> list[str]:
        evaluation = ["evaluation"] if self.evaluations else []
        rerun = [RERUN] if self.reruns else []
        return ["run_id", *FIXED, *evaluation, *rerun, *self.columns_box.value]

    def _sorted(self) -> pd.DataFrame:
        assert self.frame is not None
        if self.sort_by not in self.frame.columns:
            self.sort_by, self.ascending = "start_time", False
        try:
            return self.frame.sort_values(
                self.sort_by, ascending=self.ascending, na_position="last", kind="stable"
            )
        except TypeError:  # mixed types in one column: sort by their text
            return self.frame.sort_values(
                self.sort_by,
                ascending=self.ascending,
                na_position="last",
                kind="stable",
                key=lambda s: s.astype(str),
            )

    def sort(self, column: str) -> None:
        """Sort by ``column``; sorting by it again reverses the order."""
        if column == self.sort_by:
            self.ascending = not self.ascending
        else:
            self.sort_by, self.ascending = column, column not in ("start_time", "duration_s")
        self.view = self._sorted()
        self.page = 0
        self._fill()

    def go_to(self, page: int) -> None:
        self.page = max(0, min(page, self.pages - 1))
        self._fill()

    @property
    def pages(self) -> int:
        rows = 0 if self.view is None else len(self.view)
        return max(1, -(-rows // self.page_size))

    # -- grid --------------------------------------------------------------------------------

    def _build_grid(self) -> None:
        columns = self.columns
        self._header = []
        for name in columns:
            button = widgets.Button(
                description=name,
                tooltip=f"sort by {name}",
                layout=self._shared["header"],
                style=self._shared["header_style"],
            )
            button.on_click(lambda _, n=name: self.sort(n))
            self._header.append(button)
        self._checks, self._cells = [], []
        self.grid.layout.grid_template_columns = "24px " + " ".join("max-content" for _ in columns)
        self.view = self._sorted()
        self._fill()

    def _add_row(self) -> None:
        """One more row of widgets. Rows are made only when a page needs them, and every cell
        shares one layout and one style: each widget is a model that a saved notebook keeps
        (a 20-row page of fresh widgets was ~600 models, ~480 KB of notebook metadata)."""
        check = widgets.Checkbox(
            indent=False, layout=self._shared["check"], style=self._shared["check_style"]
        )
        check.observe(self._on_check, "value")
        self._checks.append(check)
        self._cells.append(
            [
                widgets.HTML(layout=self._shared["cell"], style=self._shared["cell_style"])
                for _ in self.columns
            ]
        )

    def _fill(self) -> None:
        assert self.view is not None
        self.page = max(0, min(self.page, self.pages - 1))
        start = self.page * self.page_size
        rows = self.view.iloc[start : start + self.page_size]
        columns = self.columns
        arrow = "▲" if self.ascending else "▼"
        for button, name in zip(self._header, columns, strict=True):
            button.description = f"{name} {arrow}" if name == self.sort_by else name
        self._filling = True
        try:
            self._page_ids = []
            records = rows[columns].to_dict("records")
            while len(self._checks) < len(records):
                self._add_row()
            children: list[widgets.Widget] = [self._corner, *self._header]
            for check, cells, record in zip(self._checks, self._cells, records, strict=False):
                run_id = str(record["run_id"])
                self._page_ids.append(run_id)
                check.value = run_id in self.selected
                for cell, name in zip(cells, columns, strict=True):
                    if name == "evaluation":
                        cell.value = badge_html(self.evaluations.get(run_id))
                    elif name == RERUN:
                        cell.value = _rerun_html(self.reruns.get(run_id))
                    elif name == "name" and run_id in self.pulled:
                        user, server = self.pulled[run_id]
                        cell.value = (
                            f"{_nowrap(_short(record[name]))} <span title='pulled from "
                            f"{html.escape(server, quote=True)}; read-only' style='color:#6d6d6d'>"
                            f"(pulled, {html.escape(user)})</span>"
                        )
                    else:
                        cell.value = _nowrap(_short(record[name]))
                children += [check, *cells]
            self.grid.children = children
        finally:
            self._filling = False
        total = len(self.view)
        self.page_label.value = f"&nbsp;page {self.page + 1} of {self.pages}&nbsp;"
        self.status.value = (
            f"{total} runs · sorted by {html.escape(self.sort_by)} "
            f"{'ascending' if self.ascending else 'descending'} · {len(self.selected)} selected"
        )
        self.compare_button.disabled = len(self.selected) < 2

    def _on_check(self, change: dict[str, Any]) -> None:
        if self._filling:
            return
        index = self._checks.index(change["owner"])
        run_id = self._page_ids[index]
        if run_id is None:
            return
        if change["new"]:
            self.selected.add(run_id)
        else:
            self.selected.discard(run_id)
        self._fill()

    def select(self, *run_ids: str) -> None:
        """Select runs by id (as ticking their boxes does)."""
        self.selected.update(run_ids)
        self._fill()

    # -- compare -----------------------------------------------------------------------------

    def compare(self) -> CompareView | None:
        """Open the compare view for the selected runs (in the order they are listed)."""
        if len(self.selected) < 2 or self.view is None:
            return None
        ordered = [r for r in self.view["run_id"] if r in self.selected]
        self.compare_view = CompareView(api.compare_runs(*ordered, store=self.store))
        self.compare_area.children = [self.compare_view.widget]
        return self.compare_view

    # -- static rendering --------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        assert self.view is not None
        return self.view

    def to_html(self, rows: int = 50) -> str:
        if self.view is None:
            return str(self.status.value)
        shown = self.view[self.columns].head(rows).set_index("run_id")
        shown = shown.assign(start_time=shown["start_time"].map(_short))
        if self.pulled:
            shown["name"] = [
                f"{name} (pulled, {self.pulled[r][0]})" if r in self.pulled else name
                for r, name in zip(shown.index, shown["name"], strict=True)
            ]
        if RERUN in shown.columns:  # no hover in a saved page: the detail is written out
            shown[RERUN] = [_rerun_text(self.reruns.get(r), detail=True) for r in shown.index]
        parts = [f"<div>{self.status.value}</div>", _html.table(shown, cell_style=self._style)]
        if self.compare_view is not None:
            parts.append(self.compare_view.to_html())
        return "".join(parts)

    def _style(self, run_id: Any, column: str) -> str:
        if column == RERUN and run_id in self.reruns:
            return f"color:{_OUTCOMES[self.reruns[run_id]['outcome']][1]};font-weight:bold"
        evaluation = self.evaluations.get(run_id) if column == "evaluation" else None
        return "" if evaluation is None else f"color:{colour_of(evaluation)};font-weight:bold"

    def __repr__(self) -> str:
        total = 0 if self.view is None else len(self.view)
        return f"<RunsPanel: {total} runs, {len(self.selected)} selected>"


def _rerun_text(rerun: Row | None, *, detail: bool = False) -> str:
    """A re-run's outcome; with ``detail``, its first difference (and how many more) or the
    reason it could not run, as ``nbmlops show`` prints it."""
    if rerun is None:
        return ""
    text = _OUTCOMES[rerun["outcome"]][0]
    if not detail:
        return text
    differences = rerun["differences"] or []
    if rerun["outcome"] == "differs" and differences:
        more = f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""
        return f"{text}: {differences[0]}{more}"
    if rerun["outcome"] == "could_not_run":
        return f"{text}: {rerun['reason']}"
    if rerun["outcome"] == "unverified":
        return f"{text}: the run recorded no metrics to compare"
    n = len(rerun["metrics"] or {})
    return f"{text}: {n} metric{'' if n == 1 else 's'} within {rerun['tolerance']:g}"


def _rerun_html(rerun: Row | None) -> str:
    """The outcome badge of the live grid, its detail on hover."""
    if rerun is None:
        return ""
    colour = _OUTCOMES[rerun["outcome"]][1]
    return (
        f"<span title='{html.escape(_rerun_text(rerun, detail=True))}' "
        f"style='color:{colour};font-weight:bold;white-space:nowrap'>"
        f"{html.escape(_rerun_text(rerun))}</span>"
    )
