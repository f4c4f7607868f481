"""Transitional: ``resolve`` moved to :mod:`nbmlops.registry.model_version`. Delete this module
once ``nbmlops/api/_drift.py`` imports it from there (issue #12)."""

from nbmlops.registry.model_version import resolve

__all__ = ["resolve"]
