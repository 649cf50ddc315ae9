"""Per-approval drafts: ``GET /api/v1/timesheets/<timesheet_id>/drafts`` (what one approval
produced) and ``GET /api/v1/drafts`` (every approval's contributions). Each draft is one
approval's part of an invoice (``invoice_id``); the invoices themselves, one per provider
document, are ``GET /api/v1/invoices``."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from connector import db
from connector.api import bp
from connector.api.request_bodies import paging_parameters, query_paging
from connector.approval_queries import (
    HELD_STATUSES,
    count_rows,
    earlier_drafts,
    find_timesheet,
    live_drafts,
    live_drafts_query,
    totals_by_currency,
)
from connector.auth import token_required
from connector.models import Draft, DraftStatus, Timesheet
from connector.problems import Problem
from connector.providers import PROVIDER_NAMES
from connector.providers.base import ProviderStatus
from connector.status_sync import queue_reconcile
from connector.validation import ErrorCollector, FieldError, one_of


def refuse(field: str, message: str) -> None:
    raise FieldError(field, message)


def serialize_draft(draft: Draft) -> dict[str, Any]:
    return {
        "id": draft.id,
        "customer": {"id": draft.customer_id, "name": draft.customer_name}
        if draft.customer_id
        else None,
        "subject": draft.subject_key,
        "invoice_id": draft.invoice_id,
        "status": draft.status,
        "currency": draft.currency,
        "total": None if draft.total is None else str(draft.total),
        "minutes": draft.minutes,
        "lines": draft.lines,
        "provider": draft.provider,
        "provider_id": draft.provider_id,
        "link": draft.link,
        "hold_reason": draft.hold_reason,
        "hold_message": draft.hold_message,
        "error": draft.error,
        "provider_status": draft.provider_status,
        "provider_status_at": draft.provider_status_at.isoformat()
        if draft.provider_status_at
        else None,
        "key": draft.key,
        "revision": draft.revision,
        "created_at": draft.created_at.isoformat(),
        "updated_at": draft.updated_at.isoformat(),
    }


def serialize_timesheet(ts: Timesheet) -> dict[str, Any]:
    return {
        "id": ts.timesheet_id,
        "source": ts.source,
        "status": ts.status,
        "member": ts.member,
        "date_from": ts.date_from.isoformat() if ts.date_from else None,
        "date_to": ts.date_to.isoformat() if ts.date_to else None,
        "approved_at": ts.approved_at.isoformat() if ts.approved_at else None,
        "revision": ts.revision,
        "excluded_minutes": (ts.summary or {}).get("excluded_minutes", 0),
    }


def timesheet_not_found(timesheet_id: str) -> Problem:
    return Problem(
        404,
        "Timesheet not found",
        f"No approval of timesheet {timesheet_id!r} has reached this workspace.",
        type_="not-found",
    )


@bp.post("/drafts/provider-status/sync")
@token_required
def sync_provider_status() -> Any:
    """Queue a reconcile of every open draft's provider status (what the periodic job does)."""

    job_id, created = queue_reconcile(g.workspace.id)
    return jsonify(job_id=job_id, status="queued" if created else "already_queued"), 202


@bp.get("/timesheets/<path:timesheet_id>/drafts")
@token_required
def timesheet_drafts(timesheet_id: str) -> Any:
    ts = find_timesheet(db.session, g.workspace.id, timesheet_id)
    if ts is None:
        raise timesheet_not_found(timesheet_id)
    return jsonify(
        timesheet=serialize_timesheet(ts),
        drafts=[serialize_draft(d) for d in live_drafts(ts)],
        previous_drafts=[serialize_draft(d) for d in earlier_drafts(ts)],
    )


MAX_LIMIT = 200
LISTABLE_STATUSES = sorted({s.value for s in DraftStatus} - {DraftStatus.SUPERSEDED} | {"held"})
PROVIDER_STATUSES = [s.value for s in ProviderStatus]


@bp.get("/drafts")
@token_required
def list_drafts() -> Any:
    """Every approval's contribution (per-approval drafts), newest period first: under
    per_period consolidation several share one invoice (``invoice_id``; ``GET /invoices``).

    ``status`` is a draft status or ``held``; ``customer_id`` an accounting customer's id;
    ``provider_status`` where the invoice stands at the provider (draft, sent, paid...).
    ``totals`` sums every matching draft (not only this page) per currency.
    """
    args, errors = request.args, ErrorCollector()
    status = (
        errors.check(one_of, args["status"], "status", LISTABLE_STATUSES)
        if "status" in args
        else ""
    )
    customer_id = args.get("customer_id")
    if customer_id is not None and not 1 <= len(customer_id) <= 255:
        errors.check(refuse, "customer_id", "must be 1 to 255 characters")
    provider_status = (
        errors.check(one_of, args["provider_status"], "provider_status", PROVIDER_STATUSES)
        if "provider_status" in args
        else None
    )
    page = errors.check(query_paging, max_limit=MAX_LIMIT)
    errors.raise_any()
    limit, offset = page.limit, page.offset
    statuses = sorted(HELD_STATUSES) if status == "held" else ([status] if status else None)
    stmt = live_drafts_query(
        g.workspace.id,
        statuses=statuses,
        customer_id=customer_id,
        provider_status=provider_status,
    )
    rows = db.session.execute(stmt.offset(offset).limit(limit)).all()
    return jsonify(
        drafts=[{**serialize_draft(d), "timesheet": serialize_timesheet(ts)} for d, ts in rows],
        total=count_rows(db.session, stmt),
        totals={cur: str(amount) for cur, amount in totals_by_currency(db.session, stmt).items()},
        limit=limit,
        offset=offset,
    )


DRAFT_SCHEMA = {
    "type": "object",
    "required": ["id", "status", "currency", "total", "lines", "provider", "key"],
    "properties": {
        "id": {"type": "integer"},
        "customer": {
            "type": ["object", "null"],
            "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
        },
        "subject": {
            "type": "string",
            "description": "customer:<id>, or project:<id> while unmapped",
        },
        "invoice_id": {
            "type": ["integer", "null"],
            "description": "The invoice (provider document) its lines are on; null while held",
        },
        "status": {
            "type": "string",
            "enum": [s.value for s in DraftStatus],
        },
        "currency": {"type": ["string", "null"]},
        "total": {"type": ["string", "null"], "description": 'Decimal string, e.g. "1234.50"'},
        "minutes": {"type": "integer"},
        "lines": {"type": "array", "items": {"$ref": "#/components/schemas/DraftLine"}},
        "provider": {"type": ["string", "null"], "enum": [*PROVIDER_NAMES, None]},
        "provider_id": {"type": ["string", "null"]},
        "link": {"type": ["string", "null"], "format": "uri"},
        "hold_reason": {"type": ["string", "null"]},
        "hold_message": {"type": ["string", "null"]},
        "error": {"type": ["string", "null"]},
        "provider_status": {
            "type": ["string", "null"],
            "enum": [*(s.value for s in ProviderStatus), None],
            "description": (
                "Where the invoice stands at the provider (what finance did with it), learnt "
                "from the provider's webhooks and a periodic reconcile; null until first read. "
                "Separate from status, which is the connector's own lifecycle."
            ),
        },
        "provider_status_at": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "When provider_status was read from the provider",
        },
        "key": {"type": "string", "maxLength": 50, "description": "Idempotency key"},
        "revision": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

OPENAPI_SCHEMAS = {
    "Draft": DRAFT_SCHEMA,
    "DraftLine": {
        "type": "object",
        "properties": {
            "description": {"type": "string"},
            "minutes": {"type": "integer"},
            "quantity": {"type": "string", "description": "Hours (decimal string)"},
            "unit_price": {"type": "string"},
            "amount": {"type": "string"},
            "service_date": {"type": ["string", "null"], "format": "date"},
            "date_from": {"type": "string", "format": "date"},
            "date_to": {"type": "string", "format": "date"},
            "project_id": {"type": "string"},
            "project_name": {"type": "string"},
            "task_name": {"type": ["string", "null"]},
            "rate_source": {"type": "string"},
        },
    },
    "Timesheet": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "source": {"type": "string"},
            "status": {"type": "string", "enum": ["approved", "withdrawn", "waiting_for_data"]},
            "member": {"type": "object"},
            "date_from": {"type": ["string", "null"], "format": "date"},
            "date_to": {"type": ["string", "null"], "format": "date"},
            "approved_at": {"type": ["string", "null"], "format": "date-time"},
            "revision": {"type": ["string", "null"]},
            "excluded_minutes": {"type": "integer"},
        },
    },
}

OPENAPI_PATHS = {
    "/drafts": {
        "get": {
            "operationId": "listDrafts",
            "summary": "Every approval's contribution (per-approval drafts), with totals",
            "description": (
                "Per-approval contributions: under per_period consolidation several approvals "
                "share one invoice (see invoice_id and GET /invoices, one entry per provider "
                "document). Drafts needing attention are listed even after their approval was "
                "withdrawn."
            ),
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "schema": {"type": "string", "enum": LISTABLE_STATUSES},
                    "description": "A draft status, or held (needs a mapping, rate or reconnect)",
                },
                {
                    "name": "customer_id",
                    "in": "query",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    "description": "The accounting customer's id",
                },
                {
                    "name": "provider_status",
                    "in": "query",
                    "schema": {"type": "string", "enum": PROVIDER_STATUSES},
                    "description": "Where the invoice stands at the provider (status sync)",
                },
                *paging_parameters(max_limit=MAX_LIMIT),
            ],
            "responses": {
                "200": {
                    "description": "One page of drafts; total and totals cover every match",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["drafts", "total", "totals", "limit", "offset"],
                                "properties": {
                                    "drafts": {
                                        "type": "array",
                                        "items": {
                                            "allOf": [
                                                {"$ref": "#/components/schemas/Draft"},
                                                {
                                                    "type": "object",
                                                    "properties": {
                                                        "timesheet": {
                                                            "$ref": "#/components/schemas/Timesheet"
                                                        }
                                                    },
                                                },
                                            ]
                                        },
                                    },
                                    "total": {"type": "integer"},
                                    "totals": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                        "description": "Currency code -> decimal string sum",
                                    },
                                    "limit": {"type": "integer"},
                                    "offset": {"type": "integer"},
                                },
                            }
                        }
                    },
                },
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "422": {"$ref": "#/components/responses/Problem"},
            },
        }
    },
    "/drafts/provider-status/sync": {
        "post": {
            "operationId": "syncDraftProviderStatus",
            "summary": "Read every open draft's state from the provider again, now",
            "description": (
                "Queues the reconcile job the worker otherwise runs every "
                "STATUS_RECONCILE_MINUTES: drafts whose provider_status can still change are "
                "read again in batches within the provider's rate limits. One job at a time per "
                "workspace: asking again while one is queued returns that job."
            ),
            "responses": {
                "202": {
                    "description": "Queued (or already queued)",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "job_id": {"type": "integer"},
                                    "status": {
                                        "type": "string",
                                        "enum": ["queued", "already_queued"],
                                    },
                                },
                            }
                        }
                    },
                },
                "401": {"$ref": "#/components/responses/Unauthorized"},
            },
        }
    },
    "/timesheets/{timesheet_id}/drafts": {
        "get": {
            "operationId": "listTimesheetDrafts",
            "summary": "One approval's contributions (per-approval drafts), one per customer",
            "parameters": [
                {
                    "name": "timesheet_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "The tracker's timesheet id",
                }
            ],
            "responses": {
                "200": {
                    "description": "Drafts of the live revision, and earlier ones",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "timesheet": {"$ref": "#/components/schemas/Timesheet"},
                                    "drafts": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Draft"},
                                    },
                                    "previous_drafts": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Draft"},
                                    },
                                },
                            }
                        }
                    },
                },
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "404": {"$ref": "#/components/responses/Problem"},
            },
        }
    },
}
