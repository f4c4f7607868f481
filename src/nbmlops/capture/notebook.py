"""The notebook a run belongs to, as it was when the run started.

A run stores the cell it ran, but reproducing it needs the cells around it too. The best
witness is the front end: the nbmlops JupyterLab extension sends the kernel the notebook it
holds in memory (unsaved edits included) just before it asks the kernel to run a ``%%track``
cell, so :func:`from_front_end` gives exactly what ran. Without the extension (nbclient,
papermill, a kernel started by another front end), :func:`from_saved_file` takes the notebook as
last saved; the run records which of the two it is, and whether the running cell's source was
found in it.

Snapshots keep the sources, cell ids and metadata, not outputs or execution counts: they say
what was asked to run, are small, and are stored once however many runs share them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

FRONT_END_TARGET = "nbmlops"
"""The comm target over which the JupyterLab extension and the kernel talk."""

MAX_SNAPSHOT_BYTES = 20 * 1024 * 1024
"""Larger notebooks (sources alone) are not stored: a front end sending more is misbehaving."""


MAX_NOTEBOOKS_SEARCHED = 32
"""A folder with more notebooks than this is not searched by :func:`find_by_source`; as many
saved notebooks are kept parsed, so a search repeated for each cell reads no file twice."""


class SnapshotError(ValueError):
    """A front-end message that is not a notebook snapshot nbmlops can store."""


@dataclass(frozen=True)
class NotebookSnapshot:
    """A notebook's cells without outputs, as canonical JSON bytes (stable key order, so the
    same notebook is the same object in the store)."""

    path: str | None
    content: bytes
    origin: str  # "front end" or "saved file"
    unsaved_edits: bool | None  # None where the origin cannot tell

    @cached_property
    def _cells(self) -> list[dict[str, Any]]:
        cells: list[dict[str, Any]] = json.loads(self.content).get("cells", [])
        return cells

    def sources(self) -> dict[str, str]:
        """Cell id → source of the snapshot's cells."""
        return {str(c.get("id")): _text(c.get("source", "")) for c in self._cells if c.get("id")}

    @cached_property
    def code_cells(self) -> tuple[tuple[str, str], ...]:
        """(cell id, source) of the code cells that have an id, in order."""
        return tuple(
            (str(c["id"]), _text(c.get("source", "")))
            for c in self._cells
            if c.get("cell_type") == "code" and c.get("id")
        )

    def meta(self, cell_id: str, source: str) -> dict[str, Any]:
        """What the run records about this snapshot: where it came from, and whether the cell
        that ran is in it with the source that ran."""
        stored = self.sources().get(cell_id)
        return {
            "origin": self.origin,
            "notebook": self.path,
            "unsaved_edits": self.unsaved_edits,
            "cell_found": stored is not None,
            "cell_matches": stored is not None and stored.strip() == source.strip(),
        }


def _text(source: Any) -> str:
    return source if isinstance(source, str) else "".join(source)


def _strip(notebook: Any) -> bytes:
    """The notebook without outputs and execution counts, as canonical JSON."""
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise SnapshotError("a notebook snapshot must be an nbformat object with a 'cells' list")
    cells = []
    for cell in notebook["cells"]:
        if not isinstance(cell, dict) or "cell_type" not in cell:
            raise SnapshotError("every cell of a notebook snapshot needs a 'cell_type'")
        kept = {k: v for k, v in cell.items() if k not in ("outputs", "execution_count")}
        kept["source"] = _text(kept.get("source", ""))
        if cell["cell_type"] == "code":
            kept["outputs"], kept["execution_count"] = [], None
        cells.append(kept)
    stripped = {
        "cells": cells,
        "metadata": notebook.get("metadata", {}),
        "nbformat": notebook.get("nbformat", 4),
        "nbformat_minor": notebook.get("nbformat_minor", 5),
    }
    return json.dumps(stripped, sort_keys=True, ensure_ascii=False, indent=1).encode()


def from_front_end(message: Any) -> NotebookSnapshot:
    """The snapshot in a front end's ``{"kind": "snapshot", "path", "notebook", "dirty"}``
    message; SnapshotError naming what is wrong otherwise."""
    if not isinstance(message, dict):
        raise SnapshotError("a front-end message must be a JSON object")
    path = message.get("path")
    if path is not None and not isinstance(path, str):
        raise SnapshotError("'path' must be a string")
    content = _strip(message.get("notebook"))
    if len(content) > MAX_SNAPSHOT_BYTES:
        raise SnapshotError(
            f"the notebook's sources are {len(content)} bytes, over the "
            f"{MAX_SNAPSHOT_BYTES}-byte limit for a snapshot"
        )
    dirty = message.get("dirty")
    return NotebookSnapshot(path, content, "front end", dirty if isinstance(dirty, bool) else None)


@lru_cache(maxsize=MAX_NOTEBOOKS_SEARCHED)
def _saved(path: str, mtime_ns: int, size: int) -> NotebookSnapshot:
    with open(path, encoding="utf-8") as f:
        return NotebookSnapshot(path, _strip(json.load(f)), "saved file", None)


def from_saved_file(path: str | None) -> NotebookSnapshot | None:
    """The notebook at ``path`` as last saved, or None when there is none that can be read.
    Read and parsed once per version of the file: cell identity and run snapshots share it."""
    if not path or not path.endswith(".ipynb"):
        return None
    try:
        stat = os.stat(path)
        if stat.st_size > 4 * MAX_SNAPSHOT_BYTES:
            return None
        return _saved(path, stat.st_mtime_ns, stat.st_size)
    except (OSError, ValueError, SnapshotError):
        return None


def find_by_source(folder: str | os.PathLike[str], source: str) -> str | None:
    """The one notebook in ``folder`` whose code cells include ``source``, when nothing told the
    kernel its notebook: ``jupyter nbconvert --execute``, papermill and nbclient start the
    kernel in the notebook's folder and send each cell's source as saved, but not its path.
    None when no notebook there holds the source, or more than one does (a copy of the
    notebook beside it: which one ran cannot be told)."""
    wanted = source.strip()
    if not wanted:
        return None
    try:
        with os.scandir(folder) as entries:
            paths = sorted(e.path for e in entries if e.name.endswith(".ipynb") and e.is_file())
    except OSError:
        return None
    if len(paths) > MAX_NOTEBOOKS_SEARCHED:
        return None
    found = []
    for path in paths:
        saved = from_saved_file(os.path.abspath(path))
        if saved is not None and any(s.strip() == wanted for _, s in saved.code_cells):
            found.append(saved.path)
    return found[0] if len(found) == 1 else None
