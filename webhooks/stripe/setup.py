"""Plug Stripe's status events into the core: which invoices a stored event names."""

from __future__ import annotations

from connector import status_sync
from webhooks.stripe import SOURCE
from webhooks.stripe.events import parse_event


def invoice_refs(body: bytes, account_id: str | None) -> list[str]:
    event = parse_event(body)
    if event.account and account_id and event.account != account_id:
        return []
    return [event.invoice_id] if event.supported and event.invoice_id else []


def setup() -> None:
    status_sync.register_event_reader(SOURCE, invoice_refs)
