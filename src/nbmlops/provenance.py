"""Lineage of a run: its inputs and who made them, its outputs and who used them.

Datasets are linked across runs by content fingerprint, so "the forest run read what the prepare
run produced" holds exactly when the bytes are the same, whatever the variable was called.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbmlops._figures import figure_png, new_figure
from nbmlops.capture.run import Run
from nbmlops.store import runs as run_store

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


@dataclass
class Lineage:
    run_id: str
    run_name: str | None
    status: str
    inputs: list[dict[str, Any]]  # role, name, kind, dataset_id, produced_by: [run ids]
    outputs: list[dict[str, Any]]  # datasets and artifacts; used_by: [run ids]

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [
            {
                "direction": direction,
                "kind": item["kind"],
                "name": item["name"],
                "id": item["id"][:16],
                "linked_runs": ", ".join(item["linked"]),
            }
            for direction, items in (("input", self.inputs), ("output", self.outputs))
            for item in items
        ]
        return pd.DataFrame(rows, columns=["direction", "kind", "name", "id", "linked_runs"])

    def _repr_html_(self) -> str:
        def cell(items: list[dict[str, Any]], link: str) -> str:
            lines = []
            for item in items:
                linked = f" <i>{link} {', '.join(item['linked'])}</i>" if item["linked"] else ""
                lines.append(
                    f"<div>{html.escape(item['kind'])} <b>{html.escape(item['name'])}</b> "
                    f"<code>{item['id'][:8]}</code>{linked}</div>"
                )
            return "".join(lines) or "<div><i>none</i></div>"

        title = html.escape(f"run {self.run_id}" + (f" {self.run_name!r}" if self.run_name else ""))
        return figure_png(self.plot()) + (
            "<table><tr><th>inputs</th><th></th><th>run</th><th></th><th>outputs</th></tr>"
            f"<tr><td>{cell(self.inputs, 'made by')}</td><td>&rarr;</td>"
            f"<td><b>{title}</b><br>{html.escape(self.status)}</td><td>&rarr;</td>"
            f"<td>{cell(self.outputs, 'used by')}</td></tr></table>"
        )

    def plot(self) -> Figure:
        """The lineage as a left-to-right graph: producers → inputs → run → outputs → users."""
        return _lineage_figure(self)


def build_lineage(run: Run) -> Lineage:
    datasets = run.datasets
    links = run_store.dataset_links(run.store, [d["dataset_id"] for d in datasets])
    producers: dict[str, list[str]] = {}
    users: dict[str, list[str]] = {}
    for link in links:
        if link["run_id"] == run.run_id:
            continue
        target = producers if link["role"] == "output" else users
        runs = target.setdefault(link["dataset_id"], [])
        if link["run_id"] not in runs:
            runs.append(link["run_id"])
    inputs, outputs = [], []
    for d in datasets:
        item = {"kind": d["kind"], "name": d["name"], "id": d["dataset_id"]}
        if d["role"] == "input":
            inputs.append({**item, "linked": producers.get(d["dataset_id"], [])})
        else:
            outputs.append({**item, "linked": users.get(d["dataset_id"], [])})
    for artifact in run.artifacts:
        outputs.append(
            {
                "kind": artifact["kind"],
                "name": artifact["name"],
                "id": artifact["sha256"],
                "linked": [],
            }
        )
    info = run.info
    return Lineage(run.run_id, info["name"], info["status"], inputs, outputs)


def _short(name: str) -> str:
    """File paths by their last two parts; names as they are."""
    parts = name.replace("\\", "/").split("/")
    return name if len(parts) <= 2 else ".../" + "/".join(parts[-2:])


def _lineage_figure(lineage: Lineage) -> Figure:
    """Producers → inputs → run → outputs → users, left to right, with an arrow per link."""
    producers = list(dict.fromkeys(r for item in lineage.inputs for r in item["linked"]))
    users = list(dict.fromkeys(r for item in lineage.outputs for r in item["linked"]))
    run_label = f"run {lineage.run_id[:8]}\n{lineage.run_name or ''}".strip()
    columns: list[list[tuple[str, str, str]]] = [  # (node key, text, colour)
        [(f"p:{r}", f"run {r[:8]}", "#eceff1") for r in producers],
        [
            (f"i:{k}", f"{i['kind']}\n{_short(i['name'])}", "#e3f2fd")
            for k, i in enumerate(lineage.inputs)
        ],
        [("run", run_label, "#fff3e0")],
        [
            (f"o:{k}", f"{o['kind']}\n{_short(o['name'])}", "#e8f5e9")
            for k, o in enumerate(lineage.outputs)
        ],
        [(f"u:{r}", f"run {r[:8]}", "#eceff1") for r in users],
    ]
    edges = [(f"p:{r}", f"i:{k}") for k, i in enumerate(lineage.inputs) for r in i["linked"]]
    edges += [(f"i:{k}", "run") for k in range(len(lineage.inputs))]
    edges += [("run", f"o:{k}") for k in range(len(lineage.outputs))]
    edges += [(f"o:{k}", f"u:{r}") for k, o in enumerate(lineage.outputs) for r in o["linked"]]
    columns = [c for c in columns if c]
    tallest = max(len(c) for c in columns)
    fig = new_figure(2.3 * len(columns), max(2.0, 0.75 * tallest))
    ax = fig.subplots()
    ax.set_xlim(-0.6, len(columns) - 0.4)
    ax.set_ylim(-0.7, tallest - 0.3)
    ax.set_axis_off()
    boxes: dict[str, Any] = {}
    for x, column in enumerate(columns):
        offset = (tallest - len(column)) / 2
        for k, (key, text, colour) in enumerate(column):
            y = tallest - 1 - (k + offset)
            boxes[key] = ax.text(
                x,
                y,
                text,
                ha="center",
                va="center",
                fontsize=8,
                bbox={"boxstyle": "round,pad=0.4", "fc": colour, "ec": "#78909c"},
            )
    for start, end in edges:
        # Anchored to the boxes themselves: from the right edge of one to the left of the next.
        ax.annotate(
            "",
            xy=(0, 0.5),
            xycoords=boxes[end],
            xytext=(1, 0.5),
            textcoords=boxes[start],
            arrowprops={
                "arrowstyle": "->",
                "color": "#90a4ae",
                "lw": 0.8,
                "shrinkA": 2,
                "shrinkB": 2,
            },
        )
    ax.set_title(f"lineage of run {lineage.run_id}", fontsize=9)
    return fig
