"""Rates as the billing engine's input: the one place a stored or parsed rate becomes a
``billing.RateEntry``, and the workspace's table of them (read by the pipeline, mappings/ and
the tracker sources).

A rate that names an accounting customer belongs to the books that customer id came from
(``Rate.books``, see ``connector.books``): the ledger's customer "6" is another business than
QuickBooks customer "6". Billing applies only :func:`applicable` rates; the customer rates of
other books are history (:func:`of_other_books`), back in use if the workspace returns to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Select, or_, select

from connector import billing
from connector.models import Rate


def applicable(workspace_id: int, books_key: str | None) -> Select[tuple[Rate]]:
    """Every rate that names no customer, and the customer rates of ``books_key`` (the books
    the workspace bills to now; None: never connected, so no customer rate applies)."""
    in_books = Rate.customer_id.is_(None)
    if books_key is not None:
        in_books = or_(in_books, Rate.books == books_key)
    return select(Rate).where(Rate.workspace_id == workspace_id, in_books)


def of_other_books(workspace_id: int, books_key: str | None) -> Select[tuple[Rate]]:
    """Customer rates made in other books than ``books_key``: kept, never applied."""
    stmt = select(Rate).where(Rate.workspace_id == workspace_id, Rate.customer_id.is_not(None))
    return stmt if books_key is None else stmt.where(Rate.books != books_key)


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
    """The admin's rates and the tracker's (e.g. contract rates) in one table: where both give
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
