"""The peers the tests run for real (an MLflow tracking server, DVC) live in venvs of their own:
never dependencies of nbmlops nor installed into its venv, whose pins theirs would fight.

``side_venv(".venv-dvc", "dvc>=3,<4", "dvc")`` is ``<repo>/.venv-dvc/bin/dvc`` (or the venv
``$NBMLOPS_VENV_DVC`` names), created with ``python -m venv`` + ``pip install`` when absent
(``make test`` creates them first) and reused afterwards. If it cannot be created the test fails
saying why: a test that skips a peer proves nothing.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def side_venv(folder: str, spec: str, program: str) -> Path:
    """The path of ``program`` in the side venv ``folder`` that has ``spec`` installed."""
    override = os.environ.get(f"NBMLOPS_VENV_{program.upper()}")
    venv = Path(override) if override else REPO / folder
    found = venv / "bin" / program
    if found.exists():
        return found
    # pytest-xdist workers ask at once: one creates it, the others wait for it.
    with open(venv.with_name(venv.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not found.exists():
            _create(venv, spec, program)
    return found


def _create(venv: Path, spec: str, program: str) -> None:
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *spec.split()],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(
            f"Could not create the {program} venv at {venv} ({' '.join(exc.cmd)} failed: "
            f"{(exc.stderr or '')[-2000:]}). Create it by hand (python -m venv {venv} && "
            f"{venv}/bin/pip install {' '.join(map(repr, spec.split()))}) or point "
            f"NBMLOPS_VENV_{program.upper()} at a venv that has {program}."
        ) from exc
