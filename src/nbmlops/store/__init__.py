"""The metadata store: the only package that writes SQL (see docs/schema.md)."""

from nbmlops.store.db import Store

__all__ = ["Store"]
