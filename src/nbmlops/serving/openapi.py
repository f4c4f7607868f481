"""The OpenAPI 3.1 document of the scoring server, written out (see :mod:`.app` for why)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nbmlops._version import __version__

_SCALAR = {"type": ["number", "string", "boolean", "null"]}
_ROWS = {"type": "array", "items": {"type": "array", "items": _SCALAR}}
_RECORDS = {"type": "array", "items": {"type": "object", "additionalProperties": _SCALAR}}
_COLUMNS = {"type": "object", "additionalProperties": {"type": "array", "items": _SCALAR}}
_TENSOR = {"oneOf": [_ROWS, _RECORDS, _COLUMNS]}
_PARAMS = {"type": "object", "description": "Recorded with the prediction; not passed on."}


def _one_of_formats() -> dict[str, Any]:
    split = {
        "type": "object",
        "required": ["data"],
        "properties": {"columns": {"type": "array", "items": {"type": "string"}}, "data": _ROWS},
    }
    shapes = {
        "dataframe_split": split,
        "dataframe_records": _RECORDS,
        "instances": _TENSOR,
        "inputs": _TENSOR,
    }
    return {
        "oneOf": [
            {
                "type": "object",
                "required": [key],
                "properties": {key: schema, "params": _PARAMS},
                "additionalProperties": False,
            }
            for key, schema in shapes.items()
        ]
    }


def _error() -> dict[str, Any]:
    return {
        "description": "JSON error naming the problem",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or {"type": "object"}}},
    }


def document(model: str, ref: str, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """The document for a server of ``ref`` (of ``model``), with examples that reach the model:
    its name, its reference, and a row of its signature's ``columns``."""
    example = {
        "dataframe_split": {"columns": list(columns or ()), "data": [[0] * len(columns or ())]}
    }
    errors = {str(code): _error() for code in (400, 401, 403, 413, 415, 503)}
    scored = {
        "200": _json(
            "Predictions, one per row",
            {"type": "object", "properties": {"predictions": {"type": "array"}}},
        ),
        **errors,
    }
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string"},
            "data": {"type": "array"},
        },
    }
    artifact = {
        "parameters": [
            {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}},
            {"name": "X-Device-ID", "in": "header", "schema": {"type": "string"}},
        ],
        "responses": {
            "200": {
                "description": "The artifact's bytes; ETag is its sha256",
                "content": {"application/octet-stream": {}},
            },
            "304": {"description": "Not modified (If-None-Match matched the ETag)"},
            "404": _error(),
        },
    }
    get = {"responses": {"200": _json("OK"), "503": _error()}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"nbmlops model server: {model}",
            "version": __version__,
            "description": "MLflow's scoring protocol, the KServe/MLServer V2 subset and model "
            "downloads. With a token, every route but /ping needs 'Authorization: Bearer'.",
        },
        "paths": {
            "/invocations": {
                "post": {
                    "summary": "Score rows (MLflow's protocol)",
                    "parameters": [
                        {"name": "X-Request-ID", "in": "header", "schema": {"type": "string"}}
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": _one_of_formats(),
                                "example": example,
                            },
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "responses": scored,
                }
            },
            "/ping": {"get": {"summary": "200 once a model is loaded", **get}},
            "/health": {"get": {"summary": "200 when loaded and self-tested", **get}},
            "/version": {"get": {"responses": {"200": _json("Server and model versions")}}},
            "/v2/health/live": {"get": {"responses": {"200": _json("Live")}}},
            "/v2/health/ready": {"get": get},
            "/v2/models/{name}": {
                "get": {
                    "parameters": [_path("name", model)],
                    "responses": {"200": _json("Model metadata"), "404": _error(), "503": _error()},
                }
            },
            "/v2/models/{name}/infer": {
                "post": {
                    "parameters": [_path("name", model)],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["inputs"],
                                    "properties": {"inputs": {"type": "array", "items": tensor}},
                                }
                            }
                        },
                    },
                    "responses": {**scored, "404": _error()},
                }
            },
            "/labels": {
                "post": {
                    "summary": "Ground truth for served requests, by the X-Request-ID returned",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["request_ids", "labels"],
                                    "properties": {
                                        "request_ids": {
                                            "type": "array",
                                            "items": {"type": "string"},
                                        },
                                        "labels": {"type": "array"},
                                        "rows": {"type": "array", "items": {"type": "integer"}},
                                    },
                                },
                                "example": {"request_ids": ["0" * 32], "labels": [151.0]},
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            "Labels stored: matched to this model's logged requests, or unknown"
                        ),
                        **{str(code): _error() for code in (400, 401, 403, 413, 503)},
                    },
                }
            },
            "/models/{ref}/artifact": {
                "get": {"summary": "Download name@alias", **_with(artifact, _path("ref", ref))}
            },
            "/models/{name}/{version}/artifact": {
                "get": {
                    "summary": "Download name/version",
                    **_with(artifact, _path("name", model), _path("version", 1, "integer")),
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error_code", "message"],
                    "properties": {
                        "error_code": {"type": "string"},
                        "message": {"type": "string"},
                        "column": {"type": "string"},
                    },
                }
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _path(name: str, example: object, kind: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": kind},
        "example": example,
    }


def _with(operation: dict[str, Any], *params: dict[str, Any]) -> dict[str, Any]:
    return {**operation, "parameters": [*params, *operation["parameters"]]}
