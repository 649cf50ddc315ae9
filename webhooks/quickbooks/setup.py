"""Plug QuickBooks' change notifications into the core: which invoices a stored one names."""

from __future__ import annotations

from connector import status_sync
from webhooks.quickbooks import SOURCE
from webhooks.quickbooks.events import parse_notification


def invoice_refs(body: bytes, account_id: str | None) -> list[str]:
    return [
        change.invoice_id
        for change in parse_notification(body)
        if account_id is None or change.realm_id == account_id
    ]


def setup() -> None:
    status_sync.register_event_reader(SOURCE, invoice_refs)
