"""SyncError, kept here until errors.py (the lead's) takes it into the exception tree."""

from __future__ import annotations

from nbmlops.errors import NbmlopsError


class SyncError(NbmlopsError):
    """A push to (or pull from) an MLflow tracking server failed or was refused.

    ``server`` is the server's base URL, ``call`` the REST call that failed (``POST
    runs/log-batch``), ``status`` its HTTP status (None: no answer), ``code`` MLflow's
    ``error_code`` when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        server: str,
        call: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.server = server
        self.call = call
        self.status = status
        self.code = code
