"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 document, merged from every API module."""

from __future__ import annotations

import importlib
import json
from typing import Any

from flask import jsonify

from connector.api import API_MODULES, bp
from webhooks import provider_receiver
from webhooks.webwork.events import SCHEMA_PATH

_PROBLEM_REF = {"$ref": "#/components/responses/Problem"}


def build_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for name in API_MODULES:
        module = importlib.import_module(f"connector.api.{name}")
        for path, ops in getattr(module, "OPENAPI_PATHS", {}).items():
            paths.setdefault(path, {}).update(ops)
        schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    for path, ops in paths.items():
        # Every body is read as JSON first: a malformed one is a 400 on any operation.
        paths[path] = {
            method: (
                {**op, "responses": {"400": _PROBLEM_REF, **op["responses"]}}
                if "requestBody" in op
                else op
            )
            for method, op in ops.items()
        }
    # The provider receivers (status sync) live beside the API; their path items say so.

    paths.update(provider_receiver.OPENAPI_PATHS)
    schemas.update(provider_receiver.OPENAPI_SCHEMAS)
    event = json.loads(SCHEMA_PATH.read_text())
    defs = event.pop("definitions", {})
    event.pop("$schema", None)
    event.pop("$id", None)

    # The contract's JSON Schema definitions become components; rewrite references to match.
    def as_component(schema: Any) -> Any:
        return json.loads(
            json.dumps(schema).replace("#/definitions/", "#/components/schemas/Event_")
        )

    for name, schema in defs.items():
        schemas[f"Event_{name}"] = as_component(schema)
    schemas["Event"] = as_component(event)
    schemas["Problem"] = {
        "type": "object",
        "description": "RFC 9457 problem details",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "field": {"type": "string", "description": "JSON pointer of the offending field"},
        },
    }
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "timesheet-invoicer API",
            "version": "1.0.0",
            "description": (
                "Read and manage the draft invoices created from approved timesheets. "
                "Authenticate with a workspace API token: `Authorization: Bearer tsi_...`. "
                "Errors are application/problem+json. Money is a decimal string."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
            "responses": {
                "Problem": {"description": "Problem details", "content": problem},
                "Unauthorized": {"description": "Missing or invalid API token", "content": problem},
            },
        },
    }


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(build_document())


OPENAPI_PATHS = {
    "/openapi.json": {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1 document"}},
        }
    }
}
