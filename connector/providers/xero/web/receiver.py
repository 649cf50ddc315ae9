"""``POST /webhooks/xero``: Xero's invoice events, verified, stored, then synced by a job.

Outcomes (docs/xero.md#status-sync):
  no XERO_WEBHOOK_KEY configured      401, nothing stored
  signature wrong or missing          401 (empty body: Xero's intent-to-receive check wants it)
  signed, no events (intent check)    200 (empty body)
  signed but not a delivery           400 problem+json, nothing stored
  no invoice event / no workspace     200, nothing stored
  signed, new                         200: delivery + job per workspace in ONE transaction
  signed, the same body again         200, nothing queued twice
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Blueprint, Response, request

from connector.providers.web_kit import kit
from connector.providers.xero.events import (
    SIGNATURE_HEADER,
    EventError,
    parse_delivery,
    signature_valid,
)

SOURCE = "xero"
bp = Blueprint("xero_webhooks", __name__)


def _empty(status: int) -> Response:
    return Response(b"", status=status)


@bp.post("/webhooks/xero")
def receive() -> Any:
    keys = kit().configured_secrets("XERO_WEBHOOK_KEY")
    body = kit().read_body()
    if not keys or not signature_valid(body, request.headers.get(SIGNATURE_HEADER), keys):
        return _empty(401)
    try:
        events = parse_delivery(body)
    except EventError as exc:
        raise kit().malformed(str(exc)) from None
    if not events:
        return _empty(200)  # the intent-to-receive check, or events about other things
    workspace_ids = kit().connected_workspaces(SOURCE, {e.tenant_id for e in events})
    if not workspace_ids:
        return _empty(200)
    types = sorted({f"INVOICE.{e.event_type}" for e in events})
    kit().accept_event(
        workspace_ids=workspace_ids,
        source=SOURCE,
        event_id="sha256:" + hashlib.sha256(body).hexdigest(),
        event_type=",".join(types)[:100],
        body=body,
    )
    return _empty(200)


OPENAPI_PATHS: dict[str, Any] = {
    "/webhooks/xero": {
        "post": {
            "summary": "Xero invoice events (status sync)",
            "description": "Register this URL in the Xero developer portal (your app, Webhooks, "
            "Invoices) and set XERO_WEBHOOK_KEY to the webhook key Xero shows. x-xero-signature "
            "= base64 HMAC-SHA256 of the raw body with that key: a valid one is answered 200 "
            "(also Xero's intent-to-receive check), anything else 401, both with an empty body. "
            "Each INVOICE event's tenantId selects the workspaces; a job reads the invoices and "
            "records provider_status.",
            "security": [],
            "parameters": [
                {
                    "name": "x-xero-signature",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": {
                "200": {"description": "received (empty body)"},
                "400": {"$ref": "#/components/responses/Problem"},
                "401": {"description": "signature missing or wrong (empty body)"},
                "413": {"$ref": "#/components/responses/Problem"},
            },
        },
        "servers": [{"url": "/", "description": "the service root (PUBLIC_BASE_URL)"}],
    }
}
