"""The monitoring timeline of one model, what ``%monitor`` shows::

nbm.monitor_timeline("diabetes")                      # all of it, windows chosen to fit
nbm.monitor_timeline("diabetes", window="1h", since="2026-05-01")
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from nbmlops._display import parse_duration
from nbmlops.registry.events import Moment, to_seconds
from nbmlops.registry.model_version import check_name, resolve
from nbmlops.store import StoreLike, open_store

if TYPE_CHECKING:
    from nbmlops.monitoring.timeline import Timeline


def monitor_timeline(
    name: str,
    *,
    window: str | float | dt.timedelta | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
    store: StoreLike = None,
) -> Timeline:
    """Model ``name`` in production, per registry version and window: the served metric
    against the offline one with its 95% interval, label coverage, the drift share of its
    served traffic, and the alerts, retrain steps and alias moves, with the alerts still in
    their cooldown (``badges()``) and hints for what has nothing yet. ``window``: ``"1h"``,
    seconds (default: the shortest of 1m, 5m, 15m, 1h, 6h, 1d, 7d giving at most 60 windows);
    ``since``/``until``: UTC seconds, a datetime or an ISO string (default: everything)."""
    # nbmlops.monitoring loads numpy (production skew); `import nbmlops` must not.
    from nbmlops.monitoring.timeline import timeline

    check_name(name)
    st = open_store(store, create=False)
    resolve(st, name)  # an unknown model: ModelNotFoundError listing the registered ones
    return timeline(
        st,
        name,
        window=None if window is None else parse_duration(window, what="window"),
        since=None if since is None else to_seconds(since),
        until=None if until is None else to_seconds(until),
    )
