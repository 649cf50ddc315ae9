"""``GET /api/v1/invoices``: the provider documents (one per timesheet and customer, or per
customer and period under per_period consolidation), each with the approvals on it; and
``GET /api/v1/invoices/<id>`` with every line and the approval it came from."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from connector import db
from connector.api import bp
from connector.api.drafts import MAX_LIMIT, PROVIDER_STATUSES, refuse
from connector.api.request_bodies import paging_parameters, query_paging
from connector.auth import token_required
from connector.invoice_queries import (
    INVOICE_STATUS_FILTERS,
    contributions,
    count,
    invoices_query,
    serialize_invoice,
    totals_by_currency,
)
from connector.models import Invoice, InvoiceMode
from connector.problems import Problem
from connector.validation import ErrorCollector, iso_date, one_of


@bp.get("/invoices")
@token_required
def list_invoices() -> Any:
    """Every invoice, newest period first, filterable; totals per currency cover every match."""
    args, errors = request.args, ErrorCollector()
    status = (
        errors.check(one_of, args["status"], "status", INVOICE_STATUS_FILTERS)
        if "status" in args
        else None
    )
    customer_id = args.get("customer_id")
    if customer_id is not None and not 1 <= len(customer_id) <= 255:
        errors.check(refuse, "customer_id", "must be 1 to 255 characters")
    provider_status = (
        errors.check(one_of, args["provider_status"], "provider_status", PROVIDER_STATUSES)
        if "provider_status" in args
        else None
    )
    period = errors.check(iso_date, args["period"], "period") if "period" in args else None
    page = errors.check(query_paging, max_limit=MAX_LIMIT)
    errors.raise_any()
    stmt = invoices_query(
        g.workspace.id,
        status=status,
        customer_id=customer_id,
        period=period,
        provider_status=provider_status,
    )
    rows = list(db.session.scalars(stmt.offset(page.offset).limit(page.limit)))
    on = contributions(db.session, rows)
    return jsonify(
        invoices=[serialize_invoice(db.session, inv, on[inv.id]) for inv in rows],
        total=count(db.session, stmt),
        totals={cur: str(amount) for cur, amount in totals_by_currency(db.session, stmt).items()},
        limit=page.limit,
        offset=page.offset,
    )


@bp.get("/invoices/<int:invoice_id>")
@token_required
def get_invoice(invoice_id: int) -> Any:
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.workspace_id != g.workspace.id:
        raise Problem(
            404, "Not found", f"No invoice {invoice_id} in this workspace.", type_="not-found"
        )
    on = contributions(db.session, [invoice])
    return jsonify(serialize_invoice(db.session, invoice, on[invoice.id], lines=True))


_APPROVAL = {
    "type": "object",
    "description": "One approval's contribution to the invoice (a per-approval draft)",
    "properties": {
        "draft_id": {"type": "integer"},
        "timesheet_id": {"type": "string"},
        "member": {"type": ["string", "null"]},
        "date_from": {"type": ["string", "null"], "format": "date"},
        "date_to": {"type": ["string", "null"], "format": "date"},
        "status": {"type": "string"},
        "minutes": {"type": "integer"},
        "total": {"type": ["string", "null"]},
        "key": {"type": "string"},
    },
}
OPENAPI_SCHEMAS = {
    "Invoice": {
        "type": "object",
        "required": ["id", "mode", "status", "needs_attention", "customer", "currency", "total"],
        "properties": {
            "id": {"type": "integer"},
            "mode": {"type": "string", "enum": [m.value for m in InvoiceMode]},
            "status": {
                "type": "string",
                "enum": ["pending", "drafted", "closed", "voided"],
                "description": (
                    "pending: not confirmed by the provider yet; drafted: a draft there; "
                    "closed: finance sent or finalized it (see provider_status); voided: "
                    "removed at the provider (every approval on it withdrawn)"
                ),
            },
            "needs_attention": {
                "type": "boolean",
                "description": "A person must look (attention_message says why)",
            },
            "attention_message": {"type": ["string", "null"]},
            "customer": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
            },
            "currency": {"type": "string"},
            "total": {"type": "string", "description": "Decimal string: the sum of its lines"},
            "minutes": {"type": "integer"},
            "period": {
                "type": "object",
                "properties": {
                    "start": {"type": "string", "format": "date"},
                    "end": {"type": "string", "format": "date"},
                },
            },
            "books": {
                "type": "object",
                "description": "The books it lives in (provider and account)",
                "properties": {"key": {"type": "string"}, "name": {"type": "string"}},
            },
            "provider": {"type": "string"},
            "provider_id": {"type": ["string", "null"]},
            "link": {"type": ["string", "null"], "format": "uri"},
            "provider_status": {"type": ["string", "null"], "enum": [*PROVIDER_STATUSES, None]},
            "provider_status_at": {"type": ["string", "null"], "format": "date-time"},
            "approvals": {"type": "array", "items": _APPROVAL},
            "lines": {
                "type": "array",
                "description": "GET /invoices/{id} only: every line, with its approval",
                "items": {
                    "allOf": [
                        {"$ref": "#/components/schemas/DraftLine"},
                        {
                            "type": "object",
                            "properties": {
                                "approval": {
                                    "type": "object",
                                    "properties": {
                                        "draft_id": {"type": "integer"},
                                        "timesheet_id": {"type": "string"},
                                        "member": {"type": ["string", "null"]},
                                    },
                                }
                            },
                        },
                    ]
                },
            },
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    }
}
_INVOICE = {"$ref": "#/components/schemas/Invoice"}
OPENAPI_PATHS = {
    "/invoices": {
        "get": {
            "operationId": "listInvoices",
            "summary": "Invoices (provider documents) with their approvals; totals per currency",
            "description": (
                "One entry per document at the provider: per timesheet and customer, or per "
                "customer and period under per_period consolidation. Voided invoices are left "
                "out unless status=voided."
            ),
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "schema": {"type": "string", "enum": list(INVOICE_STATUS_FILTERS)},
                    "description": "An invoice status, or needs_attention",
                },
                {
                    "name": "customer_id",
                    "in": "query",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                },
                {
                    "name": "period",
                    "in": "query",
                    "schema": {"type": "string", "format": "date"},
                    "description": "A day the invoice's period holds",
                },
                {
                    "name": "provider_status",
                    "in": "query",
                    "schema": {"type": "string", "enum": PROVIDER_STATUSES},
                },
                *paging_parameters(max_limit=MAX_LIMIT),
            ],
            "responses": {
                "200": {
                    "description": "One page; total and totals cover every match",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["invoices", "total", "totals", "limit", "offset"],
                                "properties": {
                                    "invoices": {"type": "array", "items": _INVOICE},
                                    "total": {"type": "integer"},
                                    "totals": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
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
    "/invoices/{invoice_id}": {
        "get": {
            "operationId": "getInvoice",
            "summary": "One invoice with every line and the approval it came from",
            "parameters": [
                {
                    "name": "invoice_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer"},
                }
            ],
            "responses": {
                "200": {
                    "description": "The invoice",
                    "content": {"application/json": {"schema": _INVOICE}},
                },
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "404": {"$ref": "#/components/responses/Problem"},
            },
        }
    },
}
