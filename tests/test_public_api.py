from __future__ import annotations

import pkgutil
import subprocess
import sys

import nbmlops


def test_all_is_sorted_and_lists_every_public_name():
    assert nbmlops.__all__ == sorted(nbmlops.__all__)
    submodules = {m.name for m in pkgutil.iter_modules(nbmlops.__path__)}
    public = {n for n in vars(nbmlops) if not n.startswith("_") and n not in submodules}
    assert public == set(nbmlops.__all__) - {"__version__"}


def test_import_stays_light():
    heavy = ["pandas", "numpy", "matplotlib", "sklearn", "scipy", "jupyter_server", "sqlite_utils"]
    code = f"import sys, nbmlops; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
