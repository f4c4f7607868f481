"""The metadata store: the only package that writes SQL (see docs/schema.md).

:class:`Store` is one SQLite file plus the object folder; :func:`open_store` turns whatever a
user passes as ``store=`` (:data:`StoreLike`) into one, for every public function alike.
"""

from nbmlops.store._handle import (
    StoreLike,
    close_stores,
    open_store,
    set_default_store,
    store_at,
)
from nbmlops.store._location import find_home, resolve_home
from nbmlops.store.db import Store

__all__ = [
    "Store",
    "StoreLike",
    "close_stores",
    "find_home",
    "open_store",
    "resolve_home",
    "set_default_store",
    "store_at",
]
