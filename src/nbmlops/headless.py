"""Execute a notebook headless in a real kernel, with tracking: ``nbmlops execute``.

The kernel is started with this very interpreter (not whatever ``python3`` kernelspec comes
first on the Jupyter path) and is told the notebook's path through ``NBMLOPS_NOTEBOOK``, since
no front end is there to set ``JPY_SESSION_NAME``. Each cell's id goes with its execute request
(``metadata.cellId``, as JupyterLab sends it; nbclient itself sends none), so two cells with the
same source are still two cells.

Parameters follow papermill's conventions (``papermill/parameterize.py`` and
``translators.py``, version 2.7), reimplemented here rather than depended on: papermill brings
``entrypoints``, ``tenacity``, ``tqdm`` and, on Python 3.12, ``aiohttp`` for the forty lines
that matter. A cell tagged ``injected-parameters`` is inserted after the first cell tagged
``parameters`` (at the top when there is none, with a warning; in place of an earlier
``injected-parameters`` cell when the notebook is itself an executed copy), its source is
``# Parameters`` and one ``name = value`` line per parameter, written as papermill's Python
translator writes them (without its optional black formatting), and the values are kept in
``metadata.papermill.parameters`` with ``input_path`` and ``output_path``, so tools that read
papermill's output read ours.
"""

from __future__ import annotations

import keyword
import math
import os
import sys
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


def parameters_source(parameters: Mapping[str, Any]) -> str:
    """The source of the ``injected-parameters`` cell: papermill's, value for value.

    Values are str, int, float, bool, None, and lists and dicts (with str keys) of those; any
    other value is refused (ValueError) rather than written as its ``str()`` in quotes, which is
    papermill's last resort and silently turns a date or a path into a string.
    """
    lines = ["# Parameters"]
    for name, value in parameters.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(
                f"Parameter name {name!r} is not a Python variable name; the notebook's "
                "parameters cell assigns variables, so use letters, digits and '_'."
            )
        lines.append(f"{name} = {_python_literal(value, name)}")
    return "\n".join(lines) + "\n"


def parameter_value(text: str) -> str | int | float | bool | None:
    """A value given on the command line (``-p NAME VALUE``) read as papermill's CLI reads it:
    ``True``, ``False``, ``None``, an int, a float, else the text itself."""
    constants: dict[str, bool | None] = {"True": True, "False": False, "None": None}
    if text in constants:
        return constants[text]
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    return text


def _python_literal(value: Any, where: str) -> str:
    if value is None or isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return int.__repr__(value)  # an IntEnum would print its member name
    if isinstance(value, str):
        escaped = value.encode("unicode_escape").decode("utf-8").replace('"', r"\"")
        return f'"{escaped}"'
    if isinstance(value, float):
        if math.isfinite(value):
            return float.__repr__(value)  # numpy 2 scalars repr as np.float64(...)
        return "float('nan')" if math.isnan(value) else f"float('{'-' if value < 0 else ''}inf')"
    if isinstance(value, list):
        return f"[{', '.join(_python_literal(v, f'{where}[{i}]') for i, v in enumerate(value))}]"
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(
                    f"Parameter {where} has the key {key!r} ({type(key).__name__}); parameter "
                    "dicts need str keys (they are also stored as JSON)."
                )
            items.append(
                f"{_python_literal(key, where)}: {_python_literal(item, f'{where}[{key!r}]')}"
            )
        return f"{{{', '.join(items)}}}"
    raise ValueError(
        f"Parameter {where} = {value!r} ({type(value).__name__}) cannot be written as Python "
        "for the notebook; pass a str, int, float, bool, None, or a list or dict of those "
        "(a time as seconds or an ISO string, a path as a str)."
    )


def parameterize(
    notebook: Any,
    parameters: Mapping[str, Any],
    input_path: str | None = None,
    output_path: str | None = None,
) -> Any:
    """Insert the ``injected-parameters`` cell into ``notebook`` (an nbformat v4 node, upgraded
    to 4.5 so every cell has an id) and record the parameters in ``metadata.papermill``."""
    import nbformat

    source = parameters_source(parameters)
    notebook = nbformat.v4.upgrade(notebook)  # type: ignore[no-untyped-call]
    cell = nbformat.v4.new_code_cell(source=source)  # type: ignore[no-untyped-call]
    cell.metadata["tags"] = [INJECTED_TAG]

    def first_tagged(tag: str) -> int:
        tagged = (i for i, c in enumerate(notebook.cells) if tag in c.metadata.get("tags", []))
        return next(tagged, -1)

    injected, declared = first_tagged(INJECTED_TAG), first_tagged(PARAMETERS_TAG)
    if injected >= 0:
        before, after = notebook.cells[:injected], notebook.cells[injected + 1 :]
    elif declared >= 0:
        before, after = notebook.cells[: declared + 1], notebook.cells[declared + 1 :]
    else:
        warnings.warn(
            f"{input_path or 'The notebook'} has no cell tagged {PARAMETERS_TAG!r}: the "
            "parameters are injected at the top, where the notebook's own assignments may "
            "override them. Tag the cell that sets the defaults (View > Cell toolbar > Tags).",
            UserWarning,
            stacklevel=3,
        )
        before, after = [], notebook.cells
    notebook.cells = [*before, cell, *after]
    recorded = notebook.metadata.setdefault("papermill", {})
    recorded["parameters"] = dict(parameters)
    recorded["input_path"] = input_path
    recorded["output_path"] = output_path
    return notebook


def _this_python_kernel_manager() -> Any:
    from jupyter_client.asynchronous.client import AsyncKernelClient
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    # Asynchronous, as nbclient's own client is: with a blocking one its per-cell timeout never
    # fired (a 20 s cell with timeout=1 ran to its end).
    class CellIdClient(AsyncKernelClient):
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
    parameters: Mapping[str, Any] | None = None,
    timeout: int = 600,
    allow_errors: bool = False,
    store: str | os.PathLike[str] | None = None,
) -> Any:
    """Run every cell of the notebook at ``path`` in a fresh kernel started in its folder.

    ``parameters`` (papermill's conventions, see the module docstring) are injected after the
    cell tagged ``parameters``. The executed notebook (with outputs) is written to ``output`` if
    given, also when a cell failed (as papermill does: the copy shows where it stopped), and
    returned. A cell that raises stops the run with ``nbclient``'s ``CellExecutionError`` unless
    ``allow_errors``. ``store`` is passed to the kernel as ``NBMLOPS_HOME``.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook_path = Path(path).resolve()
    notebook = nbformat.read(notebook_path, as_version=4)  # type: ignore[no-untyped-call]
    if parameters:
        output_text = None if output is None else str(Path(output).resolve())
        notebook = parameterize(notebook, parameters, str(notebook_path), output_text)
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
