"""Serving registered models over HTTP (issue #14).

:mod:`.app` builds the ASGI app (MLflow's scoring protocol, the V2 subset, artifact downloads
with ETags); :mod:`.formats` decodes requests; :mod:`.signature` checks them against the
version's signature (the extra-columns policy); :mod:`.service` loads, self-tests and follows an
alias; :mod:`.prediction_log` writes every request to the store off the request path;
:mod:`.endpoints` records where each version is served; :mod:`.server` runs it on uvicorn;
:mod:`.commands` are the ``nbmlops serve`` and ``nbmlops pull`` commands. The Python entry
points are ``nbm.serve``, ``nbm.endpoints`` and ``nbm.predictions``; a device downloads and
updates a model with the standard-library client :mod:`nbmlops.client`.

Layer: below ``api`` (which starts servers) and above the registry (which it loads from); it
imports no interface.
"""
