"""Model review: a registered version against the champion (or any version), as a notebook.

``review_model("diabetes/2")`` writes and executes a notebook that shows, through the public
API only: the params that differ, the metrics with their deltas, the promotion rules evaluated
for the candidate as a dry run (``nbm.promote(..., dry_run=True)``: nothing is recorded, no alias
moves) and the decisions already recorded, the training cells' source diff, the datasets (same
fingerprints or not, saved versions), drift of the candidate's training data against the
champion's (from their stored profiles: the data itself is not needed), the environment diff,
the lineage, the approvals so far and whether the run was reproduced (``nbmlops rerun``).

``against="champion"`` (an alias) means the version the alias points at; when that is the
candidate itself (reviewing the promotion that made it champion), the version the alias pointed
at just before. The resolved version is written into the notebook's parameters, so the review
compares the same two versions when it is run again after the alias moved.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbmlops import api
from nbmlops.errors import NotFoundError, RegistryError
from nbmlops.registry.model_version import ModelVersion
from nbmlops.review import render
from nbmlops.review.render import code, markdown
from nbmlops.store import Store, StoreLike, open_store


@dataclass(frozen=True)
class Review:
    """A model review: its ``reviews`` row id, the executed notebook, its HTML, the findings."""

    review_id: int
    name: str
    version: int
    against: str | None
    notebook: Path
    html: Path
    summary: dict[str, Any]

    @property
    def lines(self) -> list[str]:
        """The findings in brief, one line each (what the CLI prints)."""
        return [str(line) for line in self.summary.get("lines", [])]

    def __str__(self) -> str:
        against = self.against or "nothing (no champion)"
        head = f"Review {self.review_id}: {self.name}/{self.version} against {against}"
        files = [f"  notebook: {self.notebook}", f"  html:     {self.html}"]
        return "\n".join([head, *files, *(f"  {line}" for line in self.lines)])

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self.lines)
        return (
            f"<div><b>Review {self.review_id}</b>: {html.escape(self.name)}/{self.version} "
            f"against {html.escape(self.against or 'nothing (no champion)')} &middot; "
            f"<a href='{html.escape(render.link(self.html))}' target='_blank'>open the HTML</a>"
            f" &middot; <a href='{html.escape(render.link(self.notebook))}' target='_blank'>"
            f"notebook</a><ul>{items}</ul></div>"
        )


def review_model(
    name_version: str,
    against: str | int | None = "champion",
    *,
    output_dir: str | Path | None = None,
    store: StoreLike = None,
) -> Review:
    """Generate, execute and record the review of ``name_version`` (``"name/3"``,
    ``"name@alias"``) against ``against``: an alias of the same model (``"champion"``), a
    version number, another reference (``"name/1"``), or None for no comparison.

    Writes ``review.ipynb`` (outputs kept, no widget state) and ``review.html`` into
    ``output_dir`` (default ``<store>/reviews/<name>-v<version>-vs-<against>-<time>/``) and a
    ``reviews`` row. The rules are evaluated as a dry run: nothing is promoted.
    """
    st = open_store(store, create=False)
    candidate = api.get_model_version(name_version, store=st)
    baseline = _baseline(st, candidate, against)
    vs = "none" if baseline is None else f"v{baseline.version}"
    named = render.folder_name(candidate.name, f"v{candidate.version}", "vs", vs)
    folder = Path(output_dir) if output_dir is not None else st.home / "reviews" / named
    notebook = render.new_notebook(template(st, candidate, baseline, against))
    executed = render.execute(notebook, folder.resolve(), st)
    review_id = render.record(
        st,
        executed,
        kind="model",
        name=candidate.name,
        version=candidate.version,
        against=None if baseline is None else baseline.ref,
    )
    return Review(
        review_id,
        candidate.name,
        candidate.version,
        None if baseline is None else baseline.ref,
        executed.notebook,
        executed.html,
        executed.summary,
    )


def _baseline(
    store: Store, candidate: ModelVersion, against: str | int | None
) -> ModelVersion | None:
    """The version ``against`` names for ``candidate`` (see the module docstring)."""
    if against is None:
        return None
    text = str(against)
    if text.isdigit():
        return api.get_model_version(candidate.name, int(text), store=store)
    if "/" in text or "@" in text:
        return api.get_model_version(text, store=store)
    try:
        current = api.get_model_version(f"{candidate.name}@{text}", store=store)
    except (NotFoundError, RegistryError):
        history = api.model_history(candidate.name, store=store)
        if text == "champion" and not (history["alias"] == text).any():
            return None  # never had a champion: a first promotion, nothing to compare with
        known = sorted({str(a) for a in history["alias"].dropna()})
        raise RegistryError(
            f"{candidate.name} has no alias {text!r} to review against (its aliases so far: "
            f"{', '.join(known) or 'none'}); give --against ALIAS, VERSION or NAME/VERSION."
        ) from None
    if current.version != candidate.version:
        return current
    history = api.model_history(candidate.name, store=store)
    moved = history[
        (history["kind"] == "alias_set")
        & (history["alias"] == text)
        & (history["version"] == candidate.version)
    ]
    if moved.empty:
        return None
    just_before = moved["at"].iloc[-1].timestamp() - 1e-3
    return api.who_served(candidate.name, text, just_before, store=store)


def template(
    store: Store,
    candidate: ModelVersion,
    baseline: ModelVersion | None,
    against: str | int | None,
) -> list[dict[str, Any]]:
    """The review's cells; every code cell uses the public API only."""
    against_text = "nothing" if baseline is None else f"`{baseline.ref}`"
    if baseline is not None and isinstance(against, str) and against.isidentifier():
        against_text += f" (`@{against}`)"
    return [
        markdown(
            f"# Model review: `{candidate.ref}` against {against_text}\n\n"
            "Generated by `nbmlops review model`. Every cell calls the public API "
            "(`import nbmlops as nbm`): edit the parameters below and run all cells to review "
            "other versions. The rules are evaluated as a dry run: nothing is promoted."
        ),
        render.parameters_cell(
            {
                "store": str(store.home),
                "candidate": candidate.ref,
                "against": None if baseline is None else baseline.ref,
            },
            {
                "store": "the .nbmlops folder (None: NBMLOPS_HOME, else the nearest .nbmlops/)",
                "candidate": "the version under review",
                "against": "the version it is compared with (None: nothing)",
            },
        ),
        code(_SETUP),
        markdown("## Params that differ"),
        code(_PARAMS),
        markdown("## Metrics\n\n`delta` is candidate minus the version it is compared with."),
        code(_METRICS),
        markdown(
            "## Promotion rules\n\nThe rules of `nbmlops.toml` evaluated for the candidate now "
            "(a dry run), then the promotion decisions recorded for it."
        ),
        code(_RULES),
        markdown("## Training cell: source diff"),
        code(_SOURCE),
        markdown(
            "## Data\n\nThe datasets each training run read and wrote (fingerprint prefixes), "
            "and the saved dataset versions they used."
        ),
        code(_DATA),
        markdown(
            "## Drift of the training data\n\nThe candidate's training data against the "
            "compared version's, from their stored profiles."
        ),
        code(_DRIFT),
        markdown("## Environment that differs"),
        code(_ENVIRONMENT),
        markdown("## Lineage of the candidate"),
        code(_LINEAGE),
        markdown("## Approvals and reproduction"),
        code(_APPROVALS),
        code(_RERUN),
        code(_SUMMARY + "\n\n" + render.SUMMARY_CELL, render.SUMMARY_TAG),
    ]


_SETUP = """
import pandas as pd
from IPython.display import Markdown, display

import nbmlops as nbm

nbm.set_store(store)
cand = nbm.get_model_version(candidate)
base = None if against is None else nbm.get_model_version(against)
runs = [None if mv is None else mv.run_id for mv in (base, cand)]
both_runs = None not in runs and runs[0] != runs[1]
comparison = nbm.compare_runs(base.run_id, cand.run_id) if both_runs else None
names = {} if base is None else {base.run_id: base.ref, cand.run_id: cand.ref}
summary = {"candidate": cand.ref, "against": None if base is None else base.ref}


def described(mv):
    aliases = ", ".join(f"@{a}" for a in mv.aliases) or "no alias"
    return (f"**{mv.ref}**: {mv.model_class}, run `{mv.run_id}`, registered "
            f"{mv.created:%Y-%m-%d %H:%M} UTC by {mv.created_by}, {aliases}")


display(Markdown(f"Candidate {described(cand)}  \\nAgainst "
                 + (described(base) if base else "nothing: there is no version to compare with")))
"""

_PARAMS = """
params = None if comparison is None else comparison.params().rename(columns=names)
summary["params_changed"] = [] if params is None else list(params.index)
if params is None:
    display(Markdown("No two training runs to compare."))
else:
    display(params if len(params) else Markdown("Same params."))
"""

_METRICS = """
def number(value):
    return None if pd.isna(value) else float(value)


order = list(cand.metrics) + [k for k in (base.metrics if base else {}) if k not in cand.metrics]
if comparison is not None:
    metrics = comparison.metrics().rename(columns=names)
    metrics["best"] = metrics["best"].map(lambda run: names.get(run, run))
    metrics.insert(2, "delta", metrics[cand.ref] - metrics[base.ref])
else:
    metrics = pd.DataFrame({mv.ref: mv.metrics for mv in (base, cand) if mv is not None})
metrics = metrics.loc[[k for k in order if k in metrics.index]]
summary["metrics"] = {
    key: {
        "against": None if base is None else number(row.get(base.ref)),
        "candidate": number(row.get(cand.ref)),
        "delta": number(row.get("delta", float("nan"))),
        "better": {cand.ref: "candidate", summary["against"]: "against"}.get(row.get("best")),
    }
    for key, row in metrics.iterrows()
}
metrics
"""

_RULES = """
try:
    decision = nbm.promote(cand.name, cand.version, dry_run=True)
except (nbm.RulesFileError, nbm.RegistryError) as exc:
    decision = None
    display(Markdown(f"No rules evaluated: {exc}"))
else:
    display(decision)
summary["rules"] = None if decision is None else {
    "outcome": decision.outcome, "alias": decision.alias, "reason": decision.reason,
    "headline": str(decision).splitlines()[0].removesuffix(" (dry run)"),
}
history = nbm.model_history(cand.name)
decided = history[(history["kind"] == "promotion") & (history["version"] == cand.version)]
summary["decisions"] = [row["payload"].get("outcome") for _, row in decided.iterrows()]
display(decided[["at", "actor", "summary"]] if len(decided)
        else Markdown(f"No promotion of {cand.ref} recorded yet."))
"""

_SOURCE = """
diff = None
if both_runs:
    try:
        diff = nbm.cell_diff(base.run_id, cand.run_id)
    except nbm.NotFoundError as exc:
        display(Markdown(f"No source to diff: {exc}"))
summary["source_changed"] = None if diff is None else not diff.same
display(diff if diff is not None else Markdown("No two training cells to compare."))
"""

_DATA = """
data = None if comparison is None else comparison.datasets().rename(columns=names)
summary["same_data"] = None if data is None or data.empty else bool(data["same"].all())
if data is not None:
    display(data)
saved = {mv.ref: mv.training_data for mv in (base, cand) if mv is not None}
if any(saved.values()):
    display(pd.DataFrame(saved))
"""

_DRIFT = """
from nbmlops.drift import load_profile

reference = None if base is None else base.reference_profile_id
current = cand.reference_profile_id
drift = None
if base is None:
    note = "Nothing to compare with."
elif reference is None or current is None:
    missing = [mv.ref for mv, p in ((base, reference), (cand, current)) if p is None]
    note = (f"No drift profile of the training data of {', '.join(missing)}; keep one with "
            "nbm.save_reference(X_train) in the training notebook.")
elif reference == current:
    note = "Same training data profile: nothing drifted."
else:
    drift = nbm.check_drift(reference, load_profile(nbm.get_store(), current), save=False)
    note = None
if drift is not None:
    summary["drift"] = {
        "dataset_drift": bool(drift.dataset_drift),
        "drift_share": float(drift.drift_share),
        "drifted": [str(c.column) for c in drift.columns if c.drifted],
    }
else:  # the same profile is a check with nothing drifted; a missing one is no check
    same = base is not None and reference is not None and reference == current
    summary["drift"] = {"dataset_drift": False, "drift_share": 0.0, "drifted": []} if same else None
display(drift if drift is not None else Markdown(note))
"""

_ENVIRONMENT = """
env = None if comparison is None else comparison.environment().rename(columns=names)
summary["environment_changed"] = [] if env is None else list(env.index)
if env is None:
    display(Markdown("No two training runs to compare."))
else:
    display(env if len(env) else Markdown("Same Python, platform, git state and packages."))
"""

_LINEAGE = """
if cand.run_id is None:
    display(Markdown(f"{cand.ref} was registered without a run."))
else:
    display(nbm.lineage(cand.run_id))
"""

_APPROVALS = """
approvals = nbm.model_approvals(cand.name, cand.version)
# each person once (as the rules count them), a creator's own approval marked
people = {}
for a in approvals:
    people.setdefault(a.by.casefold(), f"{a.by} (self)" if a.self_approval else a.by)
summary["approvals"] = list(people.values())
columns = ["by", "actor", "comment", "review_id", "self_approval", "at"]
display(pd.DataFrame([a.to_dict() for a in approvals])[columns] if approvals else Markdown(
    f"No approval yet: `nbmlops review approve {cand.ref} --by NAME`."))
"""

_RERUN = """
rerun = None if cand.run_id is None else nbm.sql(
    "SELECT outcome, tolerance, differences, reason, datetime(finished_at, 'unixepoch') AS at "
    f"FROM reruns WHERE run_id = '{cand.run_id}' ORDER BY finished_at DESC, rerun_id DESC LIMIT 1"
)
outcome = None if rerun is None or rerun.empty else rerun["outcome"].iloc[0]
summary["rerun"] = outcome
summary["reproduced"] = None if outcome is None else outcome == "reproduced"
if cand.run_id is None:
    display(Markdown("Registered without a run: nothing to re-run."))
elif outcome is None:
    display(Markdown(f"Not re-run yet: `nbmlops rerun {cand.run_id}`."))
else:
    display(rerun)
"""

_SUMMARY = """
def headline():
    if not summary["metrics"]:
        return "no metrics"
    key, m = next(iter(summary["metrics"].items()))
    if m["against"] is None or m["candidate"] is None:
        return f"{key} {m['candidate']}"
    better = f", {m['better']} better" if m["better"] else ""
    return f"{key} {m['against']:.4g} -> {m['candidate']:.4g} (delta {m['delta']:+.4g}{better})"


def listed(names):
    more = f" (+{len(names) - 5})" if len(names) > 5 else ""
    return ", ".join(names[:5]) + more if names else "none"


def state(value, yes, no):
    return "unknown" if value is None else yes if value else no


rules = summary["rules"]
summary["lines"] = [
    f"{cand.ref} vs {summary['against'] or 'nothing'}: {headline()}",
    "rules (dry run): "
    + (f"{rules['headline']}: {rules['reason']}" if rules else "none evaluated"),
    f"params changed: {listed(summary['params_changed'])}; source "
    + state(summary["source_changed"], "changed", "same") + "; data "
    + state(summary["same_data"], "same", "different") + "; drift "
    + ("not checked" if summary["drift"] is None
       else listed(summary["drift"]["drifted"]) if summary["drift"]["drifted"] else "in no column"),
    f"environment changed: {listed(summary['environment_changed'])}",
    f"approvals: {listed(summary['approvals'])}; reproduced: "
    + ("yes" if summary["reproduced"]
       else summary["rerun"] or f"not re-run yet (nbmlops rerun {cand.run_id})"),
]
"""
