"""The feature views panel (``%features``): every view with its latest version, entity and
keys, features and dtypes, TTL, source, owner, how fresh its online values are (red once older
than the TTL: every value expired) and the models trained from it; a view's definition and
code, its versions with what each changed, the definition diff of any two, and the freshness
of the version online reads use (issue #17 item 5)."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from nbmlops import api
from nbmlops.errors import StoreNotFoundError
from nbmlops.feature_store.changes import code_lines, definition_diff, ttl_text
from nbmlops.feature_store.status import ViewStatus, age_text, view_status
from nbmlops.store import features as feature_records
from nbmlops.store import open_store
from nbmlops.widgets import _html
from nbmlops.widgets._panel import Panel

ALL = ""
"""The view chooser's value for the list of every view."""
STALE = "color:#c62828;font-weight:bold"
CODE_WIDTH = 100


class FeaturesPanel(Panel):
    def __init__(self, name: str | None = None, *, store: Any = None) -> None:
        self.store = store
        self.view = widgets.Dropdown(description="view")
        self.overview_html = widgets.HTML()
        self.definition_html = widgets.HTML()
        self.versions_html = widgets.HTML()
        self.freshness_html = widgets.HTML()
        self.models_html = widgets.HTML()
        self.old = widgets.Dropdown(description="diff", layout=widgets.Layout(width="220px"))
        self.new = widgets.Dropdown(description="against", layout=widgets.Layout(width="220px"))
        self.diff_html = widgets.HTML()
        self.statuses: dict[str, ViewStatus] = {}

        self.view.observe(lambda _: self._draw_view(), "value")
        self.old.observe(lambda _: self._draw_diff(), "value")
        self.new.observe(lambda _: self._draw_diff(), "value")

        self.details = widgets.VBox(
            [
                self.definition_html,
                self.freshness_html,
                self.models_html,
                self.versions_html,
                widgets.HBox([self.old, self.new]),
                self.diff_html,
            ]
        )
        self.widget = widgets.VBox([widgets.HBox([self.view]), self.overview_html, self.details])
        self.refresh(select=name)

    def refresh(self, select: str | None = None) -> None:
        """Read every view again (their versions, freshness and models) and redraw."""
        try:
            opened = open_store(self.store, create=False)
        except StoreNotFoundError:  # nothing recorded here yet: no views, not an error
            opened = None
        names = (
            [r["name"] for r in feature_records.latest_views(opened)] if opened is not None else []
        )
        if select is not None and select not in names:
            api.get_feature_view(select, store=self.store)  # FeatureError names the known views
        self.statuses = {n: view_status(opened, n) for n in names} if opened is not None else {}
        self.view.options = [("all feature views", ALL), *((n, n) for n in names)]
        self.overview_html.value = (
            _overview(list(self.statuses.values()))
            if names
            else "<i>no feature views yet: define one with @nbm.feature_view(...)</i>"
        )
        self.view.value = select or ALL
        self._draw_view()

    def _draw_view(self) -> None:
        name = self.view.value
        self.overview_html.layout.display = None if name == ALL else "none"
        self.details.layout.display = "none" if name == ALL else None
        if name == ALL:
            for part in (self.definition_html, self.versions_html, self.diff_html):
                part.value = ""
            self.freshness_html.value = self.models_html.value = ""
            self.old.options = self.new.options = []
            return
        status = self.statuses[name]
        self.definition_html.value = _definition(status)
        self.versions_html.value = _html.section(
            f"{name}: {len(status.versions)} versions", _versions(status)
        )
        self.freshness_html.value = _freshness(status)
        models = status.model_refs()
        self.models_html.value = _html.section(
            "Models trained from it",
            ", ".join(html.escape(m) for m in models)
            or "<i>none yet: build a training set with nbm.training_set and register a model "
            "trained from it</i>",
        )
        refs = [v.ref for v in status.versions]
        self.old.options, self.new.options = refs, refs
        self.old.value = refs[-2] if len(refs) > 1 else refs[-1]
        self.new.value = refs[-1]
        self._draw_diff()

    def _draw_diff(self) -> None:
        status = self.statuses.get(self.view.value)
        if status is None or not self.old.value or not self.new.value:
            self.diff_html.value = ""
            return
        by_ref = {v.ref: v for v in status.versions}
        old, new = by_ref.get(self.old.value), by_ref.get(self.new.value)
        if old is None or new is None:
            return
        if old.ref == new.ref:
            body = "<i>the same version: choose two to diff</i>"
        else:
            body = _html.unified_diff(definition_diff(old, new, CODE_WIDTH))
        self.diff_html.value = _html.section(f"Definition diff {old.ref} → {new.ref}", body)

    def to_html(self) -> str:
        if self.view.value == ALL:
            return str(self.overview_html.value)
        parts = (
            self.definition_html,
            self.freshness_html,
            self.models_html,
            self.versions_html,
            self.diff_html,
        )
        return "".join(str(p.value) for p in parts)

    def __repr__(self) -> str:
        shown = self.view.value or f"{len(self.view.options) - 1} views"
        return f"<FeaturesPanel: {shown}>"


def _overview(statuses: list[ViewStatus]) -> str:
    """One row per view, its latest version; the age of the served values red when stale."""
    import pandas as pd

    rows = []
    for status in statuses:
        view, served = status.view, status.served
        rows.append(
            {
                "view": view.name,
                "latest": view.ref,
                "versions": len(status.versions),
                "entity (keys)": f"{view.entity} ({', '.join(view.keys)})",
                "features": ", ".join(f"{n}: {d}" for n, d in view.features),
                "ttl": ttl_text(view.ttl_seconds),
                "source": view.source_kind,
                "owner": view.owner,
                "last materialised": "never" if served is None else served.materialized_at,
                "online age": "" if served is None else age_text(served.age_seconds),
                "models": ", ".join(f"{m['name']}/{m['version']}" for m in status.models),
            }
        )
    frame = pd.DataFrame(rows)
    frame["last materialised"] = frame["last materialised"].map(
        lambda v: v if isinstance(v, str) else _html.when(v)
    )
    stale = {i for i, s in enumerate(statuses) if s.served is not None and s.served.stale}
    return _html.table(
        frame,
        index=False,
        cell_style=lambda row, column: STALE if column == "online age" and row in stale else "",
    )


def _definition(status: ViewStatus) -> str:
    view = status.view
    facts = {
        "entity": f"{view.entity} (keys: {', '.join(view.keys)})",
        "timestamp": view.timestamp,
        "created": view.created or "-",
        "ttl": ttl_text(view.ttl_seconds),
        "source": view.source_kind + (f" {view.source}" if view.source_kind != "function" else ""),
        "features": ", ".join(f"{n}: {d}" for n, d in view.features),
        "owner": view.owner or "",
        "defined": _html.when(view.created_at),
        "fingerprint": view.fingerprint,
    }
    rows = "".join(
        f"<tr><th style='{_html.CELL}'>{html.escape(k)}</th>"
        f"<td style='{_html.CELL}'>{html.escape(v)}</td></tr>"
        for k, v in facts.items()
    )
    table = f"<table style='{_html.TABLE_STYLE}'>{rows}</table>"
    code = code_lines(view, CODE_WIDTH)
    if code:
        note = "as recorded: no comments, docstring or decorator"
        table += (
            f"<div style='margin-top:6px'><i>{'transform' if view.transform else 'code'} "
            f"({note})</i></div><pre style='font-size:12px;margin:2px 0'>"
            + html.escape("\n".join(code))
            + "</pre>"
        )
    return _html.section(f"{view.ref}", table)


def _versions(status: ViewStatus) -> str:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "version": [v.version for v in status.versions],
            "defined": [_html.when(v.created_at) for v in status.versions],
            "owner": [v.owner for v in status.versions],
            "what changed": list(status.changes),
            "materialised": [
                _html.when(f.materialized_at) if f.materialized else "" for f in status.freshness
            ],
        }
    )
    return _html.table(frame, index=False)


def _freshness(status: ViewStatus) -> str:
    served, latest = status.served, status.versions[-1]
    if served is None:
        body = (
            f"<i>never materialised: nbm.materialize({latest.name!r}) copies its latest "
            "values into the online store</i>"
        )
        return _html.section("Freshness", body)
    facts = served.facts()
    rows = "".join(
        f"<tr><th style='{_html.CELL}'>{html.escape(k)}</th><td style='{_html.CELL}"
        f"{';' + STALE if k == 'age' and served.stale else ''}'>{html.escape(v)}</td></tr>"
        for k, v in facts.items()
    )
    note = (
        f"<div><i>{html.escape(latest.ref)} is not materialised yet: reads use "
        f"{html.escape(served.view)}</i></div>"
        if served.view != latest.ref
        else ""
    )
    return _html.section(
        "Freshness (the version online reads use)",
        f"<table style='{_html.TABLE_STYLE}'>{rows}</table>{note}",
    )
