"""Build a review notebook from cells, execute it headless, export it to HTML, record it.

The notebook's cell ids are derived from the template (``review-<n>``), not random, so two
reviews generated from the same template diff cell by cell in git. Code inputs are left out of
the HTML (the ``.ipynb`` beside it has them): the HTML is the report a reader opens without
running anything, the notebook what a reviewer edits.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbmlops.capture.environment import current_user
from nbmlops.capture.liveness import hostname
from nbmlops.errors import NbmlopsError
from nbmlops.headless import PARAMETERS_TAG, execute_notebook
from nbmlops.store import Store
from nbmlops.store import reviews as review_sql

SUMMARY_TAG = "review-summary"
SUMMARY_MIME = "application/vnd.nbmlops.review-summary+json"
"""The output type the summary cell displays its findings as (a JSON object)."""

SUMMARY_CELL = f"""from IPython.display import display

brief = "**In brief**\\n\\n" + "\\n".join(f"- {{line}}" for line in summary["lines"])
display({{"{SUMMARY_MIME}": summary, "text/markdown": brief}}, raw=True)"""
"""The last cell of every review template: shows the findings and hands them to the generator."""


def markdown(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": text.strip()}


def code(source: str, *tags: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"tags": list(tags)} if tags else {}
    return {
        "cell_type": "code",
        "metadata": metadata,
        "source": source.strip(),
        "execution_count": None,
        "outputs": [],
    }


def parameters_cell(parameters: dict[str, Any], comments: dict[str, str]) -> dict[str, Any]:
    """The first code cell: one ``name = value`` line per parameter, papermill's tag on it."""
    lines = [f"{name} = {value!r}  # {comments[name]}" for name, value in parameters.items()]
    return code("\n".join(lines), PARAMETERS_TAG)


def new_notebook(cells: list[dict[str, Any]]) -> Any:
    """An nbformat 4.5 notebook of ``cells`` with ids ``review-1``, ``review-2``, ..."""
    import nbformat

    notebook = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.cells = [
        nbformat.from_dict({**cell, "id": f"review-{i}"})  # type: ignore[no-untyped-call]
        for i, cell in enumerate(cells, 1)
    ]
    return notebook


@dataclass(frozen=True)
class Executed:
    """A review notebook written, executed and exported: its two files and its findings."""

    notebook: Path
    html: Path
    summary: dict[str, Any]


def folder_name(*parts: str) -> str:
    """A folder name from ``parts`` and the time now (UTC, to the second): no path separators."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", "-".join([*parts, stamp]))


def execute(
    notebook: Any, folder: Path, store: Store, *, timeout: int = 600, stem: str = "review"
) -> Executed:
    """Write ``notebook`` to ``folder/<stem>.ipynb``, execute it there in a fresh kernel with
    ``NBMLOPS_HOME`` set to ``store``, save it with its outputs, export ``<stem>.html``.

    A cell that raises stops the review: NbmlopsError naming the saved notebook (which shows
    where it stopped), since a review with a missing section must not be recorded as complete.
    """
    import nbformat
    from nbclient.exceptions import CellExecutionError

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.ipynb"
    nbformat.write(notebook, path)  # type: ignore[no-untyped-call]
    try:
        executed = execute_notebook(path, path, store=store.home, timeout=timeout)
    except CellExecutionError as exc:
        raise NbmlopsError(
            f"The review notebook {path} stopped at a failing cell: {str(exc).strip()[-600:]}\n"
            "Open the notebook to see where; the review was not recorded."
        ) from exc
    html = folder / f"{stem}.html"
    html.write_text(to_html(executed), encoding="utf-8")
    return Executed(path, html, read_summary(executed, path))


def to_html(notebook: Any) -> str:
    """Standalone HTML of the executed notebook: outputs only (no code, no prompts), images
    embedded, JupyterLab's look; the findings (computed last) shown first, under the title."""
    import copy

    from nbconvert import HTMLExporter

    report = copy.deepcopy(notebook)
    brief = [c for c in report.cells if SUMMARY_TAG in c.metadata.get("tags", [])]
    rest = [c for c in report.cells if SUMMARY_TAG not in c.metadata.get("tags", [])]
    report.cells = rest[:1] + brief + rest[1:]

    exporter = HTMLExporter(  # type: ignore[no-untyped-call]
        template_name="lab",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    body, _ = exporter.from_notebook_node(report)
    return str(body)


def read_summary(notebook: Any, path: Path) -> dict[str, Any]:
    """The findings the cell tagged ``review-summary`` displayed (its last such output)."""
    for cell in reversed(notebook.cells):
        if SUMMARY_TAG not in cell.metadata.get("tags", []):
            continue
        for output in reversed(cell.get("outputs", [])):
            data = output.get("data", {})
            if SUMMARY_MIME in data:
                found = data[SUMMARY_MIME]
                return dict(json.loads(found) if isinstance(found, str) else found)
    raise NbmlopsError(
        f"The review notebook {path} displayed no findings: its cell tagged {SUMMARY_TAG!r} "
        f"must display a {SUMMARY_MIME} output (a reviewer may have removed it)."
    )


def record(store: Store, executed: Executed, **row: Any) -> int:
    """Keep both files in ``objects/`` and add the ``reviews`` row; returns its id."""
    notebook_sha, _ = store.objects.put_file(executed.notebook)
    html_sha, _ = store.objects.put_file(executed.html)
    return review_sql.add_review(
        store,
        {
            **row,
            "notebook": notebook_sha,
            "html": html_sha,
            "path": str(executed.notebook.parent),
            "summary": executed.summary,
            "actor": current_user(),
            "host": hostname(),
            "created_at": time.time(),
        },
    )


def link(path: Path) -> str:
    """A link to ``path`` that works from a notebook: relative to the working directory (where
    Jupyter serves files from) when it is below it, else a ``file://`` URI."""
    path, here = path.resolve(), Path.cwd().resolve()
    return path.relative_to(here).as_posix() if path.is_relative_to(here) else path.as_uri()
