"""Where a Stripe invoice stands, as ours (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.providers.base import (
    ProviderError,
    ProviderStatus,
)


def invoice_status(invoice: Mapping[str, Any]) -> ProviderStatus:
    """Where a Stripe invoice stands (pure). ``open`` with something paid is partially paid."""
    if invoice.get("deleted"):
        return ProviderStatus.DELETED
    status = invoice.get("status")
    if status == "draft":
        return ProviderStatus.DRAFT
    if status == "paid":
        return ProviderStatus.PAID
    if status == "void":
        return ProviderStatus.VOIDED
    if status == "uncollectible":
        return ProviderStatus.UNCOLLECTIBLE
    paid = invoice.get("amount_paid")
    return (
        ProviderStatus.PARTIALLY_PAID
        if isinstance(paid, int) and paid > 0
        else (ProviderStatus.SENT)
    )


def not_editable(exc: ProviderError) -> bool:
    """Stripe's refusal to change an invoice that is no longer a draft."""
    text = f"{exc.code or ''} {exc.message or ''}".lower()
    return "invoice_not_editable" in text or "not a draft" in text or "finalized" in text
