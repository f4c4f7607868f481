from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import timeit

import pytest

from nbmlops.capture.analysis import CellAnalysis, MetricCandidate, analyze_cell


def cell(source: str) -> CellAnalysis:
    # The caller blanks the `%%track` line, so real cells start with an empty line 1.
    return analyze_cell("\n" + textwrap.dedent(source).strip("\n") + "\n")


def params(source: str) -> dict[str, tuple[object, int]]:
    return {p.name: (p.value, p.line) for p in cell(source).params}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("lr = 0.01", {"lr": (0.01, 2)}),
        ("neg = -3\nlayers = [64, 32]", {"neg": (-3, 2), "layers": ([64, 32], 3)}),
        ("shape = (3, 4)", {"shape": ([3, 4], 2)}),
        ("cfg = {'a': 1, 2: (1,), None: True}", {"cfg": ({"a": 1, "2": [1], "null": True}, 2)}),
        ("tags = {'b', 'a'}", {"tags": (["a", "b"], 2)}),
        ("a, b = 1, 'x'", {"a": (1, 2), "b": ("x", 2)}),
        ("a = b = 3", {"a": (3, 2), "b": (3, 2)}),
        ("lr: float = 0.5", {"lr": (0.5, 2)}),
        ("z = 1 + 2j\nraw = b'x'", {"z": ("(1+2j)", 2), "raw": ("b'x'", 3)}),
        ("lr = 0.1\nlr = 0.2", {"lr": (0.2, 3)}),
    ],
)
def test_literal_params(source, expected):
    assert params(source) == expected
    for value, _line in expected.values():
        assert json.loads(json.dumps(value)) == value


@pytest.mark.parametrize(
    "source",
    [
        "lr = 0.1\nlr = schedule(lr)",  # last assignment is not a literal
        "lr = 0.1\nlr += 1",
        "lr = 0.1\nfor lr in grid:\n    pass",
        "lr = 0.1\nif big:\n    lr = 0.01",  # a later nested binding makes it uncertain
        "if big:\n    lr = 0.01",  # only direct statements of the cell are params
        "def f():\n    lr = 0.01",
        "layers = [64]\nlayers.append(32)",  # a mutated list
        "cfg = {}\ncfg['a'] = 1",
        "lr = base * 2",
        "a, b = f()",
    ],
)
def test_not_literal_params(source):
    assert "lr" not in params(source)
    assert not params(source)


def test_read_only_method_keeps_a_dict_param():
    found = cell("cfg = {'C': 1.0}\nmodel = SVC(**cfg)\nprint(cfg.get('C'), list(cfg.items()))")
    assert [(p.name, p.value) for p in found.params] == [("cfg", {"C": 1.0})]
    assert found.mutated["cfg"] == 4


@pytest.mark.parametrize(
    ("source", "loads"),
    [
        ("y = x + 1", {"x": 2}),
        ("x = 1\ny = x + 1", {}),  # assigned, then read
        ("print(x)\nx = 1", {"print": 2, "x": 2}),  # read, then assigned
        ("x = x + 1", {"x": 2}),
        ("total += 1", {"total": 2}),
        ("for i in items:\n    acc = acc + i", {"items": 2, "acc": 3}),
        ("ys = [v * k for v in vs]", {"vs": 2, "k": 2}),
        ("def f(a):\n    b = a + c\n    return b", {"c": 3}),
        ("def f():\n    return g()\ng = 1", {"g": 3}),  # bound after the def statement
        ("g = 1\ndef f():\n    return g", {}),
        ("import numpy as np\nnp.mean(v)", {"v": 3}),
        ("with open(p) as fh:\n    fh.read()", {"open": 2, "p": 2}),
        ("if (n := len(v)) > 1:\n    print(n)", {"len": 2, "v": 2, "print": 3}),
        ("class A:\n    k = 1\n    def m(self):\n        return k", {"k": 5}),
    ],
)
def test_loads(source, loads):
    assert cell(source).loads == loads


@pytest.mark.parametrize(
    ("source", "stores"),
    [
        ("x = 1\nx = 2", {"x": 3}),
        ("a, (b, *c) = v", {"a": 2, "b": 2, "c": 2}),
        ("n += 1\nm: int = 2\nk: int", {"n": 2, "m": 3}),
        ("for i in r:\n    j = i", {"i": 2, "j": 3}),
        ("with f() as (a, b):\n    pass", {"a": 2, "b": 2}),
        ("import os.path\nfrom x import *\nfrom x import y as z", {"os": 2, "z": 4}),
        ("def f(q):\n    w = q\nclass C:\n    v = 1", {"f": 2, "C": 4}),
        ("print(n := 3)\n[m := i for i in r]", {"n": 2, "m": 3}),
        ("try:\n    pass\nexcept E as err:\n    pass", {"err": 4}),
    ],
)
def test_stores(source, stores):
    assert cell(source).stores == stores


@pytest.mark.parametrize(
    ("source", "fitted"),
    [
        ("model.fit(X, y)", {"model": 2}),
        ("scaler.fit_transform(X)\nkm.fit_predict(X)", {"scaler": 2, "km": 3}),
        ("sgd.partial_fit(X, y)\nsgd.partial_fit(X, y)", {"sgd": 3}),
        ("model = RandomForestClassifier().fit(X, y)", {"model": 2}),
        ("pipe = make_pipeline(StandardScaler(), SVC()).fit(X, y)", {"pipe": 2}),
        ("Xt = StandardScaler().fit_transform(X)", {}),  # returns data, not the estimator
        ("def train(m):\n    m.fit(X, y)", {}),  # a parameter, not a cell name
        ("for m in models:\n    m.fit(X, y)", {"m": 3}),
    ],
)
def test_fitted(source, fitted):
    assert cell(source).fitted == fitted


def test_constructed():
    found = cell("clf = RandomForestClassifier(n_estimators=50)\nscaler, k = Scaler(), 3\nd = x")
    assert found.constructed == {"clf": 2, "scaler": 3}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("acc = accuracy_score(y, p)", ("acc", "call", ("accuracy_score",))),
        ("f1 = metrics.f1_score(y, p)", ("f1", "call", ("metrics", "f1_score"))),
        ("m = sklearn.metrics.r2_score(y, p)", ("m", "call", ("sklearn", "metrics", "r2_score"))),
        ("acc = float(accuracy_score(y, p))", ("acc", "call", ("accuracy_score",))),
        ("a = round(abs(log_loss(y, p)), 3)", ("a", "call", ("log_loss",))),
        ("rmse = np.sqrt(mean_squared_error(y, p))", ("rmse", "call", ("mean_squared_error",))),
        ("cv = cross_val_score(m, X, y).mean()", ("cv", "call", ("cross_val_score",))),
        ("r2 = model.score(X, y)", ("r2", "score", None)),
        ("r2 = float(make().score(X, y))", ("r2", "score", None)),
    ],
)
def test_metrics(source, expected):
    name, rule, func = expected
    assert cell(source).metrics == (MetricCandidate(name, 2, rule, func),)


@pytest.mark.parametrize(
    "source",
    ["msg = f'{acc:.2f}'", "df = pd.read_csv('x.csv')", "n = len(y)", "s = acc", "x = a.b"],
)
def test_not_metrics(source):
    assert cell(source).metrics == ()


@pytest.mark.parametrize(
    ("source", "mutated"),
    [
        ("df.dropna(inplace=True)", {"df": 2}),
        ("df.loc[df.a > 0, 'b'] = 1", {"df": 2}),
        ("x = 1\ndf['c'] = x\ndf['d'] = x", {"df": 3}),
        ("del df['c']", {"df": 2}),
        ("obj.attr = 1\nobj.attr += 1", {"obj": 2}),
        ("df['a'].fillna(0, inplace=True)", {"df": 2}),
        ("def clean(d):\n    d.pop('a')", {}),
        ("def clean():\n    data.pop('a')", {"data": 3}),
        ("y = df['a'] + df.b", {}),
    ],
)
def test_mutated(source, mutated):
    assert cell(source).mutated == mutated


@pytest.mark.parametrize(
    "source",
    [
        "x = 1\n%timeit f(x)\ny = x",
        "x = 1\n!ls -la\ny = x",
        "x = 1\nfiles = !ls\ny = x",
        "x = 1\nenv = %env\ny = x",
        "x = 1\nx?\ny = x",
        "x = 1\n%time f(x, \\\n  2)\ny = x",  # a continued magic spans two lines
        "\n\nx = 1\n%timeit f(x)\ny = x",  # leading blank lines are dropped by IPython
    ],
)
def test_ipython_syntax_keeps_line_numbers(source):
    found = analyze_cell(source)
    first = source.splitlines().index("x = 1") + 1
    assert found.params[0].name == "x" and found.params[0].line == first
    assert found.stores["y"] == len(source.splitlines())
    assert "get_ipython" not in found.loads


@pytest.mark.parametrize("source", ["x = = 1", "def f(:\n", "x = 1\n  y = 2", "\0", "(" * 300])
def test_unparseable_gives_empty(source):
    assert analyze_cell(source) == CellAnalysis()


def test_results_are_independent_copies():
    first = analyze_cell("\nx = y\n")
    first.loads.clear()
    assert analyze_cell("\nx = y\n").loads == {"y": 2}


def test_import_stays_light():
    code = "import sys, nbmlops.capture.analysis; print(sorted(set(sys.modules) & {'IPython'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_speed_of_a_fifty_line_cell():
    # ~1.5 ms on the 2-core VM of benchmarks/README.md; the budget catches a 10x regression.
    source = "\n" + "\n".join(f"v{i} = f(v{i - 1}, lr={i})\nm{i}.fit(X, y)" for i in range(25))
    sources = iter([f"{source}\n# {i}" for i in range(60)])  # distinct: the cache must miss
    timings = timeit.repeat(lambda: analyze_cell(next(sources)), number=20, repeat=3)
    assert min(timings) / 20 < 0.015
