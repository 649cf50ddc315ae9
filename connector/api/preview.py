"""``POST /api/v1/preview``: the drafts and holds an event would produce, with no side effects."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from connector import trackers
from connector.api import bp
from connector.auth import token_required
from connector.pipeline import preview_event
from connector.problems import Problem
from connector.trackers import EventError


@bp.post("/preview")
@token_required
def preview() -> Any:
    body = request.get_data(cache=True)
    if not trackers.is_source(g.workspace.tracker_source):
        raise Problem(
            409,
            "Tracker not available",
            f"this workspace's tracker {g.workspace.tracker_source!r} is not installed here",
            type_="unknown-tracker",
        )
    source = trackers.get_source(g.workspace.tracker_source)
    try:
        event = source.parse_event(body)
        if source.kind_of(event.type) is None:
            raise EventError(422, "/type", f"{event.type!r} is not an event that is billed")
        if event.is_thin:
            rows = source.contract.rows_pointer if source.contract else ""
            raise EventError(422, rows, "a preview needs the timesheet's rows")
        result = preview_event(g.workspace, event)
    except EventError as exc:
        raise Problem(
            exc.status,
            "Malformed event" if exc.status == 400 else "Event breaks the contract",
            exc.message,
            type_="invalid-event",
            field=exc.field or None,
        ) from None
    except ValueError as exc:
        raise Problem(422, "Timesheet cannot be billed", str(exc), type_="unbillable") from None
    return jsonify(result)


# An event the preview can bill (built from the registered sources' contracts: openapi.py).
_PREVIEWABLE = {"$ref": "#/components/schemas/PreviewableEvent"}
OPENAPI_PATHS = {
    "/preview": {
        "post": {
            "operationId": "previewEvent",
            "summary": "Preview the drafts an approval event would create (no side effects)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _PREVIEWABLE}},
            },
            "responses": {
                "200": {
                    "description": "Drafts per customer and holds",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "revision": {"type": "string"},
                                    "drafts": {"type": "array", "items": {"type": "object"}},
                                    "holds": {"type": "array", "items": {"type": "object"}},
                                    "excluded": {"type": "object"},
                                },
                            }
                        }
                    },
                },
                "400": {"$ref": "#/components/responses/Problem"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "422": {"$ref": "#/components/responses/Problem"},
            },
        }
    }
}
