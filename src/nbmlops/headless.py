"""Execute a notebook headless in a real kernel, with tracking: ``nbmlops execute``.

The kernel is started with this very interpreter (not whatever ``python3`` kernelspec comes
first on the Jupyter path) and is told the notebook's path through ``NBMLOPS_NOTEBOOK``, since
no front end is there to set ``JPY_SESSION_NAME``. Each cell's id goes with its execute request
(``metadata.cellId``, as JupyterLab sends it; nbclient itself sends none), so two cells with the
same source are still two cells.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any


def _this_python_kernel_manager() -> Any:
    from jupyter_client.blocking.client import BlockingKernelClient
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    class CellIdClient(BlockingKernelClient):
        """A client that sends ``cell_id`` with each execute request, as JupyterLab does."""

        cell_id: str | None = None

        def execute(
            self,
            code: str,
            silent: bool = False,
            store_history: bool = True,
            user_expressions: dict[str, Any] | None = None,
            allow_stdin: bool | None = None,
            stop_on_error: bool = True,
        ) -> str:
            content = {
                "code": code,
                "silent": silent,
                "store_history": store_history,
                "user_expressions": user_expressions or {},
                "allow_stdin": self.allow_stdin if allow_stdin is None else allow_stdin,
                "stop_on_error": stop_on_error,
            }
            metadata = {"cellId": self.cell_id} if self.cell_id else {}
            msg = self.session.msg("execute_request", content, metadata=metadata)
            self.shell_channel.send(msg)
            return str(msg["header"]["msg_id"])

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(
                argv=[
                    sys.executable,
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                    "--IPKernelApp.log_level=ERROR",  # not the kernel's own shutdown chatter
                ],
                display_name="Python (nbmlops)",
                language="python",
            )

    # IPC transport: a local kernel needs no TCP port (and ipykernel warns about plain TCP).
    # The socket path must be absolute: the kernel runs in the notebook's folder, the client
    # wherever it was started.
    from jupyter_core.paths import jupyter_runtime_dir

    runtime = Path(jupyter_runtime_dir())
    runtime.mkdir(parents=True, exist_ok=True)
    return KernelManager(
        kernel_name="python3",
        kernel_spec_manager=ThisPython(),
        client_factory=CellIdClient,
        transport="ipc",
        ip=str(runtime / f"nbmlops-{os.getpid()}-{uuid.uuid4().hex[:8]}"),
    )


def execute_notebook(
    path: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    timeout: int = 600,
    allow_errors: bool = False,
    store: str | os.PathLike[str] | None = None,
) -> Any:
    """Run every cell of the notebook at ``path`` in a fresh kernel started in its folder.

    The executed notebook (with outputs) is written to ``output`` if given, and returned. A
    cell that raises stops the run with ``nbclient``'s ``CellExecutionError`` unless
    ``allow_errors``. ``store`` is passed to the kernel as ``NBMLOPS_HOME``.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook_path = Path(path).resolve()
    notebook = nbformat.read(notebook_path, as_version=4)  # type: ignore[no-untyped-call]
    km = _this_python_kernel_manager()

    def send_cell_id(cell: Any, cell_index: int) -> None:
        kernel_client: Any = client.kc  # a CellIdClient; nbclient calls this just before sending
        kernel_client.cell_id = cell.get("id")

    client = NotebookClient(
        notebook,
        km=km,
        timeout=timeout,
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(notebook_path.parent)}},
        # The panels' widget state (their plots as base64 PNG, every table row) would be written
        # into the notebook's metadata: a 7 KB notebook became 1.09 MB (issue #13). Each panel's
        # output keeps its static text/html rendering, which is what a saved notebook shows.
        store_widget_state=False,
        on_cell_execute=send_cell_id,
    )
    # JPY_SESSION_NAME is inherited when this runs inside a notebook's kernel (`!nbmlops
    # execute`): it names that notebook, not this one, and tells the kernel a front end listens.
    env = {k: v for k, v in os.environ.items() if k != "JPY_SESSION_NAME"}
    env["NBMLOPS_NOTEBOOK"] = str(notebook_path)
    if store is not None:
        env["NBMLOPS_HOME"] = str(Path(store).resolve())
    try:
        client.execute(env=env)
    finally:
        # nbclient leaves a kernel manager it did not create running; shut it down so the
        # kernel exits cleanly and its sockets are removed.
        if km.has_kernel:
            km.shutdown_kernel(now=False)
    if output is not None:
        nbformat.write(notebook, Path(output))  # type: ignore[no-untyped-call]
    return notebook
