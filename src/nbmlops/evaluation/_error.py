"""EvaluationError, until it joins the exception tree in :mod:`nbmlops.errors` (the lead's file;
then this module goes and its importers import it from there)."""

from __future__ import annotations

from nbmlops.errors import NbmlopsError


class EvaluationError(NbmlopsError, ValueError):
    """A model cannot be evaluated on the data given (no ``predict``, X and y of different
    lengths, a column the model needs missing, an unknown task or metric); the message names what
    was wrong and what to do, ``value`` keeps the offending value."""

    def __init__(self, message: str, value: object = None) -> None:
        super().__init__(message)
        self.value = value
