"""Stored admin rates as the billing engine's input (read by the pipeline and by mappings/).

A rate that names an accounting customer belongs to the books that customer id came from
(``Rate.books``, see ``connector.books``): the ledger's customer "6" is another business than
QuickBooks customer "6". Billing applies only :func:`applicable` rates; the customer rates of
other books are history (:func:`of_other_books`), back in use if the workspace returns to them.
"""

from __future__ import annotations

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
