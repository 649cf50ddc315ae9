"""Stored admin rates as the billing engine's input (read by the pipeline and by mappings/)."""

from __future__ import annotations

from connector import billing
from connector.models import Rate


def to_entry(row: Rate) -> billing.RateEntry:
    return billing.RateEntry(
        amount=row.amount,
        currency=row.currency,
        effective_from=row.effective_from,
        member_id=row.member_id,
        project_id=row.project_id,
        contract_id=row.contract_id,
        customer_id=row.customer_id,
    )
