from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import nbmlops as nbm

pytestmark = pytest.mark.slow

WRITER = """
import sys, nbmlops as nbm
worker = int(sys.argv[1])
for i in range(200):
    with nbm.start_run(f"w{worker}-{i}", experiment="load") as run:
        run.log_params({"worker": worker, "i": i})
        run.log_metrics({f"m{k}": worker * 1000 + i + k / 100 for k in range(20)})
"""


def test_four_processes_writing_at_once_lose_nothing(home: Path, tmp_path: Path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {"NBMLOPS_HOME": str(home), "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen([sys.executable, str(script), str(w)], env=env, stderr=subprocess.PIPE)
        for w in range(4)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    frame = nbm.runs(experiment="load")
    assert len(frame) == 800 and set(frame["status"]) == {"finished"}
    assert frame.filter(like="metrics.").notna().all().all()
    assert frame["name"].nunique() == 800
    counts = nbm.sql("SELECT count(*) AS n FROM metrics")["n"].item()
    assert counts == 800 * 20
