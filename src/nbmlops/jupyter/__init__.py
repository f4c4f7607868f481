"""The jupyter_server extension ``nbmlops.jupyter``: authenticated REST handlers over the store,
for the JupyterLab front end (and anyone with the server's token).

Installing the package enables it (``etc/jupyter/jupyter_server_config.d/nbmlops.json``); by
hand: ``jupyter server extension enable nbmlops.jupyter``. Every endpoint is a GET under
``<base_url>/nbmlops/api/``::

    version                         the handshake: {"version", "api", "store", "store_exists",
                                    "root_dir"}
    runs?filter=&experiment=&notebook=&limit=&offset=   one page of nbmlops.runs(), and total
    runs/<run_id>                   info, params, metrics, tags, datasets, artifacts, source
    runs/<run_id>/metrics/<key>     the metric's history
    runs/<run_id>/lineage           inputs and who made them, outputs and who used them
    compare?runs=a,b,...            differing params, metrics with the best run, datasets, diffs
    cells/<run_or_cell_id>/history  every version of the cell, with its runs
    cells/diff?a=&b=                unified diff of two cell versions (runs or source hashes)
    cells/latest?notebook=<path>    each tracked cell's newest run: the per-cell badges
    models, models/<name>           registered models; one model's versions and history
    drift/reports[?run_id=&model_name=&model_version=&limit=], drift/reports/<report_id>

Every endpoint takes ``api=<n>``: a front end built for another REST API version gets 409 with
a message naming both versions (a 404 on ``version`` means this extension is not enabled).

Which store: ``c.NbmlopsExtension.store`` (a path, relative to the server's root), else
``NBMLOPS_HOME``, else the nearest ``.nbmlops/`` walking up from the notebook or folder the
request names (``notebook=`` or ``path=``, relative to the root; the store a kernel started for
that notebook finds), or from the server's root folder, without leaving the root: a store above
it is not served, and a ``.nbmlops`` link resolving outside it is refused (400); configure such a
store to serve it. The server only reads: where there is no store yet it answers with empty
lists and 404s, and creates nothing. Every bad input is a 4xx with a JSON message.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from traitlets import Unicode
from traitlets.config import Configurable

from nbmlops import _version
from nbmlops.jupyter.handlers import ServerSettings, setup_handlers
from nbmlops.jupyter.payloads import API_VERSION

if TYPE_CHECKING:
    from jupyter_server.serverapp import ServerApp

__all__ = ["API_VERSION", "NbmlopsExtension", "__version__"]

__version__ = _version.__version__
"""The package's version: what ``jupyter server extension list`` shows for this extension (it
reads the extension module's ``__version__``)."""


class NbmlopsExtension(Configurable):
    """Settings of the nbmlops server extension (``c.NbmlopsExtension.<name>`` in
    ``jupyter_server_config.py``, or ``--NbmlopsExtension.<name>=...`` on the command line)."""

    store = Unicode(
        "",
        config=True,
        help="The nbmlops store the REST API reads: its .nbmlops folder, the nbmlops.db file, "
        "or a project folder containing .nbmlops; relative paths start at the server's root. "
        "Empty (the default): NBMLOPS_HOME if set, else the location rule from the notebook's "
        "folder or the server's root.",
    )


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "nbmlops.jupyter"}]


def _load_jupyter_server_extension(serverapp: ServerApp) -> None:
    options = NbmlopsExtension(parent=serverapp)
    settings = ServerSettings(Path(serverapp.root_dir), options.store)
    setup_handlers(serverapp.web_app, settings)
    location = settings.location()
    serverapp.log.info(
        "nbmlops %s server extension: REST API v%d at %snbmlops/api/ (store %s%s)",
        __version__,
        API_VERSION,
        serverapp.web_app.settings["base_url"],
        location.home,
        "" if location.exists else ", not created yet",
    )
