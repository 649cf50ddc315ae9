"""``/api/v1/approvals``: approved timesheets with their drafts, filterable; and retry."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from connector import db
from connector.api import bp
from connector.api.drafts import serialize_draft, serialize_timesheet, timesheet_not_found
from connector.api.request_bodies import PAGING_PARAMETERS, query_paging
from connector.approval_queries import (
    HELD_STATUSES,
    approvals_query,
    count,
    find_timesheet,
    live_drafts,
)
from connector.auth import token_required
from connector.models import DraftStatus
from connector.pipeline import RebillRefused, request_rebill, retry_timesheet
from connector.problems import Problem
from connector.validation import ErrorCollector, iso_date, one_of

MAX_LIMIT = 200
STATUS_FILTERS = sorted({s.value for s in DraftStatus} | {"held"})


@bp.get("/approvals")
@token_required
def list_approvals() -> Any:
    """Approvals of this workspace, newest first, each with its live drafts.

    ``status`` filters on a draft status (or ``held``); ``from``/``to`` keep approvals whose
    period overlaps the range.
    """
    args, errors = request.args, ErrorCollector()
    status = (
        errors.check(one_of, args["status"], "status", STATUS_FILTERS) if "status" in args else None
    )
    day_from = errors.check(iso_date, args["from"], "from") if "from" in args else None
    day_to = errors.check(iso_date, args["to"], "to") if "to" in args else None
    page = errors.check(query_paging, max_limit=MAX_LIMIT)
    errors.raise_any()
    limit, offset = page.limit, page.offset
    stmt = approvals_query(
        g.workspace.id,
        statuses=(HELD_STATUSES if status == "held" else [status]) if status else None,
        day_from=day_from,
        day_to=day_to,
    )
    total = count(db.session, stmt)
    rows = db.session.scalars(stmt.offset(offset).limit(limit))
    approvals = []
    for ts in rows:
        drafts = live_drafts(ts)
        approvals.append(
            {**serialize_timesheet(ts), "drafts": [serialize_draft(d) for d in drafts]}
        )
    return jsonify(approvals=approvals, total=total, limit=limit, offset=offset)


@bp.post("/approvals/<timesheet_id>/retry")
@token_required
def retry_approval(timesheet_id: str) -> Any:
    """Try the failed drafts of one approval again (same idempotency keys: no duplicates)."""
    ts = find_timesheet(db.session, g.workspace.id, timesheet_id)
    if ts is None:
        raise timesheet_not_found(timesheet_id)

    job_id = retry_timesheet(g.workspace.id, ts.id)
    return jsonify(job_id=job_id), 202


@bp.post("/approvals/<timesheet_id>/rebill")
@token_required
def rebill_approval(timesheet_id: str) -> Any:
    """Replace the approval's drafts: withdraw the created ones (deleted while still drafts,
    flagged when finance already sent them), then bill the timesheet again with the current
    mappings, rates and settings."""
    ts = find_timesheet(db.session, g.workspace.id, timesheet_id)
    if ts is None:
        raise timesheet_not_found(timesheet_id)

    try:
        job_id = request_rebill(g.workspace.id, ts.id)
    except RebillRefused as exc:
        raise Problem(409, "Cannot re-bill", str(exc), type_="not-approved") from None
    return jsonify(job_id=job_id), 202


_APPROVAL = {
    "allOf": [
        {"$ref": "#/components/schemas/Timesheet"},
        {
            "type": "object",
            "properties": {
                "drafts": {"type": "array", "items": {"$ref": "#/components/schemas/Draft"}}
            },
        },
    ]
}
_401 = {"$ref": "#/components/responses/Unauthorized"}
_PROBLEM = {"$ref": "#/components/responses/Problem"}
OPENAPI_PATHS = {
    "/approvals": {
        "get": {
            "operationId": "listApprovals",
            "summary": "Approved timesheets with their drafts, newest first",
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "schema": {"type": "string", "enum": STATUS_FILTERS},
                    "description": "A draft status, or 'held' (mapping, rate, currency, reconnect)",
                },
                {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
                {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
                *PAGING_PARAMETERS,
            ],
            "responses": {
                "200": {
                    "description": "A page of approvals",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "approvals": {"type": "array", "items": _APPROVAL},
                                    "total": {"type": "integer"},
                                    "limit": {"type": "integer"},
                                    "offset": {"type": "integer"},
                                },
                            }
                        }
                    },
                },
                "401": _401,
                "422": _PROBLEM,
            },
        }
    },
    "/approvals/{timesheet_id}/retry": {
        "post": {
            "operationId": "retryApproval",
            "summary": "Retry the failed drafts of one approval",
            "parameters": [
                {
                    "name": "timesheet_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            "responses": {
                "202": {"description": "Queued; body has job_id"},
                "401": _401,
                "404": _PROBLEM,
            },
        }
    },
    "/approvals/{timesheet_id}/rebill": {
        "post": {
            "operationId": "rebillApproval",
            "summary": "Re-bill one approval with the current mappings, rates and settings",
            "description": (
                "Mapping, rate and settings changes never touch drafts already created in the "
                "accounting system. This replaces them: every draft of the approval is withdrawn "
                "first, exactly as when the approval is withdrawn in the tracker (deleted while "
                "it is still a draft; left alone and flagged needs_attention when finance already "
                "sent it), then the timesheet is billed again under fresh idempotency keys. The "
                "old drafts are listed under previous_drafts."
            ),
            "parameters": [
                {
                    "name": "timesheet_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            "responses": {
                "202": {
                    "description": "Queued; body has job_id",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"job_id": {"type": "integer"}},
                            }
                        }
                    },
                },
                "401": _401,
                "404": _PROBLEM,
                "409": _PROBLEM,
            },
        }
    },
}
