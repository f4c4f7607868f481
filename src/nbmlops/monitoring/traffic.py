"""Window profiles of served inputs: the server folds the rows it scored into drift profiles.

A drift check of served traffic must not re-read the prediction log: decoding a logged request
body costs about 100 µs, so an hour of a busy server would take minutes. Instead the server's
prediction-log writer hands every scored request's input frame to a :class:`TrafficProfiler`,
which keeps the frames of each (model version, endpoint, window) and, when the window closes,
profiles them once (:func:`nbmlops.drift.build_profile`) into one ``traffic_profiles`` row. A
check then pools the profiles of its window (:mod:`nbmlops.monitoring.drift_windows`).

Windows are aligned to multiples of their length since the epoch (a minute by default), so the
profiles of several servers cover the same spans. A profile holds the columns of the version's
training profile, profiled as that profile's kinds say (an integer column the reference treats
as categorical stays categorical), so that a check compares like with like; a version without
a training profile is profiled over its signature's columns (numeric dtypes numeric, the rest
categorical), and one with neither is not profiled. The sketch size is modest
(:data:`SKETCH_SIZE`): a window with at most that many distinct values of a column keeps them
exactly, a busier one an ECDF sketch with recorded error bounds, a few kB per column.

Profiles cover every scored row, also when ``log_sample`` < 1 keeps only some requests in the
log: the fold happens before sampling. Requests answered with an error are not profiled.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from nbmlops.drift import Kind, Profile, build_profile, load_profile, merge_profiles
from nbmlops.errors import NbmlopsError
from nbmlops.registry.model_version import resolve
from nbmlops.store import Store
from nbmlops.store.traffic import TrafficRow

logger = logging.getLogger("nbmlops.serving")

DEFAULT_WINDOW_S = 60.0
SKETCH_SIZE = 1_000
# A window's request frames are concatenated into one past this many (a DataFrame per request
# costs a few kB), and profiled and merged past this many rows (bounding memory).
_COMPACT_FRAMES = 2_000
_MAX_BUFFER_ROWS = 250_000
# Requests reach the writer shortly after they arrived: a window closes this long after its end.
_GRACE_S = 2.0


@dataclass(frozen=True)
class Layout:
    """What is profiled of a version's inputs: its columns (labels as in the training profile,
    ``names`` as they arrive in requests) and each one's kind."""

    labels: tuple[Hashable, ...]
    names: tuple[str, ...]
    kinds: Mapping[Hashable, Kind]


def layout_of(store: Store, name: str, version: int) -> Layout | None:
    """The columns and kinds to profile for ``name/version`` (see the module docstring); None
    when it has neither a training profile nor a signature with column names."""
    mv = resolve(store, f"{name}/{version}")
    signed = [str(c["name"]) for c in (mv.signature or {}).get("columns") or []]
    reference_id = mv.reference_profile_id
    if reference_id is not None:
        reference = load_profile(store, reference_id)
        labels = [c for c in reference.columns if not signed or str(c) in signed]
        return Layout(
            tuple(labels),
            tuple(str(c) for c in labels),
            {c: reference.columns[c].kind for c in labels},
        )
    if not signed:
        return None
    dtypes = [c.get("dtype") or "" for c in mv.signature["columns"]]  # type: ignore[index]
    numeric = ("int", "uint", "float", "Int", "UInt", "Float")
    kinds: dict[Hashable, Kind] = {
        c: "numeric" if d.startswith(numeric) else "categorical"
        for c, d in zip(signed, dtypes, strict=True)
    }
    return Layout(tuple(signed), tuple(signed), kinds)


@dataclass
class _Window:
    frames: list[pd.DataFrame] = field(default_factory=list)
    n_rows: int = 0
    buffered: int = 0
    partial: Profile | None = None


class TrafficProfiler:
    """Folds scored input frames into window profiles; owned by one writer thread.

    ``add`` keeps a frame (cheap: a list append); ``close(store, now)`` profiles the windows
    that ended more than a grace period before ``now`` (all of them with ``everything=True``,
    at stop) and returns their ``traffic_profiles`` rows to write."""

    def __init__(self, window: float = DEFAULT_WINDOW_S, sketch_size: int = SKETCH_SIZE) -> None:
        if not (math.isfinite(window) and window > 0):
            raise ValueError(f"profile window={window!r} must be a positive number of seconds.")
        self.window = float(window)
        self.sketch_size = sketch_size
        self._layouts: dict[tuple[str, int], Layout | None] = {}
        self._open: dict[tuple[str, int, str | None, float], _Window] = {}

    def add(
        self,
        store: Store,
        name: str,
        version: int,
        endpoint_id: str | None,
        at: float,
        frame: pd.DataFrame,
    ) -> None:
        """Keep one request's scored input rows for the window ``at`` falls in."""
        layout = self._layout(store, name, version)
        if layout is None or len(frame) == 0:
            return
        start = math.floor(at / self.window) * self.window
        win = self._open.setdefault((name, version, endpoint_id, start), _Window())
        win.frames.append(frame)
        win.n_rows += len(frame)
        win.buffered += len(frame)
        if win.buffered >= _MAX_BUFFER_ROWS:
            win.partial = self._fold(win, layout)
        elif len(win.frames) >= _COMPACT_FRAMES:
            win.frames = [_select(win.frames, layout)]

    def close(self, store: Store, now: float, *, everything: bool = False) -> list[TrafficRow]:
        """Profile the windows that are over (every open one when ``everything``)."""
        rows: list[TrafficRow] = []
        for key in sorted(self._open, key=lambda k: k[3]):
            name, version, endpoint_id, start = key
            end = start + self.window
            if not everything and end + _GRACE_S > now:
                continue
            win = self._open.pop(key)
            layout = self._layouts[(name, version)]
            assert layout is not None
            profile = self._fold(win, layout)
            rows.append(
                TrafficRow(
                    endpoint_id,
                    name,
                    version,
                    start,
                    min(end, now),
                    win.n_rows,
                    profile.to_json(),
                    now,
                )
            )
        return rows

    @property
    def pending_rows(self) -> int:
        """Rows kept for windows not written yet."""
        return sum(w.n_rows for w in self._open.values())

    def _layout(self, store: Store, name: str, version: int) -> Layout | None:
        key = (name, version)
        if key not in self._layouts:
            try:
                self._layouts[key] = layout_of(store, name, version)
            except NbmlopsError as exc:
                logger.warning("nbmlops: inputs of %s/%s are not profiled: %s", name, version, exc)
                self._layouts[key] = None
        return self._layouts[key]

    def _fold(self, win: _Window, layout: Layout) -> Profile:
        """The window's profile so far: its buffered frames profiled, merged with what was
        profiled before; the buffer is emptied."""
        if win.frames:
            frame = _select(win.frames, layout)
            frame.columns = list(layout.labels)
            built = build_profile(
                frame,
                kinds=layout.kinds,
                sketch_size=self.sketch_size,
                fingerprint=False,
            )
            win.partial = built if win.partial is None else merge_profiles(win.partial, built)
        win.frames, win.buffered = [], 0
        assert win.partial is not None
        return win.partial


def _select(frames: list[pd.DataFrame], layout: Layout) -> pd.DataFrame:
    """The frames' profiled columns, one below the other (a column a request lacked: missing)."""
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True, sort=False)
    return frame.reindex(columns=list(layout.names))


__all__ = ["DEFAULT_WINDOW_S", "SKETCH_SIZE", "Layout", "TrafficProfiler", "layout_of"]
