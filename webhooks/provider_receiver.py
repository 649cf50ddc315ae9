"""What the provider receivers (``webhooks/stripe``, ``webhooks/quickbooks``) share.

Outcomes, in the order they are decided (docs/stripe.md and docs/quickbooks.md):
  unknown workspace endpoint token    404 (``/webhooks/stripe/<token>`` only)
  no signing secret configured        401, nothing stored
  forged, unsigned or stale           401, nothing stored (checked on the raw body first)
  body over the size cap              413, nothing stored
  authentic but not an event          400 problem+json, nothing stored
  event type not about invoices       200 "ignored", nothing stored
  no workspace connected to it        200 "ignored", nothing stored
  authentic duplicate event           200 "duplicate", nothing queued twice
  authentic and new                   200 "accepted": delivery + job per workspace in ONE
                                      transaction; the worker reads the invoice later
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app, jsonify, request
from sqlalchemy import select

from connector import db, worker
from connector.models import Connection, ConnectionStatus
from connector.problems import Problem
from webhooks.inbox import store_provider_event
from webhooks.request_body import read_capped_body


def configured_secrets(name: str) -> list[str]:
    """A comma-separated secret setting: several are valid at once while one is rotated."""
    raw = str(current_app.config.get(name) or "")
    return [part.strip() for part in raw.split(",") if part.strip()]


def read_body() -> bytes:
    """The raw body; 413 above WEBHOOK_MAX_BODY_BYTES, chunked or not (never cut short)."""
    return read_capped_body()


def unauthorized(detail: str) -> Problem:
    return Problem(401, "Invalid signature", detail, type_="invalid-signature")


def malformed(detail: str) -> Problem:
    return Problem(400, "Malformed event", detail, type_="invalid-event")


def connected_workspaces(provider: str, account_ids: Iterable[str]) -> list[int]:
    """Workspaces whose connection to ``provider`` is one of these accounts (realm / acct_)."""
    wanted = sorted(set(account_ids))
    if not wanted:
        return []
    return sorted(
        set(
            db.session.scalars(
                select(Connection.workspace_id).where(
                    Connection.provider == provider,
                    Connection.account_id.in_(wanted),
                    Connection.status != ConnectionStatus.DISCONNECTED,
                )
            )
        )
    )


def ignored(detail: str, **extra: Any) -> Any:
    return jsonify(status="ignored", detail=detail, **extra), 200


def accept(
    *,
    workspace_ids: list[int],
    source: str,
    event_id: str,
    event_type: str | None,
    body: bytes,
) -> Any:
    """Store the raw event for every workspace concerned and queue its job (one transaction)."""
    stored = store_provider_event(
        db.session,
        workspace_ids=workspace_ids,
        source=source,
        event_id=event_id,
        event_type=event_type,
        headers=request.headers,
        body=body,
    )
    db.session.commit()
    if not stored:
        return jsonify(status="duplicate", event_id=event_id), 200
    for _delivery_id, job_id in stored:
        worker.job_committed(job_id)
    return (
        jsonify(
            status="accepted",
            event_id=event_id,
            delivery_ids=[delivery_id for delivery_id, _ in stored],
        ),
        200,
    )


# --- the receivers in the OpenAPI document (served at the root, not under /api/v1) -------------
def _receiver(
    summary: str, description: str, header: str, schema: str, *, unknown_token: bool = False
) -> dict[str, Any]:
    ok = {
        "description": "accepted, duplicate or ignored (see status)",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "status": {
                            "type": "string",
                            "enum": ["accepted", "duplicate", "ignored"],
                        },
                        "event_id": {"type": "string"},
                        "delivery_ids": {"type": "array", "items": {"type": "integer"}},
                        "detail": {"type": "string"},
                    },
                }
            }
        },
    }
    return {
        "post": {
            "summary": summary,
            "description": description,
            "security": [],
            "parameters": [
                {"name": header, "in": "header", "required": True, "schema": {"type": "string"}}
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
                },
            },
            "responses": {
                "200": ok,
                "400": {"$ref": "#/components/responses/Problem"},
                "401": {"$ref": "#/components/responses/Problem"},
                "413": {"$ref": "#/components/responses/Problem"},
                # A per-workspace URL whose token names no workspace.
                **({"404": {"$ref": "#/components/responses/Problem"}} if unknown_token else {}),
            },
        },
        # Receivers live at the service root, beside /api/v1.
        "servers": [{"url": "/", "description": "the service root (PUBLIC_BASE_URL)"}],
    }


OPENAPI_PATHS: dict[str, Any] = {
    "/webhooks/stripe": {
        **_receiver(
            "Stripe invoice events (status sync)",
            "Register this URL in Stripe (Developers > Webhooks; for Connect platforms an "
            "endpoint listening to connected accounts) with the events invoice.finalized, "
            "invoice.sent, invoice.paid, invoice.voided, invoice.deleted and "
            "invoice.marked_uncollectible, and set STRIPE_WEBHOOK_SECRET to its signing "
            "secret. Verified with Stripe's SDK (Stripe-Signature, 300 s tolerance), stored, "
            "then each named invoice is read and its provider_status recorded by a job. A "
            "redelivered event id is acknowledged and not processed twice.",
            "Stripe-Signature",
            "StripeEvent",
        ),
    },
    "/webhooks/stripe/{token}": {
        **_receiver(
            "Stripe invoice events for one key-connected workspace (status sync)",
            "The endpoint an admin registers in the workspace's own Stripe account (the URL is "
            "shown on the Connections page; token = the workspace's endpoint token) with the "
            "same six invoice events; verified with the signing secret the admin saved there. "
            "Otherwise like /webhooks/stripe.",
            "Stripe-Signature",
            "StripeEvent",
            unknown_token=True,
        ),
        "parameters": [
            {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
    },
    "/webhooks/quickbooks": {
        **_receiver(
            "QuickBooks Invoice notifications (status sync)",
            "Register this URL in the Intuit developer portal (Webhooks, entity Invoice: "
            "Create, Update, Delete, Void, Emailed) and set QBO_WEBHOOK_VERIFIER_TOKEN to the "
            "app's verifier token. intuit-signature = base64 HMAC-SHA256 of the raw body. "
            "Both the legacy eventNotifications shape and CloudEvents are accepted; realmId "
            "selects the workspaces, a job reads the invoices and records provider_status.",
            "intuit-signature",
            "QuickBooksNotification",
        ),
    },
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "StripeEvent": {
        "type": "object",
        "description": "A Stripe event (only the fields the status sync reads)",
        "required": ["id", "type"],
        "properties": {
            "id": {"type": "string", "description": "evt_...: the dedupe key"},
            "type": {"type": "string", "examples": ["invoice.paid"]},
            "account": {"type": "string", "description": "Connect: the connected account"},
            "livemode": {"type": "boolean"},
            "data": {
                "type": "object",
                "properties": {
                    "object": {
                        "type": "object",
                        "properties": {"id": {"type": "string"}, "object": {"const": "invoice"}},
                    }
                },
            },
        },
    },
    "QuickBooksNotification": {
        "description": "Intuit's legacy notification, or a list of CloudEvents",
        "oneOf": [
            {
                "type": "object",
                "required": ["eventNotifications"],
                "properties": {
                    "eventNotifications": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "realmId": {"type": "string"},
                                "dataChangeEvent": {
                                    "type": "object",
                                    "properties": {
                                        "entities": {
                                            "type": "array",
                                            "items": {
                                                "type": "object",
                                                "properties": {
                                                    "name": {"type": "string"},
                                                    "id": {"type": "string"},
                                                    "operation": {"type": "string"},
                                                    "lastUpdated": {"type": "string"},
                                                },
                                            },
                                        }
                                    },
                                },
                            },
                        },
                    }
                },
            },
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "specversion": {"type": "string"},
                        "id": {"type": "string"},
                        "type": {"type": "string", "examples": ["qbo.invoice.updated.v1"]},
                        "intuitaccountid": {"type": "string"},
                        "intuitentityid": {"type": "string"},
                        "time": {"type": "string"},
                    },
                },
            },
        ],
    },
}
