"""Reviews, approvals and re-runs where people work (issue #18 items 5 and 6): the models panel
shows each version's latest review and its approvals, the runs panel each run's re-run outcome,
``nbmlops show`` both, the REST API what the JupyterLab sidebar needs, and the sidebar links a
version to its review notebook, which opens in JupyterLab."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner
from IPython.core.interactiveshell import InteractiveShell
from nbformat.v4 import new_markdown_cell, new_notebook
from sklearn.dummy import DummyRegressor
from traitlets.config import Config

import nbmlops as nbm
from jupyterlab_browser import chromium_page, lab_server
from nbmlops.cli import main
from nbmlops.store import close_stores
from nbmlops.store import reviews as review_store
from nbmlops.widgets.models_panel import ModelsPanel
from nbmlops.widgets.runs_panel import RunsPanel

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config() -> Config:
    """The extension enabled, unauthenticated access disabled (as in test_jupyter_server)."""
    extensions = {"nbmlops.jupyter": True, "jupyter_server_terminals": False}
    return Config(
        {"ServerApp": {"jpserver_extensions": extensions, "allow_unauthenticated_access": False}}
    )


TRAIN = """%%track wine
from sklearn.dummy import DummyRegressor
model = DummyRegressor().fit([[0.0], [1.0]], [{mae}, {mae}])
mae = {mae}
r2 = 0.5
"""
HEADLINE = "wine/2 vs wine/1: mae 2 -> 1 (delta -1, candidate better)"
SCREENSHOTS = Path(__file__).parents[1] / "docs" / "img"
AT = time.mktime((2026, 12, 6, 10, 54, 0, 0, 0, 0)) - time.timezone  # 2026-12-06 10:54 UTC


def save_screenshot(locator: Any, name: str) -> None:
    """Keep the picture for the README when asked (NBMLOPS_SCREENSHOTS=1)."""
    if os.environ.get("NBMLOPS_SCREENSHOTS") == "1":
        locator.screenshot(path=str(SCREENSHOTS / name))


def train(shell: InteractiveShell, mae: float) -> str:
    shell.run_cell(TRAIN.format(mae=mae)).raise_error()
    return str(nbm.runs().run_id[0])


def write_review(folder: Path, name: str = "wine", version: int = 2) -> int:
    """A ``reviews`` row for ``name/version`` and the two small files it names, in ``folder``
    (what nbmlops review model records, without executing a review notebook)."""
    folder.mkdir(parents=True, exist_ok=True)
    cells = [new_markdown_cell(f"# Model review: {name}/{version}")]
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = new_notebook(cells=cells, metadata={"kernelspec": kernelspec})
    nbformat.write(notebook, folder / "review.ipynb")
    (folder / "review.html").write_text("<h1>Model review</h1>")
    store = nbm.get_store()
    row = {"kind": "model", "name": name, "version": version, "against": f"{name}/1"}
    row |= {"notebook": "a" * 64, "html": "b" * 64, "path": str(folder), "actor": "ana"}
    row |= {"summary": {"lines": [HEADLINE, "approvals: none"]}, "created_at": AT}
    return review_store.add_review(store, row)


def rerun(run_id: str, outcome: str, **row: Any) -> int:
    """A ``reruns`` row for ``run_id`` (what nbm.rerun records, without a kernel)."""
    record = {"run_id": run_id, "outcome": outcome, "tolerance": 1e-6, "actor": "alice"}
    record |= {"metrics": {"mae": [1.0, 1.0], "r2": [0.5, 0.5]}, "differences": []}
    record |= {"inputs": [], "nondeterminism": [], "started_at": AT - 30, "finished_at": AT}
    return review_store.add_rerun(nbm.get_store(), record | row)


@pytest.fixture
def wine(shell: InteractiveShell, tmp_path: Path) -> dict[str, str]:
    """wine/1 and wine/2 from two %%track runs; wine/2 reviewed (files under the working
    folder) and approved twice; each run re-run: reproduced, differs."""
    first, second = train(shell, 2.0), train(shell, 1.0)
    nbm.register_model(first, "wine")
    nbm.register_model(second, "wine")
    write_review(tmp_path / "reviews" / "wine-v2")
    nbm.approve_model("wine/2", by="bob", comment="better mae, same data")
    nbm.approve_model("wine/2", by="carol")
    rerun(first, "reproduced")
    differences = ["metric mae: recorded 1.0, re-run 1.25", "metric r2: recorded 0.5, re-run 0.4"]
    rerun(second, "differs", differences=differences)
    return {"first": first, "second": second}


def test_models_panel_shows_the_latest_review_with_links_and_its_approvals(wine):
    panel = ModelsPanel("wine")
    text = panel.reviews_html.value
    assert "<b>wine/2</b>: reviewed 2026-12-06 10:54:00 UTC against wine/1 (review 1)" in text
    assert f"<i>{HEADLINE.replace('>', '&gt;')}</i>" in text
    assert "href='reviews/wine-v2/review.html'" in text and "open the HTML" in text
    assert "href='reviews/wine-v2/review.ipynb'" in text
    # Recorded from the account that made the version: self-approvals, and said so.
    assert " · 2 approvals" in text and "approved by bob (self-approval), 20" in text
    assert "“better mae, same data”" in text and "approved by carol (self-approval), " in text
    assert "Reviews and approvals" in panel.to_html() and HEADLINE[:20] in panel.to_html()


def test_a_newer_review_replaces_the_older_and_files_outside_the_folder_show_their_path(
    wine, tmp_path_factory
):
    elsewhere = tmp_path_factory.mktemp("outside") / "wine-v2-again"
    review_id = write_review(elsewhere)
    text = ModelsPanel("wine").reviews_html.value
    assert f"(review {review_id})" in text and "(review 1)" not in text
    assert f"href='{(elsewhere / 'review.html').as_uri()}'" in text
    assert f"<code>{elsewhere / 'review.html'}</code>" in text


def test_models_panel_without_reviews_says_how_to_make_one(shell):
    nbm.register_model(train(shell, 2.0), "wine")
    text = ModelsPanel("wine").reviews_html.value
    assert "no reviews yet: nbmlops review model NAME/VERSION" in text


def test_runs_panel_shows_each_runs_newest_rerun_with_the_detail_on_hover(wine):
    rerun(wine["first"], "could_not_run", reason="cell In [3] raised ValueError: boom")
    panel = RunsPanel()
    assert panel.columns[5] == "re-run"
    outcomes = panel.to_frame().set_index("run_id")["re-run"].to_dict()
    assert outcomes == {wine["first"]: "could not run", wine["second"]: "differs"}
    values = [str(getattr(w, "value", "")) for w in panel.grid.children]
    cells = [v for v in values if ">differs</span>" in v]
    assert cells == [
        "<span title='differs: metric mae: recorded 1.0, re-run 1.25 (and 1 more)' "
        "style='color:#c62828;font-weight:bold;white-space:nowrap'>differs</span>"
    ]
    page = panel.to_html()
    assert "could not run: cell In [3] raised ValueError: boom</td>" in page
    assert "color:#c62828;font-weight:bold'>differs: metric mae" in page


def test_runs_never_rerun_get_no_rerun_column(shell):
    train(shell, 2.0)
    panel = RunsPanel()
    assert "re-run" not in panel.columns and "re-run" not in panel.to_html()


@pytest.mark.parametrize(
    ("outcome", "row", "line"),
    [
        ("reproduced", {}, "reproduced, 2 metrics within 1e-06 (2026-12-06 10:55:00 UTC by alice)"),
        (
            "differs",
            {"differences": ["metric mae: recorded 1.0, re-run 1.25", "input x moved"]},
            "differs: metric mae: recorded 1.0, re-run 1.25 (and 1 more) (2026-12-06 10:55",
        ),
        ("could_not_run", {"reason": "cell In [2] raised KeyError"}, "could not run: cell In [2]"),
    ],
)
def test_show_prints_the_newest_rerun_line(wine, outcome, row, line):
    rerun(wine["first"], outcome, **row, finished_at=AT + 60)
    out = CliRunner().invoke(main, ["show", wine["first"]])
    assert out.exit_code == 0, out.output
    [printed] = [text for text in out.output.splitlines() if text.startswith("re-run ")]
    assert printed.startswith(f"re-run     {line}")


def test_show_prints_the_review_of_the_version_a_run_trained(wine, tmp_path):
    out = CliRunner().invoke(main, ["show", wine["second"]]).output
    folder = tmp_path / "reviews" / "wine-v2"
    assert (
        f"review     wine/2 reviewed 2026-12-06 10:54:00 UTC against wine/1 (review 1): "
        f"{HEADLINE}; 2 approvals; {folder / 'review.html'}"
    ) in out
    assert "review " not in CliRunner().invoke(main, ["show", wine["first"]]).output


async def test_rest_gives_each_versions_latest_review_and_approvals(
    jp_fetch, jp_root_dir, wine, tmp_path
):
    write_review(jp_root_dir / "reviews" / "wine-v1", version=1)
    response = await jp_fetch("nbmlops", "api", "reviews", "models", params={"api": 1})
    body = json.loads(response.body)
    [v1, v2] = body["versions"]
    assert (v1["name"], v1["version"], v1["approvals"]) == ("wine", 1, [])
    assert v1["review"]["notebook_path"] == "reviews/wine-v1/review.ipynb"
    assert v1["review"]["html_path"] == "reviews/wine-v1/review.html"
    review = v2["review"]
    assert (review["review_id"], review["against"], review["headline"]) == (1, "wine/1", HEADLINE)
    assert review["created_at"] == "2026-12-06T10:54:00.000Z"
    assert review["notebook_path"] is None  # outside the server root: the folder is given
    assert review["folder"] == str(tmp_path / "reviews" / "wine-v2")
    assert [(a["by"], a["comment"]) for a in v2["approvals"]] == [
        ("bob", "better mae, same data"),
        ("carol", None),
    ]
    assert v2["approvals"][0]["at"].endswith("Z")
    wine_only = await jp_fetch("nbmlops", "api", "reviews", "models", params={"name": "wine"})
    assert json.loads(wine_only.body) == body
    unknown = await jp_fetch(
        "nbmlops", "api", "reviews", "models", params={"name": "beer"}, raise_error=False
    )
    assert unknown.code == 404 and "beer" in json.loads(unknown.body)["error"]


@pytest.mark.browser
def test_sidebar_links_a_version_to_its_review_which_opens_in_jupyterlab(tmp_path, monkeypatch):
    monkeypatch.delenv("NBMLOPS_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    nbm.set_store(None)
    for mae in (2.0, 1.0):
        with nbm.start_run("wine") as run:
            nbm.log_model(DummyRegressor().fit([[0.0]], [mae]), "model")
        nbm.register_model(run.run_id, "wine")
    write_review(tmp_path / "reviews" / "wine-v2")
    nbm.approve_model("wine/2", by="bob", comment="better mae")
    close_stores()
    with lab_server(tmp_path) as lab, chromium_page() as page:
        page.goto(lab.url("lab"))
        page.locator(".lm-TabBar-tab[data-id='nbmlops-runs']").click(timeout=60_000)
        line = page.locator("#nbmlops-runs .nbmlops-model-review[data-ref='wine/2']")
        line.wait_for(timeout=30_000)
        assert "v2 reviewed " in (line.text_content() or "")
        assert "· 1 approval · open review" in (line.text_content() or "")
        assert HEADLINE in (line.get_attribute("title") or "")
        line.locator(".nbmlops-review-link").click()
        page.wait_for_selector(".lm-TabBar-tab:has-text('review.ipynb')", timeout=30_000)
        page.locator(".jp-Notebook h1:has-text('Model review: wine/2')").wait_for(timeout=30_000)
        page.locator("#nbmlops-runs .nbmlops-model-review").first.wait_for(timeout=30_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
        for close in page.locator(".jp-Notification-Toast-Close").all():
            close.click()
        save_screenshot(page, "lab_review.png")
