"""Stripe events as the status sync reads them: which invoice, which account, which type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.validation import JsonError, parse_json

# The invoice events that can change where a draft stands; every other type is acknowledged
# and ignored.
INVOICE_EVENTS = frozenset(
    {
        "invoice.finalized",
        "invoice.sent",
        "invoice.paid",
        "invoice.voided",
        "invoice.deleted",
        "invoice.marked_uncollectible",
    }
)


class EventError(ValueError):
    """Authentic but unreadable: the body is not a Stripe event."""


@dataclass(frozen=True)
class StripeEvent:
    id: str  # evt_...: the same on every redelivery, the dedupe key
    type: str
    account: str | None  # Connect: the connected account the invoice lives in
    invoice_id: str | None
    livemode: bool

    @property
    def supported(self) -> bool:
        return self.type in INVOICE_EVENTS and bool(self.invoice_id)


def parse_event(body: bytes) -> StripeEvent:
    try:
        doc: Any = parse_json(body)
    except JsonError as exc:
        raise EventError(f"the body is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not doc["id"]:
        raise EventError("not a Stripe event: no id")
    if not isinstance(doc.get("type"), str):
        raise EventError("not a Stripe event: no type")
    obj = (doc.get("data") or {}).get("object") if isinstance(doc.get("data"), dict) else None
    invoice_id = None
    if isinstance(obj, dict) and obj.get("object") == "invoice" and isinstance(obj.get("id"), str):
        invoice_id = obj["id"]
    account = doc.get("account")
    return StripeEvent(
        id=doc["id"][:255],
        type=doc["type"][:100],
        account=account if isinstance(account, str) and account else None,
        invoice_id=invoice_id,
        livemode=bool(doc.get("livemode")),
    )
