"""Where a Xero invoice stands, from the fields a read returns (pure).

Xero's statuses: ``DRAFT`` and ``SUBMITTED`` (awaiting approval) are still unsent drafts the
connector may change or delete; ``AUTHORISED`` is approved, an open receivable finance owns (sent
or not, hands off); a payment lowers ``AmountDue``; ``PAID``, ``VOIDED`` and ``DELETED`` are final.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from connector.providers.base import DraftState, ProviderStatus

EDITABLE_STATUSES = frozenset({"DRAFT", "SUBMITTED"})


def decimal_or_none(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def provider_status(row: Mapping[str, Any]) -> ProviderStatus:
    status = str(row.get("Status") or "").upper()
    if status in EDITABLE_STATUSES:
        return ProviderStatus.DRAFT
    if status == "PAID":
        return ProviderStatus.PAID
    if status == "VOIDED":
        return ProviderStatus.VOIDED
    if status == "DELETED":
        return ProviderStatus.DELETED
    paid = (decimal_or_none(row.get("AmountPaid")) or Decimal(0)) + (
        decimal_or_none(row.get("AmountCredited")) or Decimal(0)
    )
    due = decimal_or_none(row.get("AmountDue"))
    if paid > 0 and due is not None and due > 0:
        return ProviderStatus.PARTIALLY_PAID
    if paid > 0 and due == 0:
        return ProviderStatus.PAID
    return ProviderStatus.SENT  # AUTHORISED: approved in Xero, finance's from here on


def draft_state(row: Mapping[str, Any]) -> DraftState:
    status = str(row.get("Status") or "").upper()
    if status in EDITABLE_STATUSES:
        return DraftState.DRAFT
    if status == "VOIDED":
        return DraftState.VOID
    if status == "DELETED":
        return DraftState.DELETED
    return DraftState.SENT
