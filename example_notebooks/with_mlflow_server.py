"""Run a command beside a local MLflow tracking server: ``make demo``'s team step.

``python example_notebooks/with_mlflow_server.py CMD [ARGS...]`` starts ``mlflow server`` from
the side venv ``.venv-mlflow`` (created on first use) on 127.0.0.1, a free port, an SQLite
backend and artifact root in a temporary folder, as tests/mlflow_server.py does for the tests;
runs CMD with ``MLFLOW_TRACKING_URI`` pointing at it and ``NBMLOPS_DEMO_MLFLOW_PYTHON`` naming
the side venv's Python (MLflow's own client); stops the server; exits with CMD's status. A team
has its own server instead (README, "Team use").
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from mlflow_server import mlflow_venv, running_server  # the tests' own server


def main(command: list[str]) -> int:
    with (
        tempfile.TemporaryDirectory(prefix="nbmlops-mlflow-") as folder,
        running_server(Path(folder)) as server,
    ):
        print(f"MLflow tracking server at {server.url}", flush=True)
        env = os.environ | {
            "MLFLOW_TRACKING_URI": server.url,
            "NBMLOPS_DEMO_MLFLOW_PYTHON": str(mlflow_venv() / "bin" / "python"),
        }
        return subprocess.run(command, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
