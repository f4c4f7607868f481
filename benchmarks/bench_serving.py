"""Serving benchmark: ``nbmlops serve`` against ``mlflow models serve --env-manager local``.

Run it with MLflow installed in a separate virtualenv (it must not change the project's)::

    python3 -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install "mlflow>=3" scikit-learn
    .venv/bin/python benchmarks/bench_serving.py --mlflow-python /tmp/mlflow-venv/bin/python

Both servers get the same models (a LogisticRegression and a RandomForestClassifier of 100 trees
of depth 10, both fitted on 10k x 20), one worker process each, on 127.0.0.1, and the same
bounded load generator: keep-alive ``http.client`` connections in threads of this process, each
sending JSON ``dataframe_split`` requests of 1 or 100 rows, for a fixed time. Reported per case:
p50/p95/p99 latency, requests/s, and each server's overhead beside ``predict`` (p50 minus the
in-process ``predict`` of the same rows from a DataFrame, the floor any server pays). Also: the
cold start (process start to the first 200 from ``/ping``) and nbmlops' throughput with the
prediction log off (``--no-log``) against on (the default: every request logged).

Targets (issue #14): LogisticRegression single-row p50 <= 1/3 of MLflow's and throughput with
16 clients >= 4x; the forest's overhead <= 1/3 of MLflow's and throughput >= 2x; with every
request logged, throughput within 10% of logging off; cold start <= 1/2 of MLflow's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pickle
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# The servers' own output, shown with BENCH_SERVING_LOG=1 (to see why one did not start).
LOG = sys.stderr if os.environ.get("BENCH_SERVING_LOG") else subprocess.DEVNULL
COLUMNS = [f"f{i}" for i in range(20)]
# The `nbmlops` group with serve attached (the same code path as the console script).
NBMLOPS = (
    "import sys\nfrom nbmlops.cli import main\nfrom nbmlops.serving.commands import serve\n"
    "if 'serve' not in main.commands:\n    main.add_command(serve)\n"
    "sys.argv[0] = 'nbmlops'\nif __name__ == '__main__':\n    main()\n"
)
MLFLOW_SAVE = """
import pickle, sys
import mlflow.sklearn
from mlflow.models import infer_signature
with open(sys.argv[1], "rb") as f, open(sys.argv[2], "rb") as g:
    model, X, out = pickle.load(f), pickle.load(g), sys.argv[3]
mlflow.sklearn.save_model(model, out, signature=infer_signature(X, model.predict(X)),
                          serialization_format="cloudpickle")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ping(port: int, process: subprocess.Popen[bytes], timeout: float = 120.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError("server did not answer /ping")


def body(rows: int, X: Any) -> bytes:
    data = X.iloc[:rows].to_numpy().tolist()
    return json.dumps({"dataframe_split": {"columns": COLUMNS, "data": data}}).encode()


def load(port: int, payload: bytes, clients: int, seconds: float) -> dict[str, float]:
    """Requests from ``clients`` keep-alive connections for ``seconds``; latency quantiles."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop = time.perf_counter() + seconds
    headers = {"Content-Type": "application/json"}

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            conn.request("POST", "/invocations", payload, headers)
            response = conn.getresponse()
            response.read()
            latencies[i].append(time.perf_counter() - t0)
            if response.status != 200:
                errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    every = sorted(x for per in latencies for x in per)
    q = statistics.quantiles(every, n=100)
    return {
        "p50": q[49] * 1000,
        "p95": q[94] * 1000,
        "p99": q[98] * 1000,
        "rps": len(every) / elapsed,
        "errors": sum(errors),
    }


def predict_ms(model: Any, X: Any, rows: int) -> float:
    frame = X.iloc[:rows].copy()
    for _ in range(20):
        model.predict(frame)
    times = []
    for _ in range(200 if rows == 1 else 50):
        t0 = time.perf_counter()
        model.predict(X.iloc[:rows].copy())
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def start(cmd: list[str], port: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], float]:
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=LOG)
    return process, wait_ping(port, process)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mlflow-python", help="python of a venv with mlflow (else skipped)")
    parser.add_argument("--seconds", type=float, default=4.0, help="per case")
    parser.add_argument("--quick", action="store_true", help="1 s per case")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else args.seconds

    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    import nbmlops as nbm

    X_arr, y = make_classification(n_samples=10_000, n_features=20, random_state=0)
    X = pd.DataFrame(X_arr, columns=COLUMNS)
    models = {
        "logreg": LogisticRegression(max_iter=1000).fit(X, y),
        "forest": RandomForestClassifier(100, max_depth=10, random_state=0, n_jobs=1).fit(X, y),
    }
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    env = {k: v for k, v in os.environ.items() if k not in ("NBMLOPS_HOME",)}
    env.update(
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        PYTHONWARNINGS="ignore",
    )
    store = work / ".nbmlops"
    for name, model in models.items():
        with nbm.start_run(store=store) as run:
            nbm.log_dataset(X, "X_train")
            nbm.log_model(model, "model")
        version = nbm.register_model(run.run_id, name, store=store).version
        nbm.set_alias(name, "champion", version, store=store)
    script = work / "nbmlops_cli.py"
    script.write_text(NBMLOPS)
    rows_cases = (1, 100)
    clients_cases = (1, 16)
    results: dict[tuple[str, str, int, int], dict[str, float]] = {}
    cold: dict[str, list[float]] = {}
    floors = {(m, r): predict_ms(models[m], X, r) for m in models for r in rows_cases}

    def nbmlops_cmd(name: str, port: int, *extra: str) -> list[str]:
        return [
            sys.executable,
            str(script),
            "--store",
            str(store),
            "serve",
            f"{name}@champion",
            "--port",
            str(port),
            *extra,
        ]

    def mlflow_cmd(name: str, port: int) -> list[str]:
        assert args.mlflow_python
        return [
            str(Path(args.mlflow_python).parent / "mlflow"),
            "models",
            "serve",
            "-m",
            str(work / f"mlflow-{name}"),
            "--env-manager",
            "local",
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
        ]

    sides = ["nbmlops", "nbmlops-nolog"]
    if args.mlflow_python:
        sides.append("mlflow")
        for name, model in models.items():
            (work / f"{name}.pkl").write_bytes(pickle.dumps(model))
        (work / "X.pkl").write_bytes(pickle.dumps(X.iloc[:100]))
        for name in models:
            subprocess.run(
                [
                    args.mlflow_python,
                    "-c",
                    MLFLOW_SAVE,
                    str(work / f"{name}.pkl"),
                    str(work / "X.pkl"),
                    str(work / f"mlflow-{name}"),
                ],
                env=env,
                check=True,
                capture_output=True,
            )
    for side in sides:
        for name in models:
            port = free_port()
            if side == "mlflow":
                cmd = mlflow_cmd(name, port)
            else:
                cmd = nbmlops_cmd(name, port, *(["--no-log"] if side == "nbmlops-nolog" else []))
            side_env = env
            if side == "mlflow":  # it execs `uvicorn` from PATH: its own venv's
                bindir = str(Path(args.mlflow_python).parent)
                side_env = {**env, "PATH": f"{bindir}{os.pathsep}{env.get('PATH', '')}"}
            process, startup = start(cmd, port, side_env)
            cold.setdefault(side, []).append(startup)
            try:
                load(port, body(1, X), 1, 0.5)  # warm up
                for rows in rows_cases:
                    for clients in clients_cases:
                        if side == "nbmlops-nolog" and clients == 1:
                            continue
                        results[(side, name, rows, clients)] = load(
                            port, body(rows, X), clients, seconds
                        )
            finally:
                stop(process)
    report(results, floors, cold, sides)
    shutil.rmtree(work, ignore_errors=True)


def report(
    results: dict[tuple[str, str, int, int], dict[str, float]],
    floors: dict[tuple[str, int], float],
    cold: dict[str, list[float]],
    sides: list[str],
) -> None:
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(
        "| model | rows | clients | server | p50 ms | p95 ms | p99 ms | req/s | overhead p50 ms "
        "| predict ms | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (side, name, rows, clients), r in sorted(
        results.items(), key=lambda kv: (*kv[0][1:], kv[0][0])
    ):
        floor = floors[(name, rows)]
        print(
            f"| {name} | {rows} | {clients} | {side} | {r['p50']:.2f} | {r['p95']:.2f} | "
            f"{r['p99']:.2f} | {r['rps']:.0f} | {r['p50'] - floor:.2f} | {floor:.2f} | "
            f"{r['errors']:.0f} |"
        )
    for side in sides:
        print(f"cold start {side}: " + ", ".join(f"{s:.2f} s" for s in cold[side]))
    if "mlflow" in sides:
        print()
        for name in ("logreg", "forest"):
            for rows in (1, 100):
                ours, theirs = (
                    results[("nbmlops", name, rows, 1)],
                    results[("mlflow", name, rows, 1)],
                )
                floor = floors[(name, rows)]
                t16 = (
                    results[("nbmlops", name, rows, 16)]["rps"]
                    / results[("mlflow", name, rows, 16)]["rps"]
                )
                over = ours["p50"] - floor
                ratio = f"{(theirs['p50'] - floor) / over:.1f}x" if over > 0 else "n/a (noise)"
                print(
                    f"{name} {rows} row(s): p50 ratio mlflow/nbmlops "
                    f"{theirs['p50'] / ours['p50']:.1f}x, overhead ratio {ratio}, "
                    f"throughput (16 clients) {t16:.1f}x"
                )
    for name in ("logreg", "forest"):
        for rows in (1, 100):
            on, off = (
                results[("nbmlops", name, rows, 16)],
                results[("nbmlops-nolog", name, rows, 16)],
            )
            print(
                f"logging cost {name} {rows} row(s), 16 clients: {on['rps']:.0f} vs "
                f"{off['rps']:.0f} req/s ({(1 - on['rps'] / off['rps']) * 100:+.1f}%)"
            )


if __name__ == "__main__":
    main()
