"""Feature views in the notebook panel (``%features``) and the ``nbmlops features`` commands
(issue #17 item 5), over a real store: two versions of a view, a model trained from a training
set of it, and materialisations, one of them long past the view's TTL."""

from __future__ import annotations

import ast
import datetime as dt
import os
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_notebook

import nbmlops as nbm
from jupyterlab_browser import chromium_page, lab_server, open_notebook, wait_for_execution
from nbmlops.api import _features as features_api
from nbmlops.cli import main
from nbmlops.errors import FeatureError
from nbmlops.feature_store.changes import readable_code, wrap_code
from nbmlops.panels import features_panel
from nbmlops.widgets.features_panel import STALE

T0 = pd.Timestamp("2026-01-01", tz="UTC")
STATS = pd.DataFrame(
    {
        "driver_id": [1001, 1002, 1001],
        "event_ts": [T0, T0 + pd.Timedelta("1h"), T0 + pd.Timedelta("2h")],
        "conv_rate": [0.1, 0.2, 0.3],
        "trips": [1, 2, 3],
    }
)
THREE_AM = dt.datetime(2026, 1, 1, 3, tzinfo=dt.UTC)


def _first_version() -> None:
    @features_api.feature_view(entity="driver", timestamp="event_ts", ttl="2h")
    def driver_stats() -> pd.DataFrame:
        """Conversion and trips per driver."""
        return STATS  # not recorded: comments are no part of a definition


def _second_version() -> None:
    @features_api.feature_view(entity="driver", timestamp="event_ts", ttl="3h")
    def driver_stats() -> pd.DataFrame:
        frame = STATS.assign(trips=STATS["trips"] * 2.0, acc_rate=STATS["conv_rate"] / 2)
        return frame[frame["conv_rate"] > 0]


@pytest.fixture
def views(home: Path) -> None:
    """driver_stats@1 (TTL 2h), @2 (TTL 3h, trips as double, acc_rate added); model eta/1
    trained from a training set of @2; @1 materialised up to 03:00 on 2026-01-01, long ago."""
    from sklearn.dummy import DummyClassifier

    features_api.entity("driver", keys="driver_id")
    _first_version()
    _second_version()
    orders = pd.DataFrame(
        {"driver_id": [1001, 1002], "event_timestamp": [THREE_AM] * 2, "label": [0, 1]}
    )
    with nbm.start_run("train") as run:
        train = features_api.training_set(orders, ["driver_stats:conv_rate"])
        run.log_model(DummyClassifier().fit(train[["conv_rate"]], train["label"]), "m")
    nbm.register_model(run.run_id, "eta")
    features_api.materialize("driver_stats@1", end=THREE_AM)


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "80"})
    assert result.exit_code == code, result.output
    return result.output


def _fits(out: str) -> bool:
    return max(len(line) for line in out.splitlines()) <= 80


def test_features_list_shows_each_view_stale_past_its_ttl_in_80_columns(views):
    out = invoke("features", "list")
    header, row = out.splitlines()[:2]
    assert header.split()[:7] == ["name", "latest", "entity", "ttl", "online", "stale", "models"]
    assert row.split()[:2] == ["driver_stats", "2"] and "3 h 00 min" in row
    assert " days " in row and " true " in row and "eta/1" in row
    assert _fits(out)
    wide = invoke("features", "list", "--columns", "name,features,keys")
    assert "conv_rate, trips, acc_rate" in wide and "driver_id" in wide


def test_features_show_has_code_versions_diff_freshness_and_models(views):
    out = invoke("features", "show", "driver_stats")
    assert out.startswith("view         driver_stats@2 (of 2 versions)\n")
    assert "  acc_rate   double" in out and "ttl          3 h 00 min" in out
    code = "code (as recorded: no comments, docstring or decorator)\n  def driver_stats() -> "
    assert code + "pd.DataFrame:" in out
    changed = "ttl 2 h 00 min -> 3 h 00 min; code; + acc_rate (double); trips int64 -> double"
    assert " ".join(out.split("\nversions\n")[1].split()).count(changed) == 1
    diff = out.split("definition diff driver_stats@1 -> driver_stats@2\n")[1]
    assert "  -ttl        2 h 00 min\n  +ttl        3 h 00 min" in diff
    assert "  -  trips: int64\n  +  trips: double\n  +  acc_rate: double" in diff
    assert "  -      return STATS\n" in diff and "Conversion" not in out
    freshness = out.split("freshness (the version online reads use)\n")[1]
    assert "materialised  driver_stats@1 at " in freshness and "3 read, 2 written" in freshness
    assert "over the TTL of 2 h 00 min: all values expired" in freshness
    assert "(driver_stats@2 is not materialised yet)" in freshness
    assert out.endswith("used by models\n  eta/1 (from @2)\n") and _fits(out)


def test_the_code_shown_in_80_columns_is_the_recorded_code(views):
    """The long line of @2 is wrapped inside its brackets: it parses to the recorded tree."""
    out = invoke("features", "show", "driver_stats")
    code = out.split("decorator)\n", 1)[1].split("\n\n", 1)[0]
    assert "\n          acc_rate=STATS['conv_rate'] / 2)" in code
    tree = ast.parse(code.replace("\n  ", "\n")[2:]).body[0]
    assert isinstance(tree, ast.FunctionDef)
    tree.name = "_"
    recorded = features_api.get_feature_view("driver_stats@2").source
    assert ast.dump(tree) == recorded


def test_features_show_an_old_version_against_a_later_one(views):
    out = invoke("features", "show", "driver_stats@1", "--against", "2")
    assert out.startswith("view         driver_stats@1 (of 2 versions)")
    assert "definition diff driver_stats@2 -> driver_stats@1" in out
    assert "  +  trips: int64" in out and "used by models\n  eta/1 (from @2)" in out


def test_features_materialize_goes_on_from_the_last_end_and_says_how_fresh(views):
    out = invoke("features", "materialize", "driver_stats@1", "--end", "2026-01-01T05:00")
    said = " ".join(out.split())
    assert said.startswith(
        "driver_stats@1: 0 rows read (2026-01-01 03:00:00 UTC to 2026-01-01 05:00:00 UTC)"
    )
    assert re.search(r"values: \d+\.\d days, over the TTL of 2 h 00 min: all values expired", said)
    assert _fits(out)
    fresh = invoke("features", "materialize", "driver_stats")
    assert fresh.startswith("driver_stats@2: 3 rows read (the start to ")
    assert "within the TTL of 3 h 00 min" in " ".join(fresh.split())
    assert "not materialised yet" not in invoke("features", "show", "driver_stats")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["show", "nope"], 1, "No feature view 'nope'; known: driver_stats."),
        (["show", "driver_stats@x"], 1, "after '@' put a version number, e.g. driver_stats@2"),
        (["show", "driver_stats", "--against", "9"], 1, "driver_stats has no version 9 (has 1, 2)"),
        (["materialize", "driver_stats", "--end", "yesterday"], 2, "'yesterday' is not an ISO"),
        (["materialize", "driver_stats@7"], 1, "No feature view driver_stats@7; known"),
        (["materialize", "driver_stats@x"], 1, "after '@' put a version number"),
    ],
)
def test_features_bad_input_is_one_clean_line(views, args, code, message):
    out = invoke("features", *args, code=code)
    assert message in " ".join(out.split()) and "Traceback" not in out


def test_features_list_without_views_says_how_to_define_one(empty_store):
    assert invoke("features", "list") == (
        "No feature views; define one with @nbmlops.feature_view(...).\n"
    )


def test_panel_lists_views_with_dtypes_and_the_stale_age_in_red(views):
    panel = features_panel()
    static = panel._repr_mimebundle_()["text/html"]
    assert ">driver_stats@2<" in static and ">driver (driver_id)<" in static
    assert ">conv_rate: double, trips: double, acc_rate: double<" in static
    assert ">3 h 00 min<" in static and ">function<" in static and ">eta/1<" in static
    assert re.search(f"{STALE}'>\\d+\\.\\d days<", static)  # the age, in red
    assert repr(panel) == "<FeaturesPanel: 1 views>"


def test_panel_shows_a_view_versions_diff_freshness_and_models(views):
    panel = features_panel("driver_stats")
    assert "driver_stats: 2 versions" in panel.versions_html.value
    assert ">first version<" in panel.versions_html.value
    assert "acc_rate (double); trips int64 -&gt; double" in panel.versions_html.value
    assert "def driver_stats() -&gt; pd.DataFrame:" in panel.definition_html.value
    assert "driver_stats@1 → driver_stats@2" in panel.diff_html.value
    assert "+ttl        3 h 00 min" in panel.diff_html.value
    assert STALE in panel.freshness_html.value and "all values expired" in panel.to_html()
    assert "driver_stats@2 is not materialised yet" in panel.freshness_html.value
    assert "eta/1 (from @2)" in panel.models_html.value
    panel.old.value = "driver_stats@2"
    assert "the same version" in panel.diff_html.value


def test_panel_freshness_within_the_ttl_is_not_red(views):
    features_api.materialize("driver_stats")
    panel = features_panel("driver_stats")
    assert "within the TTL of 3 h 00 min" in panel.freshness_html.value
    assert STALE not in panel.freshness_html.value and "not materialised" not in panel.to_html()


def test_panel_on_an_empty_folder_creates_no_store(tmp_path, monkeypatch):
    monkeypatch.delenv("NBMLOPS_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    nbm.set_store(None)
    panel = features_panel()
    assert "no feature views yet" in panel.to_html() and list(tmp_path.iterdir()) == []


def test_panel_for_an_unknown_view_lists_the_known(views):
    with pytest.raises(FeatureError, match=r"No feature view 'driver'; known: driver_stats\."):
        features_panel("driver")


def test_the_features_magic_renders_the_panel_in_a_real_shell(views, shell):
    every = shell.run_line_magic("features", "")
    assert repr(every) == "<FeaturesPanel: 1 views>"
    result = shell.run_cell("%features driver_stats")
    bundle = result.result._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "driver_stats: 2 versions" in bundle["text/html"]


@pytest.mark.parametrize(
    ("recorded", "shown"),
    [
        ("code:('00', [], (), ())", None),  # compiled code only: nothing readable
        ("__import__('os').system('touch x')", None),  # never evaluated
        ("Lambda(args=arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], "
         "defaults=[]), body=Constant(value=inf))", "lambda: 1e309"),
    ],
)  # fmt: skip
def test_readable_code_rebuilds_only_syntax_trees(recorded, shown, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert readable_code(recorded) == shown and list(tmp_path.iterdir()) == []


def test_wrapped_code_keeps_strings_and_meaning():
    line = "    x = f(a, 'a, long (string)', [1, 2, 3], {'k': g(b, c)}, d=e(h, i, j))"
    wrapped = wrap_code([line], 30)
    assert max(len(w) for w in wrapped) <= 30 and "'a, long (string)'" in "".join(wrapped)
    assert ast.dump(ast.parse("\n".join(wrapped).strip())) == ast.dump(ast.parse(line.strip()))


DEFINE = (
    "import nbmlops as nbm, pandas as pd\n"
    "T0 = pd.Timestamp('2026-01-01', tz='UTC')\n"
    "stats = pd.DataFrame({'driver_id': [1, 2], 'event_ts': [T0, T0], 'conv_rate': [0.1, 0.2]})\n"
    "nbm.entity('driver', keys='driver_id')\n"
    "@nbm.feature_view(entity='driver', timestamp='event_ts', ttl='2h')\n"
    "def driver_stats():\n"
    "    return stats\n"
    "@nbm.feature_view(entity='driver', timestamp='event_ts', ttl='3h')\n"
    "def driver_stats():\n"
    "    return stats.assign(trips=[3, 4])\n"
    "nbm.materialize('driver_stats@1', end=T0)\n"
    "from sklearn.dummy import DummyClassifier\n"
    "orders = pd.DataFrame({'driver_id': [1, 2], 'event_timestamp': [T0, T0], 'y': [0, 1]})\n"
    "with nbm.start_run('train') as run:\n"
    "    train = nbm.training_set(orders, ['driver_stats:conv_rate', 'driver_stats:trips'])\n"
    "    run.log_model(DummyClassifier().fit(train[['conv_rate', 'trips']], train['y']), 'm')\n"
    "nbm.register_model(run.run_id, 'eta')"
)


@pytest.mark.browser
def test_the_features_panel_renders_in_jupyterlab(tmp_path, monkeypatch):
    """In a real JupyterLab the panel renders as a widget, its stale age in red (the picture
    for the docs: NBMLOPS_SCREENSHOTS=1)."""
    monkeypatch.delenv("NBMLOPS_HOME", raising=False)
    cells = [new_code_cell(s) for s in ("%load_ext nbmlops", DEFINE, "%features driver_stats")]
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(
        new_notebook(cells=cells, metadata={"kernelspec": kernelspec}), tmp_path / "f.ipynb"
    )
    with lab_server(tmp_path) as lab, chromium_page(height=2000) as page:
        open_notebook(page, lab, "f.ipynb")
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        code_cells = page.locator(".jp-Notebook .jp-CodeCell")
        wait_for_execution(page, code_cells.nth(2), 3)
        panel = code_cells.nth(2).locator(".jp-OutputArea-output")
        panel.locator("text=driver_stats: 2 versions").wait_for(timeout=20_000)
        assert panel.locator("text=all values expired").count() == 1
        assert panel.locator("text=+ trips (int64)").count() >= 1
        assert panel.locator("text=eta/1 (from @2)").count() == 1
        if os.environ.get("NBMLOPS_SCREENSHOTS") == "1":
            panel.screenshot(path=str(Path(__file__).parents[1] / "docs/img/features_panel.png"))
