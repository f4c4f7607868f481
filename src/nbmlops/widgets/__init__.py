"""Panels for notebooks, built from core ipywidgets and matplotlib (no custom JavaScript), so
they render offline in JupyterLab, Notebook 7 and VS Code. Each also renders as static HTML for
saved and exported notebooks, and ``to_frame()`` gives its table."""

from nbmlops.widgets.cell_history import CellHistoryPanel
from nbmlops.widgets.compare_view import CompareView
from nbmlops.widgets.drift_panel import DriftPanel
from nbmlops.widgets.models_panel import ModelsPanel
from nbmlops.widgets.monitor_panel import MonitorPanel
from nbmlops.widgets.runs_panel import RunsPanel

__all__ = [
    "CellHistoryPanel",
    "CompareView",
    "DriftPanel",
    "ModelsPanel",
    "MonitorPanel",
    "RunsPanel",
]
