"""Change review: notebooks changed in git, classified per cell, with the tracked cells' metric
moves; as a review notebook, HTML and a pull-request comment."""

from __future__ import annotations

import subprocess
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from IPython.core.interactiveshell import InteractiveShell

from nbmlops.cli import main
from nbmlops.errors import NbmlopsError
from nbmlops.review import notebook_changes, review_changes

SETUP = """import numpy as np, pandas as pd
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error
rng = np.random.default_rng(0)
X = pd.DataFrame({"a": rng.normal(10, 1, 300), "b": rng.normal(3, 0.5, 300)})
y = 20 * X["a"] - 8 * X["b"] + rng.normal(scale=2, size=300)
X_train, y_train, X_test, y_test = X[:200], y[:200], X[200:], y[200:]"""

TRAIN = """%%track wine
model = Ridge(alpha={alpha}).fit(X_train, y_train)
mae = mean_absolute_error(y_test, model.predict(X_test))"""


def git(repo: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args]
    return subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True).stdout


def notebook(alpha: float, printed: str | None = None) -> nbformat.NotebookNode:
    show = nbformat.v4.new_code_cell("print(mae)", id="show")
    if printed is not None:
        show.outputs = [nbformat.v4.new_output("stream", text=printed)]
        show.execution_count = 3
    cells = [
        nbformat.v4.new_code_cell(SETUP, id="setup"),
        nbformat.v4.new_code_cell(TRAIN.format(alpha=alpha), id="train"),
        show,
    ]
    return nbformat.v4.new_notebook(cells=cells)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Two commits of train.ipynb: alpha 1000 -> 0.1 in the tracked cell, outputs on another."""
    folder = tmp_path / "project"
    folder.mkdir()
    git(folder, "init", "-q")
    for alpha, printed in ((1000.0, None), (0.1, "1.13\n")):
        nbformat.write(notebook(alpha, printed), folder / "train.ipynb")
        git(folder, "add", "train.ipynb")
        git(folder, "commit", "-q", "-m", f"alpha {alpha}")
    return folder


def test_a_code_change_and_an_outputs_only_change_are_told_apart(repo: Path):
    changes = notebook_changes("HEAD~1..HEAD", repo=repo)
    assert [(c.notebook, c.cell_id, c.change, c.tracked) for c in changes] == [
        ("train.ipynb", "train", "source", True),
        ("train.ipynb", "show", "outputs", False),
    ]
    assert changes[0].label == "%%track wine"
    assert "+model = Ridge(alpha=0.1).fit(X_train, y_train)" in changes[0].diff()


def test_the_working_tree_against_head_by_default(repo: Path):
    edited = nbformat.read(repo / "train.ipynb", as_version=4)
    edited.cells[0].metadata["tags"] = ["setup"]
    nbformat.write(edited, repo / "train.ipynb")
    nbformat.write(notebook(5.0), repo / "new.ipynb")  # untracked: every cell added
    changes = notebook_changes(repo=repo)
    assert [(c.notebook, c.change) for c in changes] == [
        *[("new.ipynb", "added")] * 3,
        ("train.ipynb", "metadata"),
    ]


def test_a_range_git_does_not_know_names_it(repo: Path):
    with pytest.raises(NbmlopsError, match=r"'nope' \(in 'nope\.\.HEAD'\) is not a commit"):
        notebook_changes("nope..HEAD", repo=repo)


def test_a_range_that_looks_like_a_git_option_is_refused_before_git_sees_it(
    repo: Path, tmp_path: Path
):
    victim = tmp_path / "victim.txt"
    victim.write_text("important")
    with pytest.raises(NbmlopsError, match=r"is not a commit"):
        notebook_changes(f"--output={victim}", repo=repo)
    assert victim.read_text() == "important"


def test_review_notebooks_in_a_store_inside_the_repository_are_not_changes(repo: Path):
    reviews = repo / ".nbmlops" / "reviews" / "r1"
    reviews.mkdir(parents=True)
    nbformat.write(notebook(5.0), reviews / "review.ipynb")
    assert notebook_changes(repo=repo) == []


def test_the_review_and_the_markdown_name_the_metric_movement(repo: Path, shell: InteractiveShell):
    shell.run_cell(SETUP).raise_error()
    for alpha in (1000.0, 0.1):
        shell.run_cell(TRAIN.format(alpha=alpha)).raise_error()
    review = review_changes("HEAD~1..HEAD", repo=repo)
    moved = review.cells[0]["metrics"]["mae"]
    assert moved["new"] < moved["old"] and moved["better"] == "new"
    text = review.to_markdown()
    assert "| `train.ipynb` | `%%track wine` | **code changed** | mae " in text
    assert "(-" in text and ", better" in text
    assert "| `train.ipynb` | `code cell 3` | outputs only |  |" in text
    assert "1 cell(s) changed in outputs or metadata only: no code changed." in text
    html = review.html.read_text()
    assert "Tracked cells whose code changed" in html and "alpha=0.1" in html


def test_cli_review_changes_prints_markdown(repo: Path, shell: InteractiveShell):
    shell.run_cell(SETUP).raise_error()
    result = CliRunner().invoke(
        main, ["review", "changes", "HEAD~1..HEAD", "--repo", str(repo), "--markdown"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("### nbmlops: notebook changes (HEAD~1..HEAD)\n")
    assert "no metrics to compare (0 old / 0 new runs)" in result.output
