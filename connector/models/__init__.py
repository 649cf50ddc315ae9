"""The tables. Each comment says why a column exists; statuses are listed where they are defined.
The invoice records and the books they live in are in ``invoices.py`` beside this module.

Migrations live in ``connector/migrations`` (Alembic); change a model, then
``flask --app connector db revision -m "..."``.
"""

from __future__ import annotations

import enum
import secrets
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from connector.db import Base, DecimalString


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store timezone-aware UTC datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def new_endpoint_token() -> str:
    return secrets.token_urlsafe(24)


# --- workspaces and access ---------------------------------------------------------------------
class Workspace(Base):
    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("tracker_source", "tracker_workspace_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The tracker the approvals come from (a key of ``connector.trackers.SOURCES``), chosen
    # when the workspace is created (default: the first registered source).
    tracker_source: Mapped[str] = mapped_column(String(40))
    tracker_workspace_id: Mapped[str] = mapped_column(String(200))
    # Unguessable path segment of the inbound webhook URL (the signature is the real check).
    endpoint_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_endpoint_token)
    # Encrypted JSON list of whsec_ secrets, newest first; several are valid while rotating.
    signing_secrets_encrypted: Mapped[str] = mapped_column(Text)
    # The one switch an admin flips: default OFF, approvals are then recorded but not invoiced.
    auto_invoicing: Mapped[bool] = mapped_column(Boolean, default=False)
    provider: Mapped[str] = mapped_column(String(40), default="local")
    # grouping, payment_terms_days, billing_increment, default_rate {amount, currency},
    # default_currency, tax_code: see connector.settings.WorkspaceSettings.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="default")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists so admins can tell them apart
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    workspace: Mapped[Workspace] = relationship()


class AdminUser(Base):
    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(400))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Part of every session's id: signing out (or a new password) bumps it, so a copy of an
    # older session cookie no longer signs anyone in.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class WorkspaceMember(Base):
    __tablename__ = "workspace_members"
    __table_args__ = (UniqueConstraint("workspace_id", "admin_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    admin_user_id: Mapped[int] = mapped_column(ForeignKey("admin_users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20), default="admin")


# --- inbound: deliveries (the inbox, kept forever as the audit log) -----------------------------
class DeliveryStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # authentic, valid, a job was queued
    INVALID = "invalid"  # authentic but malformed: kept for inspection, nothing queued
    IGNORED = "ignored"  # authentic, event type we do not act on
    SKIPPED = "skipped"  # automatic invoicing is off for the workspace
    PROCESSED = "processed"  # its job finished
    FAILED = "failed"  # its job failed for good


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("workspace_id", "webhook_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(40))
    webhook_id: Mapped[str] = mapped_column(String(255))  # dedupe key: same on every redelivery
    event_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    event_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    timesheet_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # raw bytes, exactly as signed
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.ACCEPTED)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    replay_of_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), nullable=True)


# --- the job outbox: the database row is the truth, huey only carries a nudge ------------------
class JobState(enum.StrEnum):
    PENDING = "pending"  # due at next_attempt_at
    RUNNING = "running"  # leased until lease_expires_at
    WAITING = (
        "waiting"  # parked on something a human fixes (reconnect, tracker data); see wait_reason
    )
    DONE = "done"
    FAILED = "failed"  # out of attempts or rejected; an admin can retry


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(40))  # process_delivery | sync_timesheet
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(20), default=JobState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=15)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The lease token of the current run (one per claim): only that run may renew or settle it.
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # When a worker last claimed it: claims are shared fairly between workspaces by recent claims.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    # When a retry was scheduled for (its ``next_attempt_at`` at that time); kept for operators.
    # Workers are woken by anonymous nudges (see connector.worker), not per job.
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    wait_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    workspace: Mapped[Workspace] = relationship()
    delivery: Mapped[Delivery | None] = relationship()


# --- approvals and their drafts ----------------------------------------------------------------
class TimesheetStatus(enum.StrEnum):
    APPROVED = "approved"
    WITHDRAWN = "withdrawn"  # unapproved / reopened / rejected after approval
    WAITING_FOR_DATA = "waiting_for_data"  # thin event: rows must be fetched from the tracker


class Timesheet(Base):
    """One tracker timesheet as the connector last understood it."""

    __tablename__ = "timesheets"
    __table_args__ = (UniqueConstraint("workspace_id", "source", "timesheet_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(40))
    timesheet_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(30))
    member: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    date_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    date_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    revision: Mapped[str | None] = mapped_column(String(64), nullable=True)  # live content revision
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # normalized rows
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Events arrive out of order: only a newer event may change status.
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # excluded minutes etc.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    drafts: Mapped[list[Draft]] = relationship(back_populates="timesheet", order_by="Draft.id")


class DraftStatus(enum.StrEnum):
    PENDING = "pending"  # key stored, provider not yet called (or outcome unknown)
    DRAFTED = "drafted"  # the provider confirmed the draft
    NEEDS_MAPPING = "needs_mapping"
    NEEDS_RATE = "needs_rate"
    CURRENCY_MISMATCH = "currency_mismatch"
    RECONNECT_NEEDED = "reconnect_needed"
    FAILED = "failed"  # the provider rejected it; message in error
    VOIDED = "voided"  # approval withdrawn, draft deleted/voided at the provider
    NEEDS_ATTENTION = "needs_attention"  # approval withdrawn but finance already sent it
    SUPERSEDED = "superseded"  # a newer revision or a resolved hold replaced this row


HOLD_STATUSES = frozenset(
    {DraftStatus.NEEDS_MAPPING, DraftStatus.NEEDS_RATE, DraftStatus.CURRENCY_MISMATCH}
)


class Draft(Base):
    """One per (timesheet revision, customer) - or per unmapped project while held."""

    __tablename__ = "drafts"
    __table_args__ = (
        UniqueConstraint("timesheet_pk", "revision", "subject_key"),
        # Status sync: a provider event names an invoice id; find its drafts without a scan.
        Index("ix_drafts_provider_ref", "provider", "provider_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    timesheet_pk: Mapped[int] = mapped_column(ForeignKey("timesheets.id", ondelete="CASCADE"))
    revision: Mapped[str] = mapped_column(String(64))
    subject_key: Mapped[str] = mapped_column(String(300))  # customer:<id> | project:<id> | ...
    # Deterministic idempotency key, stored BEFORE the provider is called.
    key: Mapped[str] = mapped_column(String(50), unique=True)
    status: Mapped[str] = mapped_column(String(30), default=DraftStatus.PENDING)
    customer_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    customer_name: Mapped[str | None] = mapped_column(String(500), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    total: Mapped[Decimal | None] = mapped_column(DecimalString(), nullable=True)
    minutes: Mapped[int] = mapped_column(Integer, default=0)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The tracker rows this draft bills, as [project_id, client_id or null] pairs (how rows are
    # resolved to a customer): once the draft exists at the provider these rows are left out of
    # any new plan of the same revision, so a mapping change can never bill them twice.
    covers: Mapped[list[list[str | None]] | None] = mapped_column(JSON, nullable=True)
    provider: Mapped[str | None] = mapped_column(String(40), nullable=True)
    provider_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    link: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    hold_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    hold_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A held row's hold is about these tracker ids ({"project_ids": [...], "client_ids": [...]}),
    # for the approval page's fix buttons; None when not held (or held before they were kept).
    hold_subjects: Mapped[dict[str, list[str]] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # What finance did with the invoice at the provider (draft, sent, paid, ...; see
    # providers.base.ProviderStatus), learnt from its webhooks or the reconcile job. Kept apart
    # from ``status``, which is our own lifecycle. None: never read yet.
    provider_status: Mapped[str | None] = mapped_column(String(30), nullable=True)
    provider_status_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The books (``connector.books``) its customer was mapped in: a row planned for other books
    # than the workspace bills to now is never sent there. None while held without a customer.
    books: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # The provider document these lines are on (or are being put on): one per timesheet and
    # customer, or, under per_period consolidation, one per customer and period shared by every
    # approval of it. None while held or before the first push.
    invoice_id: Mapped[int | None] = mapped_column(
        ForeignKey("invoices.id", ondelete="SET NULL"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    timesheet: Mapped[Timesheet] = relationship(back_populates="drafts")
    invoice: Mapped[Invoice | None] = relationship(back_populates="contributions")


# --- outbound: accounting / tracker connections --------------------------------------------------
class ConnectionStatus(enum.StrEnum):
    CONNECTED = "connected"
    RECONNECT_NEEDED = "reconnect_needed"
    DISCONNECTED = "disconnected"


class Connection(Base):
    __tablename__ = "connections"
    __table_args__ = (UniqueConstraint("workspace_id", "provider"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(40))  # an accounting provider or a tracker source
    status: Mapped[str] = mapped_column(String(30), default=ConnectionStatus.CONNECTED)
    account_id: Mapped[str | None] = mapped_column(String(255), nullable=True)  # realm / acct_
    account_name: Mapped[str | None] = mapped_column(String(500), nullable=True)
    environment: Mapped[str | None] = mapped_column(String(20), nullable=True)  # sandbox/test/live
    # Encrypted JSON (tokens, API key): never stored or logged in clear.
    credentials_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # cached ids, masked key
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class OAuthState(Base):
    """A connect flow an admin started and the provider has not answered yet (``connector.oauth
    .state``). Kept here, not in the session cookie, so an answer is accepted once: the row is
    deleted by the first callback that presents its state, and a copy of the cookie replays
    nothing. Only a hash of the state is stored."""

    __tablename__ = "oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256, hex
    provider: Mapped[str] = mapped_column(String(40))
    admin_id: Mapped[int] = mapped_column(ForeignKey("admin_users.id", ondelete="CASCADE"))
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    # What the flow needs back at the callback (the environment it was started in, a PKCE
    # verifier): never tokens.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ProviderCacheEntry(Base):
    """What a provider read from the accounting system and may reuse for a while (a QuickBooks
    customer's currency and terms, the service item): saves a request per draft. Shared by every
    process; ``fetched_at`` decides when an entry is read again, and a provider error saying the
    data changed deletes the connection's entries."""

    __tablename__ = "provider_cache"
    __table_args__ = (UniqueConstraint("workspace_id", "provider", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(40))
    # "<account id>:<kind>:<id>": the account (realm) in the name, so a workspace reconnected to
    # another company never reads the previous company's entries.
    name: Mapped[str] = mapped_column(String(300))
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- cross-process coordination ----------------------------------------------------------------
class Lock(Base):
    """Advisory lock rows: a unique name is the mutex, expires_at recovers from crashes."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RateLimitState(Base):
    """The shared provider rate limiter's state of one bucket (a QuickBooks company, a Stripe
    account) when Redis is absent: see ``connector.ratelimit``. Times are Unix seconds."""

    __tablename__ = "rate_limit_states"

    bucket: Mapped[str] = mapped_column(String(200), primary_key=True)
    # Per limit window ("1", "60"): the theoretical arrival time, i.e. when its next slot opens.
    tats: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    # Until when the provider asked every caller to wait (a 429's Retry-After); 0 when not paused.
    paused_until: Mapped[float] = mapped_column(Float, default=0.0)


class ThrottleCounter(Base):
    """Counters of the ``limits`` library (failed sign-ins) when Redis is absent: one row per key,
    reset when its window has expired (see ``connector.throttle``)."""

    __tablename__ = "throttle_counters"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


# --- the built-in local provider's books ----------------------------------------------------------
class LocalCustomer(Base):
    __tablename__ = "local_customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    tracker_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LocalInvoice(Base):
    __tablename__ = "local_invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(50), unique=True)  # the idempotency key
    customer_id: Mapped[str] = mapped_column(String(255))
    customer_name: Mapped[str] = mapped_column(String(500))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(DecimalString())
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    memo: Mapped[str] = mapped_column(Text, default="")
    private_note: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(20), default="draft")
    issue_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    due_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- mappings: tracker clients/projects -> accounting customers; rates --------------------------
class TrackerEntity(Base):
    """Every tracker client, project and member seen in approvals (for the mapping screen)."""

    __tablename__ = "tracker_entities"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", "tracker_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # client | project | member
    tracker_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(500), default="")
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    # For projects: the client they were last seen with (suggests the project's customer).
    client_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CustomerMapping(Base):
    """A tracker client or project billed to one accounting customer (projects override clients)."""

    __tablename__ = "customer_mappings"
    __table_args__ = (
        UniqueConstraint(
            "workspace_id", "books", "kind", "tracker_id", name="uq_customer_mappings_books"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    # The books the customer id belongs to (``connector.books``): only the mappings of the books
    # the workspace bills to now are used; the others are kept as history (A -> B -> A is A's).
    books: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))  # client | project
    tracker_id: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[str] = mapped_column(String(255))
    customer_name: Mapped[str] = mapped_column(String(500))
    customer_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class CustomerSettings(Base):
    """Per accounting customer overrides of the workspace settings (None = workspace's)."""

    __tablename__ = "customer_settings"
    __table_args__ = (
        UniqueConstraint("workspace_id", "books", "customer_id", name="uq_customer_settings_books"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    books: Mapped[str] = mapped_column(String(300))  # whose customer id (see CustomerMapping)
    customer_id: Mapped[str] = mapped_column(String(255))
    grouping: Mapped[str | None] = mapped_column(String(20), nullable=True)
    billing_increment: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payment_terms_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tax_code: Mapped[str | None] = mapped_column(String(100), nullable=True)
    consolidation: Mapped[str | None] = mapped_column(String(20), nullable=True)
    period: Mapped[str | None] = mapped_column(String(20), nullable=True)
    week_start: Mapped[str | None] = mapped_column(String(10), nullable=True)


class Rate(Base):
    """A billing rate in force from ``effective_from``; the scope is which ids are set."""

    __tablename__ = "rates"
    __table_args__ = (
        # A customer's rate names a customer of one set of books; other scopes name tracker ids.
        CheckConstraint("(customer_id IS NULL) = (books IS NULL)", name="ck_rates_customer_books"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    member_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    project_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    contract_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    customer_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The books ``customer_id`` belongs to (``connector.books``), as for CustomerMapping: billing
    # applies only the customer rates of the books the workspace bills to now; the others are
    # history. None exactly when the rate names no customer.
    books: Mapped[str | None] = mapped_column(String(300), nullable=True)
    amount: Mapped[Decimal] = mapped_column(DecimalString())
    currency: Mapped[str] = mapped_column(String(3))
    effective_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- tracker accounts polled for approvals (any source) ----------------------------------------
class TrackerTimesheetSeen(Base):
    """What the poller last saw of one tracker timesheet: the dedupe memory of polling.

    A new approval, an approval taken back and rows edited then re-approved are noticed by
    comparing (status, rows_hash) with what the tracker says now; ``transitions`` numbers the
    changes so each one gets its own delivery id (the deliveries' unique key dedupes races).
    """

    __tablename__ = "tracker_timesheets_seen"
    __table_args__ = (UniqueConstraint("workspace_id", "source", "timesheet_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(40))
    timesheet_id: Mapped[str] = mapped_column(String(255))  # whole, never trimmed
    status: Mapped[str] = mapped_column(String(30))
    rows_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    transitions: Mapped[int] = mapped_column(Integer, default=0)
    last_delivery_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Why the timesheet could not be taken in (malformed rows): shown to admins, poll goes on.
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TrackerRate(Base):
    """A rate read from the tracker (a contract's rate history, a project's rate); a cache.

    The billing engine sees these beside the admin's rates (``Rate``); an admin rate of the same
    scope and start day wins. Replaced wholesale on each refresh.
    """

    __tablename__ = "tracker_rates"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(String(40))
    member_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    project_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    contract_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    amount: Mapped[Decimal] = mapped_column(DecimalString())
    currency: Mapped[str] = mapped_column(String(3))
    effective_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# The provider documents and the books they live in: ``connector/models/invoices.py``.
from connector.models.invoices import AccountingBooks as AccountingBooks  # noqa: E402
from connector.models.invoices import Invoice as Invoice  # noqa: E402
from connector.models.invoices import InvoiceMode as InvoiceMode  # noqa: E402
from connector.models.invoices import InvoiceStatus as InvoiceStatus  # noqa: E402
