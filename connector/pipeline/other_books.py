"""Holds caused by a move to other books: the reason in plain words.

A client mapped in the books the workspace billed to before (another QuickBooks company, the
built-in ledger, another Stripe account) is not mapped in the books it bills to now: its hours
are held ``needs_mapping`` like any unmapped client's, and the hold says why, naming both books.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from connector import books
from connector.models import CustomerMapping, TrackerEntity, Workspace
from connector.providers import DISPLAY_NAMES


def now_bills_to(s: Session, workspace: Workspace, books_key: str | None) -> str:
    if books_key is not None:
        return books.describe_key(s, workspace.id, books_key)
    name = DISPLAY_NAMES.get(workspace.provider, workspace.provider)
    return f"{name}, which is not connected yet"


def connect_first(workspace: Workspace) -> str:
    name = DISPLAY_NAMES.get(workspace.provider, workspace.provider)
    return (
        f"This workspace bills to {name}, which is not connected yet: connect it first, then map "
        "this client to one of its customers."
    )


def mapped_elsewhere(
    s: Session,
    workspace: Workspace,
    books_key: str | None,
    subjects: Iterable[tuple[str, str]],
) -> str | None:
    """ "Globex was mapped to a customer in QuickBooks company A; this workspace now bills to
    QuickBooks company B. ..." for the (kind, tracker id) ``subjects`` of a hold that have a
    mapping in other books only; None when none has."""
    wanted = list(dict.fromkeys(subjects))
    if not wanted:
        return None
    stmt = select(CustomerMapping).where(
        CustomerMapping.workspace_id == workspace.id,
        or_(*[(CustomerMapping.kind == k) & (CustomerMapping.tracker_id == t) for k, t in wanted]),
    )
    if books_key is not None:
        stmt = stmt.where(CustomerMapping.books != books_key)
    old = list(s.scalars(stmt.order_by(CustomerMapping.updated_at.desc())))
    if not old:
        return None
    first = old[0]
    name = s.scalar(
        select(TrackerEntity.name).where(
            TrackerEntity.workspace_id == workspace.id,
            TrackerEntity.kind == first.kind,
            TrackerEntity.tracker_id == first.tracker_id,
        )
    )
    was = books.describe_key(s, workspace.id, first.books)
    now = now_bills_to(s, workspace, books_key)
    return (
        f"{name or first.tracker_id} was mapped to a customer in {was}; this workspace now bills "
        f"to {now}. Map it to a customer there (the old mapping is kept as history)."
    )
