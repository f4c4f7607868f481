"""Review notebooks (issue #18): a model version against the champion, notebook changes in git.

A review is a real notebook, generated from a template of cells that call the public API
(``import nbmlops as nbm``) and nothing private, so a reviewer can open it, edit it and run it
again; its first code cell holds the parameters (papermill's ``parameters`` tag). It is executed
headless (:func:`nbmlops.headless.execute_notebook`, a fresh kernel of this Python), saved with
its outputs and no widget state (a few tens of KB, diff-friendly), exported to standalone HTML
(nbconvert; images embedded, no prompts) for a reader who runs nothing, and recorded in the
store's append-only ``reviews`` table with both files in ``objects/``.

What the review found is computed once, in the notebook: its last cell (tagged
``review-summary``) displays the findings as JSON, and the summary recorded in the store, shown
by :class:`Review` and the CLI, and posted as a pull-request comment is read from that output.
A reviewer who re-runs the notebook sees the same computation that produced the record.

Modules: :mod:`.render` (building, executing, exporting and recording a review notebook),
:mod:`.model` (:func:`review_model`), :mod:`.changes` (:func:`review_changes` and the per-cell
classification of a notebook diff), :mod:`.commands` (the ``nbmlops review`` CLI group).

Anchors: ReviewNB and nbdime show notebook diffs with no knowledge of runs; CML posts a report
on a pull request; MLflow's run comparison page needs a server and holds no review state.
"""

from nbmlops.review.changes import ChangesReview, notebook_changes, review_changes
from nbmlops.review.model import Review, review_model

__all__ = ["ChangesReview", "Review", "notebook_changes", "review_changes", "review_model"]
