"""Model review notebooks: generated, executed headless, exported to HTML, recorded."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from IPython.core.interactiveshell import InteractiveShell
from nbclient import NotebookClient

import nbmlops as nbm
from nbmlops.cli import main
from nbmlops.review import review_model
from nbmlops.review.render import SUMMARY_TAG

RULES = """[rules.wine]
promote_to = "champion"
require = ["metrics.mae < champion.metrics.mae"]
"""

SETUP = """
import numpy as np, pandas as pd
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error
rng = np.random.default_rng(0)
X = pd.DataFrame({"alcohol": rng.normal(10, 1, 300), "acidity": rng.normal(3, 0.5, 300)})
y = 20 * X["alcohol"] - 8 * X["acidity"] + rng.normal(scale=2, size=300)
X_test, y_test = X[200:], y[200:]
"""

SPLIT = "X_train, y_train = X[:{rows}], y[:{rows}]"
TRAIN = """%%track wine
alpha = {alpha}
model = Ridge(alpha=alpha).fit(X_train, y_train)
mae = mean_absolute_error(y_test, model.predict(X_test))
"""


@pytest.fixture
def two_versions(shell: InteractiveShell, home: Path, tmp_path: Path) -> Path:
    """wine/1 (champion, alpha 1000 on 100 rows) and wine/2 (alpha 0.1 on 200 rows, better)."""
    (tmp_path / "nbmlops.toml").write_text(RULES)
    shell.run_cell(SETUP).raise_error()
    for alpha, rows in ((1000.0, 100), (0.1, 200)):
        shell.run_cell(SPLIT.format(rows=rows)).raise_error()
        shell.run_cell(TRAIN.format(alpha=alpha)).raise_error()
        nbm.register_model(nbm.runs("name = 'wine'").run_id[0], "wine")
    assert nbm.promote("wine", 1).outcome == "promoted"
    return home


def test_the_review_shows_the_deltas_and_the_rules_without_promoting(two_versions: Path):
    review = review_model("wine/2")
    assert review.against == "wine/1" and review.notebook.parent == review.html.parent
    assert review.notebook.parent.parent == two_versions / "reviews"
    html = review.html.read_text()
    assert "Params that differ" in html and "alpha" in html and "delta" in html
    assert "wine/2 would become @champion" in html and "all 1 rules passed" in html
    assert f"Not re-run yet: <code>nbmlops rerun {nbm.get_model_version('wine/2').run_id}" in html
    metric = review.summary["metrics"]["mae"]
    assert metric["better"] == "candidate" and metric["delta"] < 0
    assert review.summary["params_changed"] == ["alpha"] and review.summary["same_data"] is False
    assert review.summary["drift"]["drifted"] == [] and "Drift of the training data" in html
    assert nbm.get_model_version("wine@champion").version == 1  # a dry run only
    assert review.notebook.stat().st_size < 200_000


def test_the_review_is_recorded_with_both_files_in_objects(two_versions: Path):
    review = review_model("wine/2", against=1)
    with sqlite3.connect(two_versions / "nbmlops.db") as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM reviews WHERE review_id = ?", (review.review_id,))
        row = row.fetchone()
    assert tuple(row)[1:5] == ("model", "wine", 2, "wine/1")  # kind, name, version, against
    for column, path in (("notebook", review.notebook), ("html", review.html)):
        stored = two_versions / "objects" / row[column][:2] / row[column][2:]
        assert stored.read_bytes() == path.read_bytes()
    assert json.loads(row["summary"])["lines"] == review.lines
    assert str(review).startswith(f"Review {review.review_id}: wine/2 against wine/1\n")


def test_reviewing_the_champion_compares_it_with_the_version_it_replaced(two_versions: Path):
    assert nbm.promote("wine", 2).outcome == "promoted"
    review = review_model("wine@champion")
    assert (review.version, review.against) == (2, "wine/1")
    assert review.summary["decisions"] == ["promoted"]
    assert "wine/2 is already @champion" in review.lines[1]


def test_the_saved_notebook_runs_again_unchanged(two_versions: Path):
    review = review_model("wine/2")
    notebook = nbformat.read(review.notebook, as_version=4)
    first = next(c for c in notebook.cells if c.cell_type == "code")
    assert first.metadata["tags"] == ["parameters"] and "candidate = 'wine/2'" in first.source
    folder = {"metadata": {"path": str(review.notebook.parent)}}
    NotebookClient(notebook, timeout=120, resources=folder).execute()
    summary = next(c for c in notebook.cells if SUMMARY_TAG in c.metadata.get("tags", []))
    again = summary.outputs[-1]["data"]["application/vnd.nbmlops.review-summary+json"]
    assert again["lines"] == review.lines


def test_cli_review_model_prints_the_files_and_the_summary(two_versions: Path):
    result = CliRunner().invoke(main, ["review", "model", "wine/2", "--against", "champion"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Review ") and lines[0].endswith("wine/2 against wine/1")
    assert lines[1].strip().startswith("notebook: ") and lines[2].strip().startswith("html: ")
    assert "mae" in lines[3] and "candidate better" in lines[3]


def test_an_unknown_version_is_refused_by_name(two_versions: Path):
    with pytest.raises(nbm.ModelNotFoundError, match="wine/9"):
        review_model("wine/9")


def test_a_misspelt_alias_to_review_against_is_refused_naming_the_aliases(two_versions: Path):
    with pytest.raises(nbm.RegistryError, match=r"wine has no alias 'champoin' to review against"):
        review_model("wine/2", against="champoin")


@pytest.mark.browser
def test_the_html_opens_in_chromium_with_its_images_and_no_code(two_versions: Path):
    """The standalone HTML, opened from disk (no server): the findings read without running
    anything (picture for the docs: NBMLOPS_SCREENSHOTS=1)."""
    from jupyterlab_browser import chromium_page

    review = review_model("wine/2")
    with chromium_page(width=1100, height=900) as page:
        page.goto(review.html.as_uri())
        page.get_by_text("wine/2 would become @champion").first.wait_for(timeout=20_000)
        assert page.locator(".jp-CodeCell .jp-InputArea").count() == 0  # outputs only
        assert "candidate better" in page.locator("body").inner_text()
        if os.environ.get("NBMLOPS_SCREENSHOTS") == "1":
            shot = Path(__file__).parents[1] / "docs" / "img" / "review_model.png"
            page.screenshot(path=str(shot), full_page=False)


def test_cli_approve_records_an_approval_the_review_lists(two_versions: Path):
    result = CliRunner().invoke(main, ["review", "approve", "wine/2", "--by", "ana"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Approval 1: wine/2 approved by ana")
    refused = CliRunner().invoke(main, ["review", "approve", "wine", "--by", "ana"])
    assert refused.exit_code == 1 and "give NAME/VERSION" in refused.output
    # recorded from the account that trained wine/2: a self-approval, marked as such
    assert review_model("wine/2").summary["approvals"] == ["ana (self)"]


def test_cli_review_rules_exits_1_when_a_past_decision_flips(two_versions: Path, tmp_path: Path):
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "nbmlops.toml"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "rules"], cwd=tmp_path, check=True)
    (tmp_path / "nbmlops.toml").write_text(RULES.replace('mae"]', 'mae", "metrics.mae < 10"]'))
    result = CliRunner().invoke(main, ["review", "rules"])
    assert result.exit_code == 1, result.output
    assert "metrics.mae < 10" in result.output
