"""The datasets panel (``%datasets``): every named dataset; a dataset's versions with what each
cost on disk, who saved it, when and from which run; the runs and models that used a version
(the seed's "which version of the data led to the dismal performance"); the diff of any two
versions (issue #16 item 7)."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from nbmlops import api
from nbmlops.errors import NbmlopsError, StoreNotFoundError
from nbmlops.widgets import _html
from nbmlops.widgets._panel import Panel

ALL = ""
"""The dataset chooser's value for the list of every dataset."""
OVERVIEW_COLUMNS = ["name", "kind", "versions", "n_rows", "n_bytes", "stored_bytes", "updated_at"]
VERSION_COLUMNS = ["version", "mode", "n_rows", "n_bytes", "added_bytes", "actor", "created_at"]
VERSION_HEADERS = {
    "n_rows": "rows",
    "n_bytes": "bytes",
    "added_bytes": "added on disk",  # what the version really cost: the files it added
    "actor": "who",
    "created_at": "when",
    "run_id": "saved by run",
}
OVERVIEW_HEADERS = {
    "n_rows": "rows (latest)",
    "n_bytes": "bytes (latest)",
    "stored_bytes": "on disk (all versions)",
    "updated_at": "updated",
}
USAGE_COLUMNS = ["run_id", "how", "variable", "at", "models"]


class DatasetsPanel(Panel):
    def __init__(self, name: str | None = None, *, store: Any = None) -> None:
        self.store = store
        self.dataset = widgets.Dropdown(description="dataset")
        self.overview_html = widgets.HTML()
        self.versions_html = widgets.HTML()
        self.version = widgets.Dropdown(description="used by")
        self.usage_html = widgets.HTML()
        self.old = widgets.Dropdown(description="diff", layout=widgets.Layout(width="220px"))
        self.new = widgets.Dropdown(description="against", layout=widgets.Layout(width="220px"))
        self.diff_button = widgets.Button(description="diff", icon="exchange")
        self.diff_html = widgets.HTML()
        self.message = widgets.HTML()

        self.dataset.observe(lambda _: self._draw_dataset(), "value")
        self.version.observe(lambda _: self._draw_usage(), "value")
        self.diff_button.on_click(lambda _: self.diff())

        self.details = widgets.VBox(
            [
                self.versions_html,
                self.version,
                self.usage_html,
                widgets.HBox([self.old, self.new, self.diff_button]),
                self.diff_html,
            ]
        )
        self.widget = widgets.VBox(
            [widgets.HBox([self.dataset]), self.overview_html, self.details, self.message]
        )
        self.refresh(select=name)

    def refresh(self, select: str | None = None) -> None:
        try:
            frame = api.datasets(store=self.store)
        except StoreNotFoundError:  # nothing saved here yet: no datasets, not an error
            frame = None
        names = [] if frame is None else list(frame["name"])
        if select is not None and select not in names:
            api.get_dataset(select, store=self.store)  # DatasetNotFoundError lists the names
        self.dataset.options = [("all datasets", ALL), *((n, n) for n in names)]
        if frame is None or frame.empty:
            self.overview_html.value = (
                "<i>no datasets yet: save one with nbm.save_dataset(df, 'name')</i>"
            )
        else:
            shown = frame[OVERVIEW_COLUMNS].assign(updated_at=frame["updated_at"].map(_html.when))
            self.overview_html.value = _html.table(
                shown.rename(columns=OVERVIEW_HEADERS), index=False
            )
        self.dataset.value = select or ALL
        self._draw_dataset()

    def _draw_dataset(self) -> None:
        name = self.dataset.value
        self.diff_html.value = ""
        self.overview_html.layout.display = None if name == ALL else "none"
        self.details.layout.display = "none" if name == ALL else None
        if name == ALL:
            self.versions_html.value = ""
            self.version.options = self.old.options = self.new.options = []
            return
        versions = api.dataset_versions(name, store=self.store)
        self.versions_html.value = _html.section(
            f"{name}: {len(versions)} versions", _html.table(_versions_table(versions), index=False)
        )
        refs = [v.ref for v in versions]
        self.version.options = self.old.options = self.new.options = refs
        self.old.value = refs[-2] if len(refs) > 1 else refs[-1]
        self.new.value = refs[-1]
        self.version.value = refs[-1]
        self._draw_usage()

    def _draw_usage(self) -> None:
        ref = self.version.value
        if not ref:
            self.usage_html.value = ""
            return
        usage = api.dataset_usage(ref, store=self.store)
        if usage.empty:
            body = "<i>no run used it yet: load it inside a %%track cell</i>"
        else:
            body = _html.table(
                usage[USAGE_COLUMNS].assign(
                    at=usage["at"].map(_html.when), models=usage["models"].map(", ".join)
                ),
                index=False,
            )
        self.usage_html.value = _html.section(f"Runs and models that used {ref}", body)

    def diff(self) -> None:
        """The diff of the two chosen versions: its summary and changed rows (or files)."""
        old, new = self.old.value, self.new.value
        try:
            result = api.dataset_diff(old, new, store=self.store)
        except NbmlopsError as exc:
            self.message.value = _html.message(str(exc), ok=False)
            return
        self.message.value = ""
        self.diff_html.value = _html.section("Diff", result._repr_html_())

    def to_html(self) -> str:
        if self.dataset.value == ALL:
            return str(self.overview_html.value)
        return "".join([self.versions_html.value, self.usage_html.value, self.diff_html.value])

    def __repr__(self) -> str:
        shown = self.dataset.value or f"{len(self.dataset.options) - 1} datasets"
        return f"<DatasetsPanel: {shown}>"


def _versions_table(versions: list[Any]) -> Any:
    """The versions as the panel shows them: a restore says which version it restored."""
    import pandas as pd

    frame = pd.DataFrame([vars(v) for v in versions], columns=[*VERSION_COLUMNS, "run_id"])
    frame["mode"] = [
        v.mode if v.restored_from is None else f"{v.mode} of @{v.restored_from}" for v in versions
    ]
    frame["created_at"] = frame["created_at"].map(_html.when)
    return frame.rename(columns=VERSION_HEADERS)
