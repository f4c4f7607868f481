"""Telling a run whose process died from one that is still running.

A run is written as ``running`` when it starts. If its process is gone (killed, crashed, kernel
restarted) the run can never finish itself, so readers on the same host mark it ``interrupted``.
A pid can be reused by a later process; comparing the process start time with the run's start
time tells the two apart.
"""

from __future__ import annotations

import os
import time
from functools import cache

from nbmlops.store import Store
from nbmlops.store import runs as run_store


@cache
def hostname() -> str:
    import socket

    return socket.gethostname()


@cache
def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def _process_start_time(pid: int) -> float | None:
    boot = _boot_time()
    if boot is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name (field 2) may contain spaces; fields after ')' are fixed.
            after_name = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return boot + int(after_name[19]) / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, since: float) -> bool:
    """Whether process ``pid`` exists and is the one that was alive at time ``since``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = _process_start_time(pid)
    # /proc start times have clock-tick resolution; allow a second of slack.
    return started is None or started <= since + 1.0


def reap_dead_runs(store: Store, active_run_ids: set[str]) -> None:
    """Mark ``interrupted`` every run on this host left ``running`` by a process that is gone."""
    me = os.getpid()
    dead = [
        run_id
        for run_id, pid, started in run_store.running_runs_on(store, hostname())
        if pid is None
        or (pid == me and run_id not in active_run_ids)
        or (pid != me and not process_alive(pid, started))
    ]
    run_store.mark_interrupted(store, dead, time.time())
