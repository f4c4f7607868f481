"""Change review: the notebooks changed in git, cell by cell, and how the tracked cells' metrics
moved between their old and new source versions.

``notebook_changes(rev_range)`` reads the two sides from git (default: ``HEAD`` against the
working tree, untracked notebooks included; ``A..B``; ``A...B`` from their merge base; a single
``A`` against the working tree) and aligns each notebook's cells with nbdime
(``nbdime.diff_notebooks``), so a cell is classified as its diff says: ``source`` (its code or
text changed, or its type), ``outputs`` (outputs or execution count only), ``metadata`` (only
that), ``added`` or ``removed``. Re-running a notebook rewrites every output: those are shown
as what they are, not as code changes.

A tracked cell's source version is the sha256 of its source, the ``cell_version`` of the runs it
made (``nbm.runs("cell_version = '...'")``), so the runs of the old and the new code are found
in the store whatever notebook or kernel made them. ``review_changes`` puts it in a review
notebook (executed, exported to HTML, recorded like a model review) and
:meth:`ChangesReview.to_markdown` in a pull-request comment, as CML posts its reports.
"""

from __future__ import annotations

import difflib
import html
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbmlops.capture.cell import TRACK_PREFIX, source_hash
from nbmlops.config import STORE_DIRNAME
from nbmlops.errors import NbmlopsError
from nbmlops.registry.backtest import revision_range
from nbmlops.review import render
from nbmlops.review.render import code, markdown
from nbmlops.store import StoreLike, open_store

_OUTPUT_KEYS = {"outputs", "execution_count", "attachments"}
WORKING_TREE = "working tree"


@dataclass(frozen=True)
class CellChange:
    """One changed cell of a notebook: how it changed and its two sources."""

    notebook: str
    """The notebook's path in the repository."""
    index: int
    """Its position (from 0) in the new notebook, or in the old one when removed."""
    cell_id: str | None
    cell_type: str
    change: str
    old_source: str | None
    new_source: str | None

    @property
    def tracked(self) -> bool:
        """A ``%%track`` cell, on either side."""
        return any(
            s is not None and s.lstrip().startswith(TRACK_PREFIX)
            for s in (self.old_source, self.new_source)
        )

    @property
    def code_changed(self) -> bool:
        return self.change in ("source", "added", "removed")

    @property
    def old_version(self) -> str | None:
        """The ``cell_version`` (sha256 of the source) runs of the old code carry."""
        return None if self.old_source is None else source_hash(self.old_source)

    @property
    def new_version(self) -> str | None:
        return None if self.new_source is None else source_hash(self.new_source)

    @property
    def label(self) -> str:
        """``%%track NAME`` for a tracked cell, else ``cell N`` (counted from 1)."""
        first = (self.new_source or self.old_source or "").strip().partition("\n")[0]
        return first[:60] if self.tracked else f"{self.cell_type} cell {self.index + 1}"

    def diff(self) -> list[str]:
        """The unified diff of the two sources (empty when the source did not change)."""
        return list(
            difflib.unified_diff(
                (self.old_source or "").splitlines(),
                (self.new_source or "").splitlines(),
                "old",
                "new",
                lineterm="",
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "index": self.index,
            "cell_id": self.cell_id,
            "cell_type": self.cell_type,
            "change": self.change,
            "tracked": self.tracked,
            "label": self.label,
            "old_version": self.old_version,
            "new_version": self.new_version,
        }

    def _repr_html_(self) -> str:
        colours = {"+": "#e6ffec", "-": "#ffebe9", "@": "#ddf4ff"}
        rows = "".join(
            f"<div style='background:{colours.get(line[:1], 'transparent')}'>"
            f"{html.escape(line) or '&nbsp;'}</div>"
            for line in self.diff()[2:]  # not the ---/+++ header
        )
        head = f"<b>{html.escape(self.notebook)}</b> <code>{html.escape(self.label)}</code>"
        return f"<div>{head} ({self.change})<pre style='line-height:1.35'>{rows}</pre></div>"


def notebook_changes(rev_range: str | None = None, *, repo: str | Path = ".") -> list[CellChange]:
    """The changed cells of every notebook that changed in ``rev_range`` (see the module
    docstring), in notebook path order, then cell order."""
    top = Path(_git(Path(repo), "rev-parse", "--show-toplevel").strip())
    old, new = revisions(top, rev_range)
    sides = [old] if new is None else [old, new]
    paths = set(_git(top, "diff", "--name-only", "-z", *sides, "--", "*.ipynb").split("\0"))
    if new is None:
        untracked = _git(top, "ls-files", "--others", "--exclude-standard", "-z", "--", "*.ipynb")
        paths |= set(untracked.split("\0"))
    changes: list[CellChange] = []
    # A store inside the repository holds review notebooks of its own: not the user's changes.
    for path in sorted(p for p in paths if p and STORE_DIRNAME not in Path(p).parts):
        before = _read(top, old, path)
        after = _read(top, new, path)
        changes += cell_changes(path, before, after)
    return changes


def revisions(top: Path, rev_range: str | None) -> tuple[str, str | None]:
    """(old revision, new revision or None for the working tree), each checked to be a commit
    before git sees it (the rules review's parser: one reading of a range for both)."""
    old, new = revision_range(top, rev_range)
    if old is None:
        raise NbmlopsError(
            f"The git repository {top} has no commit yet: there is nothing to compare the "
            "notebooks with; commit them first."
        )
    return old, new


def cell_changes(path: str, before: Any | None, after: Any | None) -> list[CellChange]:
    """The changed cells between two notebooks (None: the notebook did not exist), aligned by
    nbdime; unchanged cells are left out."""
    import nbdime
    import nbformat

    empty = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    old, new = before if before is not None else empty, after if after is not None else empty
    diff = next((d for d in nbdime.diff_notebooks(old, new) if d["key"] == "cells"), None)
    found: list[CellChange] = []

    def change(kind: str, index: int, old_cell: Any, new_cell: Any) -> None:
        cell = new_cell if new_cell is not None else old_cell
        found.append(
            CellChange(
                path,
                index,
                cell.get("id"),
                cell["cell_type"],
                kind,
                None if old_cell is None else old_cell["source"],
                None if new_cell is None else new_cell["source"],
            )
        )

    old_at = new_at = 0  # walk both notebooks as nbdime's entries (keyed by old index) say
    for entry in [] if diff is None else diff["diff"]:
        new_at += entry["key"] - old_at
        old_at = entry["key"]
        if entry["op"] == "addrange":
            for cell in entry["valuelist"]:
                change("added", new_at, None, cell)
                new_at += 1
        elif entry["op"] == "removerange":
            for i in range(entry["length"]):
                change("removed", old_at + i, old.cells[old_at + i], None)
            old_at += entry["length"]
        elif entry["op"] == "patch":
            keys = {d["key"] for d in entry["diff"]}
            kind = (
                "source"
                if keys & {"source", "cell_type"}
                else "outputs"
                if keys & _OUTPUT_KEYS
                else "metadata"
            )
            change(kind, new_at, old.cells[old_at], new.cells[new_at])
            old_at += 1
            new_at += 1
    return found


def _read(top: Path, revision: str | None, path: str) -> Any | None:
    import nbformat

    if revision is None:
        file = top / path
        text = file.read_text(encoding="utf-8") if file.is_file() else None
    else:
        shown = subprocess.run(
            ["git", "show", f"{revision}:{path}"], cwd=top, capture_output=True, text=True
        )
        text = shown.stdout if shown.returncode == 0 else None
    return None if text is None else nbformat.reads(text, as_version=4)  # type: ignore[no-untyped-call]


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        raise NbmlopsError(
            f"git {' '.join(args)} failed in {folder}: {done.stderr.strip()}. A change review "
            "needs a git repository (repo=) and revisions it has (e.g. HEAD~1..HEAD)."
        )
    return done.stdout


@dataclass(frozen=True)
class ChangesReview:
    """A review of notebook changes: its ``reviews`` row, the executed notebook, its HTML and
    the findings (each changed cell, and the metric moves of tracked cells)."""

    review_id: int
    rev_range: str
    notebook: Path
    html: Path
    summary: dict[str, Any]

    @property
    def cells(self) -> list[dict[str, Any]]:
        return list(self.summary.get("cells", []))

    @property
    def lines(self) -> list[str]:
        return [str(line) for line in self.summary.get("lines", [])]

    def __str__(self) -> str:
        head = f"Review {self.review_id}: notebook changes {self.rev_range}"
        files = [f"  notebook: {self.notebook}", f"  html:     {self.html}"]
        return "\n".join([head, *files, *(f"  {line}" for line in self.lines)])

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self.lines)
        return (
            f"<div><b>Review {self.review_id}</b>: notebook changes "
            f"{html.escape(self.rev_range)} &middot; "
            f"<a href='{html.escape(render.link(self.html))}' target='_blank'>open the HTML</a>"
            f"<ul>{items}</ul></div>"
        )

    def to_markdown(self) -> str:
        """A concise pull-request comment: one table row per changed cell, the metric moves of
        tracked cells whose code changed, where the full review is."""
        lines = [f"### nbmlops: notebook changes ({self.rev_range})", ""]
        if not self.cells:
            return "\n".join([*lines, "No notebook changed."])
        lines += ["| notebook | cell | change | metrics (old → new) |", "|---|---|---|---|"]
        for cell in self.cells:
            what = _CHANGE_TEXT[cell["change"]]
            lines.append(
                f"| `{cell['notebook']}` | `{_escaped(cell['label'])}` | {what} | "
                f"{_escaped(_moves_text(cell))} |"
            )
        only = sum(cell["change"] in ("outputs", "metadata") for cell in self.cells)
        if only:
            lines += ["", f"{only} cell(s) changed in outputs or metadata only: no code changed."]
        return "\n".join([*lines, "", f"Full review: `{self.html}`"])


_CHANGE_TEXT = {
    "source": "**code changed**",
    "added": "**added**",
    "removed": "**removed**",
    "outputs": "outputs only",
    "metadata": "metadata only",
}


def _escaped(text: str) -> str:
    return text.replace("|", "\\|")


def _moves_text(cell: dict[str, Any]) -> str:
    if not cell.get("tracked") or cell["change"] not in ("source", "added", "removed"):
        return ""
    moves = cell.get("metrics") or {}
    if not moves:
        runs = f"{cell.get('old_runs', 0)} old / {cell.get('new_runs', 0)} new runs"
        return f"no metrics to compare ({runs})"
    parts = []
    for key, m in moves.items():
        old, new = m.get("old"), m.get("new")
        if old is None or new is None:
            parts.append(f"{key} {_num(old)} → {_num(new)}")
            continue
        better = {"new": ", better", "old": ", worse"}.get(m.get("better") or "", "")
        parts.append(f"{key} {_num(old)} → {_num(new)} ({new - old:+.4g}{better})")
    return "; ".join(parts)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def review_changes(
    rev_range: str | None = None,
    *,
    repo: str | Path = ".",
    store: StoreLike = None,
    output_dir: str | Path | None = None,
) -> ChangesReview:
    """Generate, execute and record a review of the notebooks changed in ``rev_range`` (default:
    the working tree against ``HEAD``) of the git repository at ``repo``; the runs come from
    ``store``. Writes ``review.ipynb`` and ``review.html`` into ``output_dir`` (default
    ``<store>/reviews/changes-<range>-<time>/``)."""
    st = open_store(store, create=False)
    top = Path(_git(Path(repo), "rev-parse", "--show-toplevel").strip())
    old, new = revisions(top, rev_range)
    label = f"{old}..{new or WORKING_TREE}" if rev_range is None else rev_range
    folder = (
        Path(output_dir)
        if output_dir is not None
        else st.home / "reviews" / render.folder_name("changes", label.replace(" ", "-"))
    )
    notebook = render.new_notebook(template(str(st.home), str(top), rev_range, label))
    executed = render.execute(notebook, folder.resolve(), st)
    review_id = render.record(st, executed, kind="changes", against=label)
    return ChangesReview(review_id, label, executed.notebook, executed.html, executed.summary)


def template(store: str, repo: str, rev_range: str | None, label: str) -> list[dict[str, Any]]:
    """The change review's cells: the git side through :func:`notebook_changes`, the runs
    through the public API."""
    return [
        markdown(
            f"# Notebook changes: `{label}`\n\nGenerated by `nbmlops review changes`. Each "
            "changed cell as nbdime aligns it (code, outputs only, metadata only, added, "
            "removed) and, for `%%track` cells whose code changed, how the metrics of the runs "
            "of the old code compare with those of the new."
        ),
        render.parameters_cell(
            {"store": store, "repo": repo, "rev_range": rev_range},
            {
                "store": "the .nbmlops folder (None: NBMLOPS_HOME, else the nearest .nbmlops/)",
                "repo": "the git repository",
                "rev_range": "None: the working tree against HEAD; or 'A..B', 'A...B', 'A'",
            },
        ),
        code(_SETUP),
        markdown("## Changed cells"),
        code(_OVERVIEW),
        markdown(
            "## Tracked cells whose code changed\n\nThe newest run of each source version; "
            "`better` is judged as `nbm.compare_runs` judges it."
        ),
        code(_MOVES),
        code(_SUMMARY + "\n\n" + render.SUMMARY_CELL, render.SUMMARY_TAG),
    ]


_SETUP = """
import pandas as pd
from IPython.display import Markdown, display

import nbmlops as nbm
from nbmlops.review import notebook_changes

nbm.set_store(store)
changes = notebook_changes(rev_range, repo=repo)
summary = {"range": rev_range, "cells": [c.to_dict() for c in changes]}
"""

_OVERVIEW = """
overview = pd.DataFrame(summary["cells"], columns=["notebook", "label", "change", "tracked"])
display(overview if len(overview) else Markdown("No notebook changed."))
"""

_MOVES = """
def newest_run(version):
    found = nbm.runs(f"cell_version = '{version}'") if version else None
    return (None, 0) if found is None or found.empty else (found["run_id"].iloc[0], len(found))


def number(value):
    return None if pd.isna(value) else float(value)


shown = 0
for change, record in zip(changes, summary["cells"]):
    if not (change.tracked and change.code_changed):
        continue
    (old_run, record["old_runs"]), (new_run, record["new_runs"]) = map(
        newest_run, (change.old_version, change.new_version))
    display(change)
    if old_run and new_run and old_run != new_run:
        metrics = nbm.compare_runs(old_run, new_run).metrics()
        record["metrics"] = {
            key: {"old": number(row[old_run]), "new": number(row[new_run]),
                  "better": {old_run: "old", new_run: "new"}.get(row["best"])}
            for key, row in metrics.iterrows()
        }
        display(metrics.rename(columns={old_run: f"old ({old_run})", new_run: f"new ({new_run})"}))
    else:
        record["metrics"] = {}
        display(Markdown(f"Runs of the old code: {record['old_runs']}, of the new code: "
                         f"{record['new_runs']}; metrics need one of each."))
    shown += 1
if not shown:
    display(Markdown("No tracked cell's code changed."))
"""

_SUMMARY = """
kinds = pd.Series([c["change"] for c in summary["cells"]], dtype=object).value_counts()
summary["lines"] = [
    f"{len({c['notebook'] for c in summary['cells']})} notebook(s), {len(summary['cells'])} "
    "changed cell(s): " + (", ".join(f"{n} {k}" for k, n in kinds.items()) or "none"),
]
for c in summary["cells"]:
    if c.get("metrics"):
        moves = ", ".join(f"{k} {m['old']:.4g} -> {m['new']:.4g}" for k, m in c["metrics"].items()
                          if m["old"] is not None and m["new"] is not None)
        summary["lines"].append(f"{c['notebook']} {c['label']}: {moves}")
"""
