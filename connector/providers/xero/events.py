"""Xero webhooks as the status sync reads them (pure): the signature and the invoices named.

Xero signs each delivery with the webhook's key (``XERO_WEBHOOK_KEY``): ``x-xero-signature`` =
base64(HMAC-SHA256(key, raw body)). A delivery is ``{"events": [{"resourceId": "<InvoiceID>",
"tenantId": "<organisation>", "eventCategory": "INVOICE", "eventType": "UPDATE", ...}],
"firstEventSequence": 1, "lastEventSequence": 1, "entropy": "..."}``; the "intent to receive"
check Xero runs when the webhook is saved is the same shape with no events, signed (answer 200)
or deliberately mis-signed (answer 401). An event only names what changed: the job reads the
invoice itself. Fixtures in ``fixtures/`` are named after the event they capture.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from connector.validation import JsonError, parse_json

SIGNATURE_HEADER = "x-xero-signature"


class EventError(ValueError):
    """Authentic but unreadable: not a Xero webhook delivery."""


@dataclass(frozen=True)
class InvoiceEvent:
    tenant_id: str
    invoice_id: str
    event_type: str  # CREATE | UPDATE


def sign(key: str, body: bytes) -> str:
    """The ``x-xero-signature`` Xero puts on ``body``."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def signature_valid(body: bytes, header: str | None, keys: list[str]) -> bool:
    """Checked on the raw body, in constant time, before anything is parsed or stored."""
    try:
        offered = base64.b64decode((header or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return bool(offered) and any(
        hmac.compare_digest(hmac.new(key.encode(), body, hashlib.sha256).digest(), offered)
        for key in keys
    )


def parse_delivery(body: bytes) -> list[InvoiceEvent]:
    """The invoice events of a delivery (contacts and other categories are left out)."""
    try:
        doc: Any = parse_json(body)  # the strict reader: not JSON, or nested too deep, is refused
    except JsonError as exc:
        raise EventError(f"the body is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise EventError("no events list")
    found = []
    for event in doc["events"]:
        if (
            isinstance(event, dict)
            and event.get("eventCategory") == "INVOICE"
            and event.get("tenantType", "ORGANISATION") == "ORGANISATION"
            and event.get("resourceId")
            and event.get("tenantId")
        ):
            found.append(
                InvoiceEvent(
                    str(event["tenantId"]),
                    str(event["resourceId"]),
                    str(event.get("eventType") or "UPDATE"),
                )
            )
    return found


def invoice_refs(body: bytes, account_id: str | None) -> list[str]:
    """What the status sync asks of a stored delivery: the invoices it names for one
    organisation (every organisation's when ``account_id`` is None)."""
    return [
        event.invoice_id
        for event in parse_delivery(body)
        if account_id is None or event.tenant_id.lower() == account_id.lower()
    ]
