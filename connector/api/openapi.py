"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 document, merged from every API module."""

from __future__ import annotations

import importlib
import json
from typing import Any

from flask import jsonify

from connector import trackers
from connector.api import API_MODULES, bp
from webhooks import provider_receiver

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
    schemas.update(event_schemas())
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


def _required_at(pointer: str) -> dict[str, Any]:
    """A schema requiring the member at a JSON pointer (e.g. /data/timesheet/rows)."""
    schema: dict[str, Any] = {}
    for name in reversed([p for p in pointer.split("/") if p]):
        schema = {"type": "object", "required": [name], "properties": {name: schema}}
    return schema


def _source_event(name: str, contract: trackers.Contract) -> dict[str, Any]:
    """One source's event schema as components: ``Event_<source>`` and its definitions."""
    event = json.loads(contract.schema_path.read_text())
    defs = event.pop("definitions", {})
    event.pop("$schema", None)
    event.pop("$id", None)
    prefix = f"Event_{name}"

    # The contract's JSON Schema definitions become components; rewrite references to match.
    def as_component(schema: Any) -> Any:
        return json.loads(
            json.dumps(schema).replace("#/definitions/", f"#/components/schemas/{prefix}_")
        )

    found = {f"{prefix}_{key}": as_component(schema) for key, schema in defs.items()}
    found[prefix] = as_component(event)
    return found


def event_schemas() -> dict[str, Any]:
    """Every registered tracker's event (``Event`` is any of them) and what a preview accepts:
    an event of a kind that is billed, carrying its rows."""
    schemas: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    previewable: list[dict[str, Any]] = []
    for name, source in trackers.SOURCES.items():
        if source.contract is None:
            continue
        schemas.update(_source_event(name, source.contract))
        ref = {"$ref": f"#/components/schemas/Event_{name}"}
        events.append(ref)
        previewable.append(
            {
                "allOf": [
                    ref,
                    {
                        "type": "object",
                        "properties": {"type": {"enum": sorted(source.event_kinds)}},
                    },
                    _required_at(source.contract.rows_pointer),
                ]
            }
        )
    schemas["Event"] = events[0] if len(events) == 1 else {"anyOf": events}
    schemas["PreviewableEvent"] = (
        previewable[0] if len(previewable) == 1 else {"anyOf": previewable}
    )
    return schemas


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
