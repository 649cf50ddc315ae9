"""Rates as the billing engine's input: the one place a stored or parsed rate becomes a
``billing.RateEntry``, and the workspace's table of them (read by the pipeline, mappings/ and
the tracker sources)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from connector import billing


class RateLike(Protocol):
    """A rate as stored (models.Rate, models.TrackerRate) or parsed (mappings' RateInput)."""

    amount: Decimal
    currency: str
    effective_from: date | None
    member_id: str | None
    project_id: str | None
    contract_id: str | None


def to_entry(rate: RateLike) -> billing.RateEntry:
    """The engine's entry for ``rate``; a tracker's rate has no customer scope (no customer_id)."""
    return billing.RateEntry(
        amount=rate.amount,
        currency=rate.currency,
        effective_from=rate.effective_from,
        member_id=rate.member_id,
        project_id=rate.project_id,
        contract_id=rate.contract_id,
        customer_id=getattr(rate, "customer_id", None),
    )


def rate_table(admin: Iterable[RateLike], tracker: Iterable[RateLike]) -> billing.RateTable:
    """The admin's rates and the tracker's (e.g. WebWork contracts) in one table: where both give
    a rate for the same scope from the same day, the admin's wins."""
    entries = [to_entry(r) for r in admin]
    taken = {_identity(e) for e in entries}
    entries += [e for e in map(to_entry, tracker) if _identity(e) not in taken]
    return billing.RateTable(entries=tuple(entries))


def _identity(entry: billing.RateEntry) -> tuple[Any, ...]:
    return (
        entry.contract_id,
        entry.member_id,
        entry.project_id,
        entry.customer_id,
        entry.effective_from,
    )
