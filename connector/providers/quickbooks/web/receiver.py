"""``POST /webhooks/quickbooks``: Intuit's Invoice notifications, verified, stored, then synced.

Intuit signs each notification with the app's verifier token (``QBO_WEBHOOK_VERIFIER_TOKEN``):
``intuit-signature`` = base64(HMAC-SHA256(token, raw body)). The notification names companies
(``realmId`` / ``intuitaccountid``): they select the workspaces connected to them. It carries no
event id, so the dedupe key is the body's SHA-256 (Intuit retries resend the same body).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from flask import Blueprint, request

from connector.providers.quickbooks.events import EventError, parse_notification
from connector.providers.web_kit import kit, receiver_openapi

SOURCE = "quickbooks"
bp = Blueprint("quickbooks_webhooks", __name__)


def sign(token: str, body: bytes) -> str:
    """The ``intuit-signature`` value Intuit puts on ``body``."""
    return base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest()).decode()


def verify(body: bytes, header: str | None, tokens: list[str]) -> None:
    try:
        offered = base64.b64decode((header or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        offered = b""
    if offered:
        for token in tokens:
            expected = hmac.new(token.encode(), body, hashlib.sha256).digest()
            if hmac.compare_digest(expected, offered):
                return
    raise kit().unauthorized("The intuit-signature header does not match the app's verifier token.")


@bp.post("/webhooks/quickbooks")
def receive() -> Any:
    tokens = kit().configured_secrets("QBO_WEBHOOK_VERIFIER_TOKEN")
    if not tokens:
        raise kit().unauthorized(
            "QuickBooks status sync is not configured here: set QBO_WEBHOOK_VERIFIER_TOKEN to "
            "the app's webhook verifier token."
        )
    body = kit().read_body()
    verify(body, request.headers.get("intuit-signature"), tokens)
    try:
        changes = parse_notification(body)
    except EventError as exc:
        raise kit().malformed(str(exc)) from None
    if not changes:
        return kit().ignored("the notification names no invoice change")
    workspace_ids = kit().connected_workspaces(SOURCE, [c.realm_id for c in changes])
    if not workspace_ids:
        return kit().ignored("no workspace here is connected to these QuickBooks companies")
    operations = sorted({f"Invoice.{c.operation}" for c in changes})
    return kit().accept_event(
        workspace_ids=workspace_ids,
        source=SOURCE,
        event_id="sha256:" + hashlib.sha256(body).hexdigest(),
        event_type=",".join(operations)[:100],
        body=body,
    )


# --- this receiver in the OpenAPI document (served at the root, not under /api/v1) -----------
OPENAPI_PATHS: dict[str, Any] = {
    "/webhooks/quickbooks": {
        **receiver_openapi(
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
