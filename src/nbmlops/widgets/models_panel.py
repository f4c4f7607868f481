"""The registry panel: models, versions, aliases, metrics and each version's latest evaluation
(its badge, and the data it was evaluated on); where the model is served, with each
endpoint's traffic from the prediction log; each version's latest review (when, against what,
its headline, links to its notebook and HTML) and its approvals; register from a run; promote
with every rule's evaluation shown before confirming; deprecate; the event timeline (servers'
swaps included)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from nbmlops import api
from nbmlops.errors import NbmlopsError, StoreNotFoundError
from nbmlops.evaluation.evaluate import evaluations_of
from nbmlops.evaluation.result import Evaluation
from nbmlops.registry.approvals import Approval
from nbmlops.store import open_store
from nbmlops.store import reviews as review_store
from nbmlops.store.db import Row
from nbmlops.widgets import _html
from nbmlops.widgets._badges import badge_text, colour_of, data_of
from nbmlops.widgets._panel import Panel


class ModelsPanel(Panel):
    def __init__(self, name: str | None = None, *, store: Any = None) -> None:
        self.store = store
        self.pending: Any = None  # the dry-run decision awaiting confirmation

        self.model = widgets.Dropdown(description="model")
        self.versions_html = widgets.HTML()
        self.reviews_html = widgets.HTML()
        self.endpoints_html = widgets.HTML()
        self.version = widgets.Dropdown(description="version")
        self.run_box = widgets.Text(placeholder="run id", layout=widgets.Layout(width="160px"))
        self.name_box = widgets.Text(placeholder="model name", layout=widgets.Layout(width="160px"))
        self.register_button = widgets.Button(description="register run", icon="plus")
        self.evaluate_button = widgets.Button(description="evaluate rules", icon="check")
        self.confirm_button = widgets.Button(
            description="confirm promotion", button_style="success", disabled=True
        )
        self.reason_box = widgets.Text(placeholder="reason", layout=widgets.Layout(width="240px"))
        self.deprecate_button = widgets.Button(description="deprecate", button_style="warning")
        self.message = widgets.HTML()
        self.decision_html = widgets.HTML()
        self.history_html = widgets.HTML()

        self.model.observe(lambda _: self._draw_model(), "value")
        self.version.observe(lambda _: self._reset_decision(), "value")
        self.register_button.on_click(lambda _: self.register())
        self.evaluate_button.on_click(lambda _: self.evaluate())
        self.confirm_button.on_click(lambda _: self.confirm())
        self.deprecate_button.on_click(lambda _: self.deprecate())

        self.widget = widgets.VBox(
            [
                widgets.HBox([self.model]),
                self.versions_html,
                widgets.HTML("<b>Reviews and approvals</b>"),
                self.reviews_html,
                widgets.HTML("<b>Endpoints</b>"),
                self.endpoints_html,
                widgets.HBox([self.run_box, self.name_box, self.register_button]),
                widgets.HBox([self.version, self.evaluate_button, self.confirm_button]),
                self.decision_html,
                widgets.HBox([self.reason_box, self.deprecate_button]),
                self.message,
                widgets.HTML("<b>History</b>"),
                self.history_html,
            ]
        )
        self.refresh(select=name)

    def refresh(self, select: str | None = None) -> None:
        try:
            names = list(api.models(store=self.store)["name"])
        except StoreNotFoundError:  # nothing tracked here yet: an empty registry, not an error
            names = []
        current = select or self.model.value
        self.model.options = names
        if current in names:
            self.model.value = current
        elif names:
            self.model.value = names[0]
        self._draw_model()

    def _draw_model(self) -> None:
        name = self.model.value
        if not name:
            self.versions_html.value = "<i>no registered models yet: register a run below</i>"
            self.history_html.value = ""
            self.reviews_html.value = ""
            self.endpoints_html.value = ""
            self.version.options = []
            return
        versions = api.model_versions(name, store=self.store)
        store = open_store(self.store, create=False)
        evaluated = [_latest(evaluations_of(store, f"{name}/{v}")) for v in versions["version"]]
        columns = ["version", "aliases", "status", "model_class", "format", "run_id"]
        shown = versions[columns].assign(
            model_class=versions["model_class"].map(lambda c: str(c).rsplit(".", 1)[-1])
        )
        if any(evaluated):
            shown = shown.assign(
                evaluation=["" if e is None else badge_text(e) for e in evaluated],
                evaluated_on=["" if e is None else data_of(e) for e in evaluated],
            )
        metrics = versions[[c for c in versions.columns if c.startswith("metrics.")]]
        shown = shown.join(metrics)

        def style(row: Any, column: str) -> str:
            evaluation = evaluated[row] if column == "evaluation" else None
            return "" if evaluation is None else f"color:{colour_of(evaluation)};font-weight:bold"

        self.versions_html.value = _html.table(shown, index=False, cell_style=style)
        self.version.options = [(f"{name}/{v}", int(v)) for v in versions["version"]]
        if len(versions):
            self.version.value = int(versions["version"].max())
        self.reviews_html.value = _reviews_html(
            name,
            review_store.latest_model_reviews(store, name),
            api.model_approvals(name, store=store),
        )
        self.endpoints_html.value = _endpoints_table(api.endpoints(name, store=self.store))
        history = api.model_history(name, store=self.store)
        self.history_html.value = _html.table(
            history[["at", "kind", "version", "alias", "summary"]].assign(
                at=history["at"].map(_html.when)
            ),
            index=False,
        )
        self._reset_decision()

    def _reset_decision(self) -> None:
        self.pending = None
        self.confirm_button.disabled = True
        self.decision_html.value = ""

    def _act(self, action: Any) -> Any:
        try:
            result = action()
        except NbmlopsError as exc:
            self.message.value = _html.message(str(exc), ok=False)
            return None
        return result

    def register(self) -> None:
        run_id, name = self.run_box.value.strip(), self.name_box.value.strip() or self.model.value
        if not run_id or not name:
            self.message.value = _html.message("Give a run id and a model name.", ok=False)
            return
        version = self._act(lambda: api.register_model(run_id, name, store=self.store))
        if version is not None:
            self.message.value = _html.message(f"registered {version.name}/{version.version}")
            self.refresh(select=version.name)

    def evaluate(self) -> None:
        """Show each rule's result for the selected version; nothing is recorded yet."""
        name, version = self.model.value, self.version.value
        decision = self._act(lambda: api.promote(name, version, dry_run=True, store=self.store))
        if decision is None:
            return
        self.pending = decision
        self.decision_html.value = decision._repr_html_()
        self.confirm_button.disabled = not decision.passed

    def confirm(self) -> None:
        if self.pending is None:
            return
        name, version = self.model.value, self.version.value
        decision = self._act(lambda: api.promote(name, version, store=self.store))
        if decision is not None:
            ok = bool(decision.passed)
            self.message.value = _html.message(str(decision).splitlines()[0], ok=ok)
            self._draw_model()

    def deprecate(self) -> None:
        reason = self.reason_box.value.strip()
        if not reason:
            self.message.value = _html.message("Say why the version is deprecated.", ok=False)
            return
        name, version = self.model.value, self.version.value
        deprecate = api.deprecate_model_version
        if self._act(lambda: deprecate(name, version, reason, store=self.store)):
            self.message.value = _html.message(f"{name}/{version} deprecated: {reason}")
            self._draw_model()

    def to_html(self) -> str:
        return "".join(
            [
                self.versions_html.value,
                "<b>Reviews and approvals</b>",
                self.reviews_html.value,
                "<b>Endpoints</b>",
                self.endpoints_html.value,
                "<b>History</b>",
                self.history_html.value,
            ]
        )

    def __repr__(self) -> str:
        return f"<ModelsPanel: {len(self.model.options)} models>"


def _latest(evaluations: list[Evaluation]) -> Evaluation | None:
    return evaluations[-1] if evaluations else None


_ENDPOINT_COLUMNS = [
    "url",
    "state",
    "version",
    "requests",
    "errors_4xx",
    "errors_5xx",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
]


def _endpoints_table(endpoints: Any) -> str:
    """Each endpoint of the model with its state, version and traffic (latency in ms)."""
    if endpoints.empty:
        return "<i>not served: start a server with nbm.serve('name@alias')</i>"
    shown = endpoints[_ENDPOINT_COLUMNS].rename(
        columns=lambda c: c.replace("latency_", "").replace("_ms", " ms")
    )
    return _html.table(shown, index=False)


def _reviews_html(name: str, reviews: list[Row], approvals: list[Approval]) -> str:
    """Each version with a review or an approval, newest version first: its latest review (when,
    against what, its headline, links to the HTML and the notebook) and who approved it."""
    by_version: dict[int, list[Approval]] = {}
    for approval in approvals:
        by_version.setdefault(approval.version, []).append(approval)
    latest = {int(r["version"]): r for r in reviews}
    if not latest and not by_version:
        return (
            "<i>no reviews yet: nbmlops review model NAME/VERSION (or nbm.review_model) "
            "writes one</i>"
        )
    parts = []
    for version in sorted(latest.keys() | by_version.keys(), reverse=True):
        review = latest.get(version)
        head = f"<b>{html.escape(name)}/{version}</b>: " + (
            "not reviewed yet" if review is None else _review_line(review)
        )
        items = "".join(_approval_item(a) for a in by_version.get(version, []))
        count = len(by_version.get(version, []))
        tail = f" · {count} approval{'' if count == 1 else 's'}" if count else " · no approvals"
        parts.append(f"<div class='nbmlops-review'>{head}{tail}<ul>{items}</ul></div>")
    return "".join(parts)


def _review_line(review: Row) -> str:
    lines = review["summary"].get("lines") or []
    headline = f" — <i>{html.escape(str(lines[0]))}</i>" if lines else ""
    folder = Path(review["path"]) if review.get("path") else None
    links = (
        ""
        if folder is None
        else f" · {_link(folder / 'review.html', 'open the HTML')} · "
        f"{_link(folder / 'review.ipynb', 'notebook')}"
    )
    against = html.escape(review["against"] or "nothing (no champion)")
    return (
        f"reviewed {_html.when(review['created_at'])} against {against}"
        f" (review {review['review_id']}){headline}{links}"
    )


def _approval_item(approval: Approval) -> str:
    own = " (self-approval)" if approval.self_approval else ""
    comment = f": “{html.escape(approval.comment)}”" if approval.comment else ""
    return (
        f"<li>approved by {html.escape(approval.by)}{own}, {_html.when(approval.at)}{comment}</li>"
    )


def _link(path: Path, text: str) -> str:
    """A link that opens ``path`` from the notebook: relative to the working folder (where the
    notebook is, so JupyterLab opens it) when it is below it, else the file's URI, with the
    path itself shown (a browser may refuse file:// links from a page served over http)."""
    here = Path.cwd().resolve()
    target = path.resolve()
    if target.is_relative_to(here):
        href = target.relative_to(here).as_posix()
        return f"<a href='{html.escape(href)}' target='_blank'>{text}</a>"
    return (
        f"<a href='{html.escape(target.as_uri())}' target='_blank'>{text}</a> "
        f"(<code>{html.escape(str(target))}</code>)"
    )
