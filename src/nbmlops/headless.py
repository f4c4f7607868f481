"""Execute a notebook headless in a real kernel, with tracking: ``nbmlops execute``.

The kernel is started with this very interpreter (not whatever ``python3`` kernelspec comes
first on the Jupyter path) and is told the notebook's path through ``NBMLOPS_NOTEBOOK``, since
no front end is there to set ``JPY_SESSION_NAME``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


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
    return KernelManager(kernel_name="python3", kernel_spec_manager=ThisPython(), transport="ipc")


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
    client = NotebookClient(
        notebook,
        km=_this_python_kernel_manager(),
        timeout=timeout,
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(notebook_path.parent)}},
    )
    env = {**os.environ, "NBMLOPS_NOTEBOOK": str(notebook_path)}
    if store is not None:
        env["NBMLOPS_HOME"] = str(Path(store).resolve())
    client.execute(env=env)
    if output is not None:
        nbformat.write(notebook, Path(output))  # type: ignore[no-untyped-call]
    return notebook
