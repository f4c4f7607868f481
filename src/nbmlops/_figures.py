"""Matplotlib figures without pyplot, and their PNG for static HTML.

Shared by the domain's own drawings (``Lineage.plot``) and the panels' charts. Figures are built
on ``Figure`` directly, so they touch no global state and an inline backend never shows them
twice. Matplotlib is imported inside the functions: ``import nbmlops`` must not load it.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of this size (inches) with constrained layout."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def figure_png(fig: Figure, dpi: int = 90) -> str:
    """An <img> with the figure inlined as PNG, so a saved notebook keeps it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f"<img src='data:image/png;base64,{data}'/>"
