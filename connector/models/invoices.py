"""The provider documents (``Invoice``: one per QuickBooks invoice, Stripe draft invoice or
ledger invoice, with the approvals' Draft rows on it) and the books they live in
(``AccountingBooks``: the ledger, one QuickBooks company, one Stripe account)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from connector.db import Base, DecimalString
from connector.models import UTCDateTime, utcnow

if TYPE_CHECKING:
    from connector.models import Draft


class InvoiceStatus(enum.StrEnum):
    PENDING = "pending"  # its key is stored, the provider has not confirmed it yet
    DRAFTED = "drafted"  # a draft at the provider; per_period approvals append to it
    CLOSED = "closed"  # finance sent or finalized it: hands off, a new approval opens another
    VOIDED = "voided"  # deleted or voided at the provider (every approval on it withdrawn)


class InvoiceMode(enum.StrEnum):
    PER_TIMESHEET = "per_timesheet"  # one approval's hours for one customer
    PER_PERIOD = "per_period"  # one customer's period: every approval of it appends its lines


class Invoice(Base):
    """One provider document (a QuickBooks invoice, a Stripe draft invoice, a ledger invoice):
    what finance sees. Its lines are the lines of the Draft rows that refer to it (each row is
    one approval's contribution); per_timesheet invoices have exactly one.

    ``key`` is the key of the contribution that creates it at the provider (the idempotency
    key); the others append their lines under their own keys. ``seq`` counts a customer's
    invoices of one period: a new one is opened when finance sent the previous one.
    """

    __tablename__ = "invoices"
    __table_args__ = (
        Index("ix_invoices_provider_ref", "workspace_id", "provider", "provider_id"),
        Index("ix_invoices_period", "workspace_id", "books", "customer_id", "period_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(20), default=InvoiceMode.PER_TIMESHEET)
    # The books it lives in (``connector.books``): never looked up, changed or removed through
    # a connection to other books.
    books: Mapped[str] = mapped_column(String(300))
    provider: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[str] = mapped_column(String(255))
    customer_name: Mapped[str] = mapped_column(String(500), default="")
    currency: Mapped[str] = mapped_column(String(3))
    # per_timesheet: the approval it bills; per_period: None (its contributions say which).
    timesheet_pk: Mapped[int | None] = mapped_column(
        ForeignKey("timesheets.id", ondelete="SET NULL"), nullable=True
    )
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    seq: Mapped[int] = mapped_column(Integer, default=1)
    key: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default=InvoiceStatus.PENDING)
    # Sum of the totals of the contributions on it (lines are rounded one by one, so the
    # provider's total is the same sum); minutes likewise.
    total: Mapped[Decimal] = mapped_column(DecimalString(), default=Decimal(0))
    minutes: Mapped[int] = mapped_column(Integer, default=0)
    provider_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    link: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # Where it stands at the provider (providers.base.ProviderStatus), from webhooks, the
    # reconcile job and withdrawals; mirrored on its contributions for the per-approval views.
    provider_status: Mapped[str | None] = mapped_column(String(30), nullable=True)
    provider_status_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A person must look: an approval on it was withdrawn after finance sent it, or it lives in
    # books this workspace no longer reaches. ``attention_message`` says what and why.
    needs_attention: Mapped[bool] = mapped_column(Boolean, default=False)
    attention_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    contributions: Mapped[list[Draft]] = relationship(back_populates="invoice", order_by="Draft.id")


# --- the books: where a customer id means something ------------------------------------------
class AccountingBooks(Base):
    """A set of books a workspace has billed into: the built-in ledger, one QuickBooks company,
    one Stripe account (and mode). Mappings, customer settings and invoices carry its ``key``
    (``connector.books``); this row keeps the name people know it by, also after the workspace
    moved to other books, so old mappings read as history ("QuickBooks company Acme Sandbox")."""

    __tablename__ = "accounting_books"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(300))
    provider: Mapped[str] = mapped_column(String(40))
    account_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    environment: Mapped[str | None] = mapped_column(String(20), nullable=True)
    name: Mapped[str | None] = mapped_column(String(500), nullable=True)
    last_connected_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
