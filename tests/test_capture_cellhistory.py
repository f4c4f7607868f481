"""%cellhistory and nbm.cell_history name a cell by run id, cell id or run name."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbmlops as nbm


@pytest.fixture
def shell(shell: InteractiveShell) -> InteractiveShell:
    """The tracking shell, with two versions of cell c1 and one of c2 run."""
    shell.run_cell("%%track fit\na = 1", store_history=True, cell_id="c1")
    shell.run_cell("%%track fit\na = 2", store_history=True, cell_id="c1")
    shell.run_cell("%%track other\nb = 1", store_history=True, cell_id="c2")
    return shell


def test_cellhistory_accepts_a_run_name(shell: InteractiveShell):
    panel = shell.run_line_magic("cellhistory", "fit")
    assert panel.history.attrs["cell_id"] == "c1"
    assert panel.history["source"].tolist() == ["%%track fit\na = 1", "%%track fit\na = 2"]


def test_an_unknown_name_lists_the_near_ones(shell: InteractiveShell):
    with pytest.raises(nbm.NotFoundError, match="No run id, cell id or run name 'fitt'") as caught:
        nbm.cell_history("fitt")
    assert "did you mean 'fit'?" in str(caught.value)


def test_a_named_run_made_by_no_cell_has_no_history(shell: InteractiveShell):
    with nbm.start_run("script"):
        pass
    with pytest.raises(nbm.NotFoundError, match=r"the newest run named 'script'\) was not made"):
        nbm.cell_history("script")
