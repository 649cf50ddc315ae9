"""Customer mappings: which accounting customer a tracker client or project is billed to.

A project mapping overrides its client's mapping. Every change ends with ``after_change``, which
asks the pipeline to re-bill approvals held for a missing mapping or rate, so holds release
themselves without anyone pressing retry.

A mapping belongs to the books it was made in (``connector.books``): a customer id names a
business in one QuickBooks company, one Stripe account or the built-in ledger only. Every read
and write here is of the books the workspace bills to now; mappings of other books are kept as
history (:func:`history`), come back when the workspace returns to those books, and help the
re-map after a switch (:func:`exact_matches`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import books, pipeline, trackers
from connector.models import (
    Connection,
    CustomerMapping,
    Draft,
    DraftStatus,
    Rate,
    Timesheet,
    TimesheetStatus,
    TrackerEntity,
    Workspace,
)
from connector.providers.base import AccountingCustomer, AccountingProvider
from connector.settings import WorkspaceSettings
from connector.validation import FieldError, iso_currency
from mappings.suggest import Suggestion, confident_choice, normalize_name, rank_customers

KINDS: Final = ("client", "project")
# Suggestions rank every accounting customer: the provider is read page by page and the list is
# kept per connection for a few minutes, so paging through the mapping screen does not refetch.
# The bound only protects memory against a runaway pager (a real company stays far below it).
MAX_CUSTOMERS_FOR_SUGGESTIONS: Final = 100_000
CUSTOMER_CACHE_SECONDS: Final = 300
_customer_cache: dict[tuple[Any, ...], tuple[float, list[AccountingCustomer]]] = {}
_customer_cache_lock = threading.Lock()


class MappingError(FieldError):
    """A mapping that cannot be stored; ``field`` names the input to fix."""


class UnknownCustomer(MappingError):
    """The customer id names no customer in the books (the API answers 404, not 422)."""


@dataclass
class EntityRow:
    """One line of the mapping screen: a tracker client or project and where it bills."""

    kind: str
    tracker_id: str
    name: str
    email: str | None = None
    client_id: str | None = None
    mapping: CustomerMapping | None = None
    via_client: CustomerMapping | None = None  # projects without their own mapping
    suggestions: list[Suggestion] = field(default_factory=list)
    billable: bool = True  # False: only ever tracked as non-billable, needs no customer
    # Its mapping in the books the workspace billed to before (when it has none in these).
    previous: OldMapping | None = None

    @property
    def effective(self) -> CustomerMapping | None:
        return self.mapping or self.via_client

    @property
    def confident(self) -> Suggestion | None:
        return None if self.mapping else confident_choice(self.suggestions)


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise MappingError("kind", "must be 'client' or 'project'")
    return kind


def current_books(s: Session, workspace_id: int) -> str | None:
    """The key of the books the workspace bills to now (None: not connected yet)."""
    ws = s.get(Workspace, workspace_id)
    return books.current_key(s, workspace_id, ws.provider) if ws is not None else None


def _books_or_refuse(s: Session, workspace_id: int) -> str:
    key = current_books(s, workspace_id)
    if key is None:
        raise MappingError("customer_id", "cannot be checked: connect the accounting system first")
    return key


def get_mapping(
    s: Session, workspace_id: int, kind: str, tracker_id: str
) -> CustomerMapping | None:
    return s.scalars(
        select(CustomerMapping).where(
            CustomerMapping.workspace_id == workspace_id,
            CustomerMapping.books == current_books(s, workspace_id),
            CustomerMapping.kind == kind,
            CustomerMapping.tracker_id == tracker_id,
        )
    ).one_or_none()


def list_mappings(s: Session, workspace_id: int, kind: str | None = None) -> list[CustomerMapping]:
    """The mappings of the books the workspace bills to now."""
    stmt = select(CustomerMapping).where(
        CustomerMapping.workspace_id == workspace_id,
        CustomerMapping.books == current_books(s, workspace_id),
    )
    if kind:
        stmt = stmt.where(CustomerMapping.kind == check_kind(kind))
    return list(s.scalars(stmt.order_by(CustomerMapping.kind, CustomerMapping.tracker_id)))


@dataclass(frozen=True)
class OldMapping:
    """A mapping made in other books than the workspace bills to now: history."""

    mapping: CustomerMapping
    books: str  # plain words: "QuickBooks company Acme Sandbox"
    tracker_name: str  # the tracker client's or project's name (its id if never seen)


def history(s: Session, workspace_id: int) -> list[OldMapping]:
    """Mappings of other books, newest first: kept, never used while the workspace bills
    elsewhere, back in use if it returns to those books."""
    key = current_books(s, workspace_id)
    stmt = select(CustomerMapping).where(CustomerMapping.workspace_id == workspace_id)
    if key is not None:
        stmt = stmt.where(CustomerMapping.books != key)
    named = books.known(s, workspace_id)
    rows = list(s.scalars(stmt.order_by(CustomerMapping.updated_at.desc(), CustomerMapping.id)))
    tracker_names = _tracker_names(s, workspace_id, {(r.kind, r.tracker_id) for r in rows})
    return [
        OldMapping(
            mapping=row,
            books=named.get(row.books) or books.describe_key(s, workspace_id, row.books),
            tracker_name=tracker_names.get((row.kind, row.tracker_id)) or row.tracker_id,
        )
        for row in rows
    ]


def _tracker_names(
    s: Session, workspace_id: int, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """(kind, tracker id) -> the name the tracker gave that client or project."""
    if not wanted:
        return {}
    found = s.execute(
        select(TrackerEntity.kind, TrackerEntity.tracker_id, TrackerEntity.name).where(
            TrackerEntity.workspace_id == workspace_id,
            TrackerEntity.kind.in_({kind for kind, _ in wanted}),
            TrackerEntity.tracker_id.in_({tracker_id for _, tracker_id in wanted}),
        )
    )
    return {(kind, tracker_id): name for kind, tracker_id, name in found if name}


def set_mapping(
    s: Session,
    workspace_id: int,
    *,
    kind: str,
    tracker_id: str,
    customer_id: str,
    customer_name: str,
    customer_currency: str | None = None,
) -> CustomerMapping:
    """Create or replace the mapping of one client/project in the books the workspace bills to
    now (flushes, does not commit)."""
    check_kind(kind)
    tracker_id = str(tracker_id or "").strip()
    customer_id = str(customer_id or "").strip()
    if not tracker_id:
        raise MappingError("tracker_id", "is required")
    if not customer_id:
        raise MappingError("customer_id", "is required")
    if len(tracker_id) > 255 or len(customer_id) > 255:
        raise MappingError("customer_id" if len(customer_id) > 255 else "tracker_id", "is too long")
    currency = (customer_currency or "").strip().upper() or None
    if currency is not None:
        try:
            currency = iso_currency(currency)
        except ValueError as exc:
            raise MappingError("customer_currency", str(exc)) from None
    key = _books_or_refuse(s, workspace_id)
    row = get_mapping(s, workspace_id, kind, tracker_id)
    if row is None:
        row = CustomerMapping(
            workspace_id=workspace_id, books=key, kind=kind, tracker_id=tracker_id
        )
        s.add(row)
    row.customer_id = customer_id
    row.customer_name = (customer_name or "").strip()[:500] or customer_id
    row.customer_currency = currency
    s.flush()
    return row


def link_customer(
    s: Session,
    workspace_id: int,
    provider: AccountingProvider,
    *,
    kind: str,
    tracker_id: str,
    customer_id: str,
) -> CustomerMapping:
    """Map to a customer that must exist in the accounting system (name/currency from there)."""
    check_kind(kind)
    if not str(customer_id or "").strip():
        raise MappingError("customer_id", "is required")
    customer = provider.get_customer(str(customer_id).strip())
    if customer is None:
        raise UnknownCustomer(
            "customer_id", f"no customer {customer_id!r} in {provider.display_name or 'the books'}"
        )
    return map_to(s, workspace_id, kind=kind, tracker_id=tracker_id, customer=customer)


def map_to(
    s: Session,
    workspace_id: int,
    *,
    kind: str,
    tracker_id: str,
    customer: AccountingCustomer,
    currency: str | None = None,
) -> CustomerMapping:
    """Map to ``customer``; ``currency`` is what it was created in, for a provider (Stripe) whose
    customers have no currency until their first invoice locks one. Such a customer with no
    currency given bills in the currency the client's/project's rows are priced in."""
    if not customer.currency and not currency:
        currency = billing_currency(s, workspace_id, kind, tracker_id)
    return set_mapping(
        s,
        workspace_id,
        kind=kind,
        tracker_id=tracker_id,
        customer_id=customer.id,
        customer_name=customer.name,
        customer_currency=customer.currency or currency,
    )


# Approvals looked at to tell which currency a client's or project's hours are priced in.
RECENT_APPROVALS_FOR_CURRENCY: Final = 100


def billing_currency(s: Session, workspace_id: int, kind: str, tracker_id: str) -> str:
    """The currency a new customer for this client/project should bill in.

    The currency its billable rows are priced in, as seen in recent approvals (a row's own
    rate, else the rate table entry for its project or the workspace's rate); else the
    workspace's default currency. A customer created in another currency would hold every
    draft as a currency mismatch.
    """

    check_kind(kind)
    seen: Counter[str] = Counter()
    unpriced_projects: set[str] = set()
    approvals = s.scalars(
        select(Timesheet)
        .where(
            Timesheet.workspace_id == workspace_id,
            Timesheet.status == TimesheetStatus.APPROVED,
            Timesheet.content.is_not(None),
        )
        .order_by(Timesheet.approved_at.desc(), Timesheet.id.desc())
        .limit(RECENT_APPROVALS_FOR_CURRENCY)
    )
    for approval in approvals:
        try:
            rows = trackers.normalize_timesheet(approval.source, approval.content or {}).rows
        except (ValueError, KeyError, TypeError, trackers.UnknownSource):
            continue  # an approval the pipeline could not bill either
        for row in rows:
            if row.billable is False:
                continue
            mine = (
                row.project_id == tracker_id
                if kind == "project"
                else (row.client is not None and row.client.id == tracker_id)
            )
            if not mine:
                continue
            if row.rate is not None:
                seen[row.rate.currency] += row.minutes
            else:
                unpriced_projects.add(row.project_id)
    if not seen and unpriced_projects:
        for rate in s.scalars(select(Rate).where(Rate.workspace_id == workspace_id)):
            scoped = rate.project_id in unpriced_projects and rate.member_id is None
            workspace_wide = not (
                rate.project_id or rate.member_id or rate.contract_id or rate.customer_id
            )
            if scoped or workspace_wide:
                seen[rate.currency] += 2 if scoped else 1
    if seen:
        return seen.most_common(1)[0][0].upper()
    workspace = s.get(Workspace, workspace_id)
    return WorkspaceSettings.from_dict(workspace.settings if workspace else None).default_currency


def remove_mapping(s: Session, workspace_id: int, kind: str, tracker_id: str) -> bool:
    row = get_mapping(s, workspace_id, check_kind(kind), tracker_id)
    if row is None:
        return False
    s.delete(row)
    s.flush()
    return True


def drafts_made_with(s: Session, workspace_id: int, mapping: CustomerMapping) -> int:
    """Live drafts for the mapping's customer with lines from the mapped project (or from a
    project of the mapped client): what removing the mapping leaves as it is."""

    if mapping.kind == "project":
        projects = {mapping.tracker_id}
    else:
        projects = set(
            s.scalars(
                select(TrackerEntity.tracker_id).where(
                    TrackerEntity.workspace_id == workspace_id,
                    TrackerEntity.kind == "project",
                    TrackerEntity.client_id == mapping.tracker_id,
                )
            )
        )
    drafts = s.scalars(
        select(Draft).where(
            Draft.workspace_id == workspace_id,
            Draft.books == mapping.books,
            Draft.customer_id == mapping.customer_id,
            Draft.status.not_in([DraftStatus.SUPERSEDED, DraftStatus.VOIDED]),
        )
    )
    return sum(
        1 for d in drafts if any(line.get("project_id") in projects for line in d.lines or [])
    )


def list_entities(s: Session, workspace_id: int) -> list[EntityRow]:
    """Every client and project seen in approvals (or mapped by hand), with its mapping."""
    mappings = {(m.kind, m.tracker_id): m for m in list_mappings(s, workspace_id)}
    seen = s.scalars(
        select(TrackerEntity)
        .where(TrackerEntity.workspace_id == workspace_id, TrackerEntity.kind.in_(KINDS))
        .order_by(TrackerEntity.kind, TrackerEntity.name)
    )
    rows: dict[tuple[str, str], EntityRow] = {}
    for entity in seen:
        rows[(entity.kind, entity.tracker_id)] = EntityRow(
            kind=entity.kind,
            tracker_id=entity.tracker_id,
            name=entity.name or entity.tracker_id,
            email=entity.email,
            client_id=entity.client_id,
        )
    for kind, tracker_id in mappings:
        rows.setdefault(
            (kind, tracker_id),
            EntityRow(kind=kind, tracker_id=tracker_id, name=tracker_id),
        )
    previous: dict[tuple[str, str], OldMapping] = {}
    for old in history(s, workspace_id):  # newest first: the latest one of each row wins
        previous.setdefault((old.mapping.kind, old.mapping.tracker_id), old)
    for key, row in rows.items():
        row.mapping = mappings.get(key)
        if row.kind == "project" and row.client_id:
            row.via_client = mappings.get(("client", row.client_id))
        if row.mapping is None:
            row.previous = previous.get(key)
    return sorted(rows.values(), key=lambda r: (KINDS.index(r.kind), r.name.lower(), r.tracker_id))


def fetch_customers(
    provider: AccountingProvider, *, cache_key: tuple[Any, ...] | None = None
) -> list[AccountingCustomer]:
    """Every customer of the provider, page by page (raises ProviderError subclasses).

    With ``cache_key`` (one per connection: see ``customer_cache_key``) the list is reused for
    ``CUSTOMER_CACHE_SECONDS``; ``forget_customers`` drops it after a customer is created here.
    """
    now = time.monotonic()
    if cache_key is not None:
        with _customer_cache_lock:
            hit = _customer_cache.get(cache_key)
        if hit is not None and now - hit[0] < CUSTOMER_CACHE_SECONDS:
            return hit[1]
    customers: list[AccountingCustomer] = []
    for customer in provider.iter_customers():
        customers.append(customer)
        if len(customers) >= MAX_CUSTOMERS_FOR_SUGGESTIONS:
            break
    if cache_key is not None:
        with _customer_cache_lock:
            for key in [
                k for k, (at, _) in _customer_cache.items() if now - at >= CUSTOMER_CACHE_SECONDS
            ]:
                _customer_cache.pop(key, None)
            _customer_cache[cache_key] = (now, customers)
    return customers


def customer_cache_key(s: Session, workspace_id: int, provider_name: str) -> tuple[Any, ...] | None:
    """One key per live connection (a reconnect starts a new list); None for the built-in ledger,
    which is this database and cheap to read."""

    if provider_name == "local":
        return None
    row = s.scalars(
        select(Connection).where(
            Connection.workspace_id == workspace_id, Connection.provider == provider_name
        )
    ).first()
    if row is None:
        return None
    connected = row.connected_at.isoformat() if row.connected_at else ""
    # The books in the key: another company or Stripe account (or mode) is another list.
    key = books.books_key(provider_name, row.account_id, row.environment)
    return (workspace_id, provider_name, row.id, key, connected)


def forget_customers(workspace_id: int) -> None:
    with _customer_cache_lock:
        for key in [k for k in _customer_cache if k[0] == workspace_id]:
            _customer_cache.pop(key, None)


def add_suggestions(
    rows: Iterable[EntityRow], customers: list[AccountingCustomer], *, limit: int = 3
) -> None:
    """Rank the books' customers for each unmapped row by its name and email, and by the name
    of the customer it had in other books (a re-map after a switch)."""
    for row in rows:
        if row.mapping is None:
            row.suggestions = rank_for(row, customers, limit=limit)


def rank_for(
    row: EntityRow, customers: list[AccountingCustomer], *, limit: int
) -> list[Suggestion]:
    ranked = rank_customers(row.name, row.email, customers, limit=limit)
    if row.previous is None:
        return ranked
    old_name = row.previous.mapping.customer_name
    best = {s.customer.id: s for s in ranked}
    for s in rank_customers(old_name, row.email, customers, limit=limit):
        if s.customer.id not in best or best[s.customer.id].score < s.score:
            best[s.customer.id] = Suggestion(
                s.customer, s.score, (*s.reasons, f"was {old_name} in {row.previous.books}")
            )
    return sorted(best.values(), key=lambda s: (-s.score, s.customer.name.lower(), s.customer.id))[
        :limit
    ]


def exact_match(
    row: EntityRow, customers: Iterable[AccountingCustomer]
) -> AccountingCustomer | None:
    """The one customer of the books with exactly the row's name (or, after a switch, its old
    customer's name) or exactly its email; None when there is none, or more than one."""
    names = {normalize_name(row.name)}
    if row.previous is not None:
        names.add(normalize_name(row.previous.mapping.customer_name))
    names.discard("")
    email = (row.email or "").strip().lower()
    found = {
        c.id: c
        for c in customers
        if normalize_name(c.name) in names or (email and (c.email or "").strip().lower() == email)
    }
    return next(iter(found.values())) if len(found) == 1 else None


def map_exact_matches(
    s: Session, workspace_id: int, rows: Iterable[EntityRow], customers: list[AccountingCustomer]
) -> list[tuple[EntityRow, AccountingCustomer]]:
    """Map every unmapped row with an exact match in the books, in one step (flushes); returns
    what was mapped. A project whose client is mapped (or just was) follows its client."""
    mapped: list[tuple[EntityRow, AccountingCustomer]] = []
    rows = list(rows)
    for row in sorted(rows, key=lambda r: KINDS.index(r.kind)):  # clients first
        if row.mapping is not None:
            continue
        if row.kind == "project" and any(
            r.kind == "client" and r.tracker_id == row.client_id and r.mapping for r in rows
        ):
            continue
        customer = exact_match(row, customers)
        if customer is not None:
            row.mapping = map_to(
                s, workspace_id, kind=row.kind, tracker_id=row.tracker_id, customer=customer
            )
            mapped.append((row, customer))
    return mapped


def accept_confident(s: Session, workspace_id: int, rows: Iterable[EntityRow]) -> int:
    """Map every unmapped row whose top suggestion is confident; returns how many."""
    count = 0
    for row in rows:
        choice = row.confident
        if choice is not None:
            row.mapping = map_to(
                s, workspace_id, kind=row.kind, tracker_id=row.tracker_id, customer=choice.customer
            )
            count += 1
    return count


def serialize_mapping(row: CustomerMapping) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "tracker_id": row.tracker_id,
        "customer_id": row.customer_id,
        "customer_name": row.customer_name,
        "customer_currency": row.customer_currency,
        "books": row.books,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
    }


def after_change(workspace_id: int) -> int:
    """Re-bill approvals held on this workspace; returns how many were re-queued.

    Called after every mapping or rate change (web and API), after the change is committed.
    """
    return int(pipeline.release_holds(workspace_id))


def change_notice(
    workspace_id: int,
    *,
    customer_id: str | None = None,
    tracker: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Fields every change response carries: drafts already created stay as they are."""

    count = pipeline.approvals_with_created_drafts(
        workspace_id, customer_id=customer_id, tracker=tracker
    )
    return {
        "approvals_with_created_drafts": count,
        "notice": pipeline.future_approvals_notice(count),
    }
