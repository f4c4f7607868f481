"""nbmlops errors show as their message in IPython, not as a traceback through nbmlops."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell


@pytest.fixture
def shell() -> InteractiveShell:
    return InteractiveShell.instance()


def test_an_nbmlops_error_in_a_cell_shows_its_message_alone(shell, capsys):
    shell.run_cell(
        "from nbmlops.errors import FilterSyntaxError\n"
        "def deep():\n    raise FilterSyntaxError('expected a value', 'metrics.x >', 11)\n"
        "deep()"
    )
    out = capsys.readouterr()
    shown = out.out + out.err
    assert "FilterSyntaxError: expected a value at position 11 in filter:" in shown
    assert "metrics.x >" in shown and "Traceback" not in shown and "deep()" not in shown


def test_other_errors_keep_their_traceback(shell, capsys):
    shell.run_cell("def deep():\n    raise ValueError('boom')\ndeep()")
    out = capsys.readouterr()
    assert "Traceback" in out.out + out.err
