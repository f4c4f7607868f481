"""The names of the store's files and the settings read from the environment.

The location rule that uses them is :mod:`nbmlops.store._location`.
"""

from __future__ import annotations

STORE_DIRNAME = ".nbmlops"
DB_FILENAME = "nbmlops.db"
OBJECTS_DIRNAME = "objects"
HOME_ENV = "NBMLOPS_HOME"
