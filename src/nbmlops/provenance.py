"""Lineage of a run: its inputs and who made them, its outputs and who used them.

Datasets are linked across runs by content fingerprint, so "the forest run read what the prepare
run produced" holds exactly when the bytes are the same, whatever the variable was called.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbmlops.capture.run import Run

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

        from nbmlops.widgets._html import figure_png

        title = html.escape(f"run {self.run_id}" + (f" {self.run_name!r}" if self.run_name else ""))
        return figure_png(self.plot()) + (
            "<table><tr><th>inputs</th><th></th><th>run</th><th></th><th>outputs</th></tr>"
            f"<tr><td>{cell(self.inputs, 'made by')}</td><td>&rarr;</td>"
            f"<td><b>{title}</b><br>{html.escape(self.status)}</td><td>&rarr;</td>"
            f"<td>{cell(self.outputs, 'used by')}</td></tr></table>"
        )

    def plot(self) -> Figure:
        """The lineage as a left-to-right graph: producers → inputs → run → outputs → users."""
        from nbmlops.widgets.plots import lineage_figure

        return lineage_figure(self)


def build_lineage(run: Run) -> Lineage:
    datasets = run.datasets
    links = run.store.dataset_links([d["dataset_id"] for d in datasets])
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
