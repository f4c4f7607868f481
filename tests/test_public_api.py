from __future__ import annotations

import inspect
import pkgutil
import subprocess
import sys

import pytest

import nbmlops
from nbmlops import api, errors


def test_all_is_sorted_and_lists_every_public_name():
    assert nbmlops.__all__ == sorted(nbmlops.__all__)
    submodules = {m.name for m in pkgutil.iter_modules(nbmlops.__path__)}
    public = {n for n in dir(nbmlops) if not n.startswith("_") and n not in submodules}
    assert public == set(nbmlops.__all__) - {"__version__"}


def test_api_all_is_sorted_and_re_exported_from_the_package():
    assert api.__all__ == sorted(api.__all__)
    assert {n for n in dir(api) if not n.startswith("_") and callable(getattr(api, n))} == set(
        api.__all__
    )
    assert all(getattr(nbmlops, n) is getattr(api, n) for n in api.__all__)


def test_every_error_and_warning_is_exported():
    raised = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, Exception | Warning)
        if value.__module__ == errors.__name__
    }
    assert raised and raised <= set(nbmlops.__all__)


@pytest.mark.parametrize("name", sorted(set(nbmlops.__all__) - {"__version__", "StoreLike"}))
def test_every_public_name_has_a_docstring(name: str):
    assert inspect.getdoc(getattr(nbmlops, name)), f"nbmlops.{name} has no docstring"


def test_lazy_types_load_on_first_use_and_are_listed():
    code = (
        "import sys, nbmlops; before = 'nbmlops.drift.report' in sys.modules; "
        "print(before, 'DriftReport' in dir(nbmlops), nbmlops.DriftReport.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "DriftReport"]


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'evaluate_rules'"):
        nbmlops.evaluate_rules  # noqa: B018


def test_names_load_their_module_on_first_use_only():
    code = (
        "import sys, nbmlops; before = [m for m in ('nbmlops.api._runs', 'nbmlops.registry') "
        "if m in sys.modules]; nbmlops.start_run; "
        "print(before, 'nbmlops.api._runs' in sys.modules, 'nbmlops.registry' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True", "False"]


def test_import_stays_light():
    heavy = ["pandas", "numpy", "matplotlib", "sklearn", "scipy", "jupyter_server", "sqlite_utils"]
    code = f"import sys, nbmlops; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
