"""Where a QuickBooks invoice stands, as ours (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.providers.base import (
    ProviderStatus,
    Rejected,
)
from connector.providers.quickbooks.payloads import decimal

DUPLICATE_NAME_CODE = "6240"


STALE_OBJECT_CODE = "5010"


# Codes besides 6xxx after which cached references may be out of date ("Object Not Found:
# something you're trying to use has been made inactive", "Invalid Reference Id").
STALE_REFERENCE_CODES = {"610", "2500"}


def says_references_changed(exc: Rejected) -> bool:
    """A refused create whose cause may be a customer, item or account changed in QuickBooks."""
    code = str(exc.code or "")
    return (len(code) == 4 and code.startswith("6")) or code in STALE_REFERENCE_CODES


STATES_PER_QUERY = 100  # ids per "Id IN (...)" query: one request, a URL well under 8 KB


def invoice_status(row: Mapping[str, Any]) -> ProviderStatus:
    """Where a QuickBooks invoice stands, from the fields a read returns (pure).

    A voided invoice keeps its row with every amount zeroed and "Voided" put in its PrivateNote
    (recorded in void_invoice.yml); a payment lowers Balance; "sent" is EmailStatus EmailSent.
    Deleted invoices are simply absent from reads.
    """
    total = decimal(row.get("TotalAmt"))
    balance = decimal(row.get("Balance"))
    note = str(row.get("PrivateNote") or "")
    if total == 0 and note.startswith("Voided"):
        return ProviderStatus.VOIDED
    if total is not None and total > 0 and balance is not None:
        if balance <= 0:
            return ProviderStatus.PAID
        if balance < total:
            return ProviderStatus.PARTIALLY_PAID
    if row.get("EmailStatus") == "EmailSent":
        return ProviderStatus.SENT
    return ProviderStatus.DRAFT
