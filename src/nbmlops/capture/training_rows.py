"""The row hashes of a training cell's inputs, kept once per dataset so that a later evaluation
can tell which of its rows the model saw (issue #21 item 2) without the training data at hand.

Hashing is :func:`nbmlops.fingerprint.row_hashes` (pandas' row hashing, vectorised): ~0.37 s for
1M rows x 20 float columns on the project's 2-core VM, fifteen times the content fingerprint the
capture takes anyway (~25 ms), and done once per dataset content: data that already has hashes
costs one lookup. It is done before the user's code runs, like the drift profile, so the hashes
are of the data the run's fingerprint names.

A thread overlapping the user's training was measured and not kept. It hides the cost when a
core is free (a whole tracked ``LinearRegression().fit`` cell on 1M x 20, medians of 4: -0.02 s
against +0.41 s hashing before the cell) but not when the cores are busy (load ~3.5 on 2 cores,
medians of 6: +1.30 s against +1.31 s; the fit alone: +0.32 s against +0.18 s), as fit and
hashing then contend for the cores and the GIL; and it reads data the user's code may change in
place, so its hashes would need a second fingerprint after the cell to be trusted. Hashing
before the cell is exact and costs ~0.4 s once per new 1M-row training set.

The hashes are written in :meth:`TrainingRows.save`, once the run has written the datasets they
belong to (``row_hashes.dataset_id`` references ``datasets``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nbmlops.fingerprint import row_hashes
from nbmlops.store import Store
from nbmlops.store.evaluations import has_row_hashes, save_row_hashes


@dataclass
class TrainingRows:
    """The row hashes of the inputs of one training cell: :meth:`take` before the user's code,
    :meth:`save` once the run's datasets are written; problems come back, never raised."""

    store: Store
    # by content: an input and what the cell made of it under the same name are two datasets
    _taken: dict[str, tuple[str, bytes, int]] = field(default_factory=dict)

    def take(self, inputs: dict[str, tuple[str, Any]]) -> list[str]:
        """Hash ``inputs`` (name -> (fingerprint, data)) that have no stored hashes yet."""
        problems: list[str] = []
        for name, (digest, data) in inputs.items():
            try:
                if digest not in self._taken and not has_row_hashes(self.store, digest):
                    hashes = row_hashes(data)
                    self._taken[digest] = (name, hashes.tobytes(), len(hashes))
            except TypeError:
                pass  # values pandas cannot hash (lists, dicts): an evaluation says unchecked
            except Exception as exc:
                problems.append(f"row hashes {name}: {type(exc).__name__}: {exc}")
        return problems

    def save(self) -> list[str]:
        """Store the hashes taken (once: a second call writes nothing)."""
        problems: list[str] = []
        taken, self._taken = self._taken, {}
        for digest, (name, hashes, n_rows) in taken.items():
            try:
                save_row_hashes(self.store, digest, hashes, n_rows)
            except Exception as exc:
                problems.append(f"row hashes {name}: {type(exc).__name__}: {exc}")
        return problems
