# ruff: noqa: F811  (the store fixtures are imported from test_serving and requested by name)
"""The standard-library device client against a real server whose alias moves, and the
``nbmlops serve``/``pull`` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import nbmlops as nbm
from nbmlops import serve
from nbmlops.client import ModelClient, ModelClientError
from nbmlops.serving.commands import pull
from nbmlops.serving.commands import serve as serve_cmd
from test_serving import ROW, _split, model_store, store  # noqa: F401

CLIENT = Path(nbm.__file__).parent / "client.py"


def test_client_imports_only_the_standard_library() -> None:
    code = (
        "import importlib.util, sys\n"
        "before = set(sys.modules)\n"
        f"spec = importlib.util.spec_from_file_location('client', {str(CLIENT)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'client'}))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_client_follows_the_alias_keeps_the_previous_and_rolls_back(
    store: Path, tmp_path: Path
) -> None:
    with serve("m@champion", port=0, store=store) as handle:
        client = ModelClient(handle.url, "m@champion", tmp_path / "cache", device_id="edge-7")
        first = client.get()
        assert client.check() is False  # 304: nothing new
        nbm.set_alias("m", "champion", 2, store=store)
        second = client.get()
    assert client.version == 2 and first.exists() and second.exists()
    mv = nbm.get_model_version("m/2", store=store)
    assert second.read_bytes() == mv.store.objects.path_of(mv.sha256).read_bytes()
    assert client.rollback() == first and client.version == 1
    assert "device edge-7" in nbm.consumers("m", 2, store=store).consumer.tolist()


def test_client_keeps_its_version_when_the_server_is_gone(store: Path, tmp_path: Path) -> None:
    with serve("m@champion", port=0, store=store) as handle:
        client = ModelClient(handle.url, "m@champion", tmp_path / "cache")
        path = client.get()
    assert client.get() == path
    assert "Connection refused" in (client.last_error or "")
    fresh = ModelClient(handle.url, "m@champion", tmp_path / "other")
    with pytest.raises(ModelClientError, match="No version of m@champion on disk"):
        fresh.get()


def test_client_refuses_a_download_that_does_not_match_its_digest(
    store: Path, tmp_path: Path
) -> None:
    mv = nbm.get_model_version("m/2", store=store)
    with serve("m@champion", port=0, store=store) as handle:
        client = ModelClient(handle.url, "m@champion", tmp_path / "cache")
        kept = client.get()
        path = mv.store.objects.path_of(mv.sha256)
        original = path.read_bytes()
        try:
            path.chmod(0o644)
            path.write_bytes(original + b"tampered")
            nbm.set_alias("m", "champion", 2, store=store)
            assert client.get() == kept
        finally:
            path.write_bytes(original)
    assert "the version on disk was kept" in (client.last_error or "")
    assert client.version == 1


def test_client_with_a_token(model_store: Path, tmp_path: Path) -> None:
    with serve("m@champion", port=0, token="t0k", store=model_store) as handle:
        refused = ModelClient(handle.url, "m@champion", tmp_path / "a")
        with pytest.raises(ModelClientError, match="answered 401"):
            refused.check()
        assert ModelClient(handle.url, "m/2", tmp_path / "b", token="t0k").get().exists()


def test_pull_command_downloads_the_version(store: Path, tmp_path: Path) -> None:
    with serve("m@champion", port=0, store=store) as handle:
        result = CliRunner().invoke(
            pull, ["m@champion", "--to", str(tmp_path / "dl"), "--url", handle.url]
        )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("m@champion: version 1 at ")
    state = json.loads((tmp_path / "dl" / "m" / "current.json").read_text())
    assert state["version"] == 1 and Path(state["path"]).exists()


def test_serve_and_pull_have_help() -> None:
    for command in (serve_cmd, pull):
        result = CliRunner().invoke(command, ["--help"])
        assert result.exit_code == 0 and command.help
        assert all(p.help for p in command.params if hasattr(p, "help") and p.name != "ref")


def _nbmlops() -> list[str]:
    return [str(Path(sys.executable).parent / "nbmlops")]


def test_nbmlops_serve_as_a_process_serves_and_records_its_stop(store: Path) -> None:
    process = subprocess.Popen(
        [*_nbmlops(), "--store", str(store), "serve", "m@champion", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NBMLOPS_HOME": str(store)},
    )
    try:
        line = process.stderr.readline() if process.stderr else ""
        url = line.split(" at ")[1].split(" ")[0]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ping").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        response = httpx.post(f"{url}/invocations", json=_split([ROW]))
    finally:
        process.terminate()
        process.wait(30)
    assert response.json() == {"predictions": [1]}
    assert nbm.endpoints("m", store=store).state.tolist() == ["stopped"]


def test_a_server_that_does_not_speak_http_is_a_client_error(tmp_path: Path) -> None:
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_garbage() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            conn.recv(4096)
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
            conn.close()

    threading.Thread(target=answer_garbage, daemon=True).start()
    client = ModelClient(f"http://127.0.0.1:{port}", "m@champion", tmp_path / "models")
    with pytest.raises(ModelClientError, match=r"BadStatusLine"):
        client.check()
    with pytest.raises(ModelClientError, match=r"No version of m@champion on disk"):
        client.get()
    listener.close()
