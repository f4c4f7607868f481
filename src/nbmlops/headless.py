"""Execute a notebook headless in a real kernel, with tracking: ``nbmlops execute``.

The kernel is started with this very interpreter (not whatever ``python3`` kernelspec comes
first on the Jupyter path) and is told the notebook's path through ``NBMLOPS_NOTEBOOK``, since
no front end is there to set ``JPY_SESSION_NAME``.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any

from nbmlops.capture.notebook import FRONT_END_TARGET


def _this_python_kernel_manager() -> Any:
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

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
    client = NotebookClient(
        notebook,
        km=km,
        timeout=timeout,
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(notebook_path.parent)}},
    )
    # The kernel offers the JupyterLab extension a link (nbmlops.magics.FrontEndLink); headless,
    # the saved notebook is the snapshot, so the offer is declined quietly instead of warned of.
    client.comm_open_handlers[FRONT_END_TARGET] = lambda message: None
    env = {**os.environ, "NBMLOPS_NOTEBOOK": str(notebook_path)}
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
