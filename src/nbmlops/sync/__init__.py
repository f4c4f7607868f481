"""Sync with an MLflow tracking server (issue #19): push runs and the registry over its REST API.

:mod:`push` sends what the store holds and the server does not, :mod:`pull` brings runs and
the registry back, :mod:`background` pushes each run as it ends; :mod:`mlflow_rest` is the thin
HTTP client under them; what was sent is remembered per server in the store (``sync_*``
tables, store/sync.py), so pushing again sends only what is new. Nothing is imported here:
``nbm.start_run`` checks whether background sync is configured without loading httpx.
"""
