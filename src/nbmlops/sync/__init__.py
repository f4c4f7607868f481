"""Sync with an MLflow tracking server (issue #19): push runs and the registry over its REST API.

:func:`push` sends what the store holds and the server does not; :mod:`mlflow_rest` is the thin
HTTP client under it; what was sent is remembered per server in the store (``sync_*`` tables,
store/sync.py), so pushing again sends only what is new.
"""

from nbmlops.sync.pull import PullReport, pull
from nbmlops.sync.push import PushReport, push

__all__ = ["PullReport", "PushReport", "pull", "push"]
