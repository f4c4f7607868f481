"""Alerts: evaluate the ``[alerts.*]`` tables of ``nbmlops.toml`` and read their timeline.

::

    nbm.monitor()                      # one round: fire, notify, retrain; a MonitorResult
    nbm.monitor(every="5m")            # a round every 5 minutes until Ctrl-C
    nbm.alert_events("diabetes")       # firings, notifications and retrain steps
    nbm.check_alerts()                 # the whole nbmlops.toml checked, evaluating nothing
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from nbmlops._display import parse_duration
from nbmlops.errors import NbmlopsError
from nbmlops.monitoring import monitor as monitoring
from nbmlops.monitoring.alerts import AlertsFile, load_alerts
from nbmlops.monitoring.monitor import MonitorResult
from nbmlops.store import Store, StoreLike, open_store, store_at

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("nbmlops.monitoring")


def monitor(
    *,
    once: bool | None = None,
    every: str | float | dt.timedelta | None = None,
    rules: str | Path | None = None,
    on_round: Callable[[MonitorResult], None] | None = None,
    store: StoreLike = None,
) -> MonitorResult:
    """Evaluate every ``[alerts.<name>]`` table of ``nbmlops.toml`` (found from the store's
    folder upwards, or ``rules``) once: fire the alerts whose conditions all hold unless they
    fired within their cooldown (also in another monitor), notify (the ``nbmlops.monitoring``
    logger, the webhook) and retrain as they say. Each firing is recorded with the conditions'
    values and the rules file's git commit (``nbm.alert_events``). A malformed rules file raises
    RulesFileError with its line.

    ``every`` ("5m", seconds): a round every ``every`` until Ctrl-C, re-reading the rules file
    each round (a round it cannot run is logged and carries ``error``); each round goes to
    ``on_round``; returns the last. ``once`` overrides: ``once=True`` one round whatever
    ``every`` says, ``once=False`` a loop, every 5 minutes unless ``every`` says."""
    st = open_store(store, create=False)
    interval = parse_duration("5m" if every is None else every, what="every")
    loop = every is not None if once is None else not once
    if not loop:
        return _round(st, rules)
    result = MonitorResult(time.time(), None, error="interrupted before the first round")
    try:
        while True:
            started = time.monotonic()
            try:
                result = _round(st, rules)
            except Exception as exc:  # one round that cannot run does not end the loop
                unexpected = not isinstance(exc, NbmlopsError)  # then the log keeps its traceback
                log.error("monitoring round failed: %s", exc, exc_info=unexpected)
                result = MonitorResult(time.time(), None, error=monitoring.error_text(exc))
            if on_round is not None:
                on_round(result)
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        return result


def _round(store: Store, rules: str | Path | None) -> MonitorResult:
    alerts = load_alerts(monitoring.rules_path_for(store, rules))
    return monitoring.evaluate(store, alerts)


def alert_events(name: str | None = None, *, store: StoreLike = None) -> pd.DataFrame:
    """The monitoring timeline, oldest first: each ``fired`` alert (its payload holds the
    conditions' values and reasons, the window and the rules file's git state), its
    ``notified``/``notify_failed`` notifications and the retrain steps linked to it by
    ``firing_id``. ``name``: one model's; default every model's."""
    return monitoring.events_frame(open_store(store, create=False), name)


def check_alerts(rules: str | Path | None = None, *, store: StoreLike = None) -> AlertsFile:
    """Parse and check the whole rules file, the ``[alerts.*]`` tables as well as the
    ``[rules.*]`` ones (for CI and pre-commit hooks), evaluating nothing: RulesFileError with
    the file and line when malformed. Needs no store, like ``nbm.check_rules``."""
    return load_alerts(monitoring.rules_path_for(store_at(store), rules))
