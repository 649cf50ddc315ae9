"""The accounting-provider interface and the few errors that tell the caller what to do next.

Every accounting system (the built-in ``local`` one, QuickBooks Online, Stripe) implements
:class:`AccountingProvider`. The pipeline only ever sees the types in this module: vendor SDK
exceptions are translated inside each provider and never cross this boundary.

Exactly-once contract: :meth:`AccountingProvider.create_draft` is called with a deterministic
``DraftInvoice.key``. A provider must make a repeated call with the same key return the invoice
created by the first call (QuickBooks ``requestid``, Stripe ``Idempotency-Key``, a unique column
locally), and :meth:`AccountingProvider.find_draft` must find that invoice by the key alone, so a
caller whose previous attempt ended in an unknown outcome can look before it creates.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol


# --- errors ------------------------------------------------------------------------------------
class ProviderError(Exception):
    """Base class: something the provider said or did that the caller must act on."""

    def __init__(self, message: str, *, code: str | None = None, detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        parts = [self.message]
        if self.code:
            parts.append(f"(code {self.code})")
        if self.detail and self.detail != self.message:
            parts.append(f"- {self.detail}")
        return " ".join(parts)


class RetryLater(ProviderError):
    """Transient: throttled, 5xx, timeout, connection dropped. Try again with the SAME key.

    ``outcome_unknown`` is True when the request may have been committed by the provider (a
    timeout or 5xx after sending a create): the caller must call ``find_draft(key)`` before it
    ever creates under a different key.

    ``created_nothing`` is True when the provider knows the failed ``create_draft`` left nothing
    under the key (the shared limiter refused the call before it was sent, or the provider
    refused it with a 429): the next try need not look the key up first. Only a provider whose
    create is a single write can say so; the default (False) keeps the look-up.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        outcome_unknown: bool = False,
        code: str | None = None,
        detail: str | None = None,
        created_nothing: bool = False,
    ):
        super().__init__(message, code=code, detail=detail)
        self.retry_after = retry_after
        self.outcome_unknown = outcome_unknown
        self.created_nothing = created_nothing


class Throttled(RetryLater):
    """The provider asked every caller for this account to wait ``retry_after`` seconds (a 429),
    or the shared limiter is holding the account's calls back that long.

    Not the job's fault: the worker reschedules the job for when the pause ends without spending
    one of its attempts.
    """


class ReconnectNeeded(ProviderError):
    """The credentials are revoked, expired beyond refresh, or the account was deauthorized.

    Jobs wait (they do not fail) until an admin reconnects the account.
    """


class Rejected(ProviderError):
    """The provider refused the request as invalid: retrying the same request cannot help.

    ``message`` is the provider's own words, shown to the admin.
    """


class DuplicateCustomer(Rejected):
    """Creating a customer clashed with an existing one (QuickBooks 6240); link it instead."""

    def __init__(self, message: str, *, existing: AccountingCustomer | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.existing = existing


class NotADraft(Rejected):
    """The invoice lines were to be added to or removed from is no longer a draft: finance sent,
    finalized or voided it (or deleted it). The caller leaves it alone."""


class CurrencyMismatch(Rejected):
    """The accounting customer is locked to another currency than the draft's."""

    def __init__(self, message: str, *, customer_currency: str, draft_currency: str, **kw: Any):
        super().__init__(message, **kw)
        self.customer_currency = customer_currency
        self.draft_currency = draft_currency


# --- values exchanged with providers -----------------------------------------------------------
@dataclass(frozen=True)
class AccountingCustomer:
    id: str
    name: str
    email: str | None = None
    currency: str | None = None  # None: the provider has not locked one yet
    payment_terms_days: int | None = None


@dataclass(frozen=True)
class CustomerPage:
    customers: tuple[AccountingCustomer, ...]
    next_cursor: str | None = None  # opaque; pass back to get the next page


@dataclass(frozen=True)
class NewCustomer:
    """A customer to create from a tracker-side client."""

    name: str
    email: str | None = None
    currency: str | None = None
    tracker_id: str | None = None  # kept as metadata / a note so finance can trace it back


@dataclass(frozen=True)
class DraftLine:
    description: str
    quantity: Decimal  # hours; quantize_money(quantity * unit_price) == amount holds
    unit_price: Decimal
    amount: Decimal  # rounded to the currency's minor unit, half-up
    service_date: date | None = None
    period_start: date | None = None
    period_end: date | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DraftInvoice:
    """One customer's invoice for one approved timesheet revision, ready to send."""

    key: str  # deterministic, <= 50 chars: idempotency key / requestid
    customer_id: str  # the accounting system's customer id
    customer_name: str
    currency: str
    lines: tuple[DraftLine, ...]
    total: Decimal
    memo: str  # shown to the customer (QBO CustomerMemo / Stripe description)
    private_note: str  # internal: names the timesheet and says it is a generated draft
    period_start: date
    period_end: date
    issue_date: date
    payment_terms_days: int | None = None
    tax_code: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


class DraftState(enum.StrEnum):
    DRAFT = "draft"  # still editable / unsent: the connector may delete it
    SENT = "sent"  # finance sent or finalized it: hands off
    VOID = "void"
    DELETED = "deleted"


@dataclass(frozen=True)
class CreatedDraft:
    provider_id: str
    link: str | None
    state: DraftState = DraftState.DRAFT
    number: str | None = None
    total: Decimal | None = None


class ProviderStatus(enum.StrEnum):
    """Where an invoice stands at the provider, as the console and the API show it."""

    DRAFT = "draft"  # unsent (QuickBooks) / draft (Stripe): the connector may still remove it
    SENT = "sent"  # sent or finalized, nothing paid yet: hands off
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    UNCOLLECTIBLE = "uncollectible"  # Stripe: finance wrote it off
    VOIDED = "voided"
    DELETED = "deleted"  # gone at the provider (deleted by finance or by a withdrawal)


# States finance can no longer change back into a draft: the reconcile job stops reading them.
SETTLED_PROVIDER_STATUSES = frozenset(
    {ProviderStatus.PAID, ProviderStatus.VOIDED, ProviderStatus.DELETED}
)
# States in which the connector must never touch the invoice (a withdrawal only flags it).
HANDS_OFF_PROVIDER_STATUSES = frozenset(
    {
        ProviderStatus.SENT,
        ProviderStatus.PARTIALLY_PAID,
        ProviderStatus.PAID,
        ProviderStatus.UNCOLLECTIBLE,
    }
)


@dataclass(frozen=True)
class InvoiceState:
    """One invoice's provider state, read by :meth:`AccountingProvider.fetch_invoice_states`."""

    status: ProviderStatus
    balance: Decimal | None = None  # what is still owed, when the provider says
    total: Decimal | None = None


class RemovalOutcome(enum.StrEnum):
    DELETED = "deleted"
    VOIDED = "voided"
    ALREADY_GONE = "already_gone"
    NOT_A_DRAFT = "not_a_draft"  # finance already sent/finalized it: left alone


# --- what a provider gets from the app ---------------------------------------------------------
@dataclass(frozen=True)
class DraftRecord:
    """What we recorded for a draft key before calling the provider: enough for ``find_draft``
    to look in one short page (that customer, that day) instead of scanning the account."""

    customer_id: str | None
    created_at: datetime


# key -> the record, or None. Supplied by the factory (``build_provider``): an adapter never
# reads our tables itself.
DraftRecords = Callable[[str], DraftRecord | None]


class CredentialStore(Protocol):
    """Per-connection persistence a provider needs, supplied by the app.

    ``save`` commits at once in its own transaction (a rotated QuickBooks refresh token must be
    durable before the new access token is used). ``lock`` is held across every worker and web
    process (one token refresh at a time per company).
    """

    def load(self) -> dict[str, Any]: ...

    def save(self, credentials: dict[str, Any]) -> None: ...

    def lock(self, name: str, timeout: float = 30.0) -> AbstractContextManager[None]: ...

    def mark_reconnect_needed(self, reason: str) -> None: ...

    # The connected account (``connector.connections.store.DbCredentialStore`` implements all).
    @property
    def account_id(self) -> str | None: ...

    @property
    def environment(self) -> str | None: ...

    def connection(self) -> Any:
        """The stored connection row (its ``status``, ``last_error``), or None."""
        ...

    def meta(self) -> dict[str, Any]: ...

    def update_meta(self, **values: Any) -> None: ...

    # The shared read cache (customers, terms) of the provider account, per entry with its age.
    def cache_get(self, name: str) -> tuple[dict[str, Any], datetime] | None: ...

    def cache_put(
        self, name: str, value: dict[str, Any], fetched_at: datetime | None = None
    ) -> None: ...

    def cache_drop(self, prefix: str = "") -> None: ...


class RateLimiter(Protocol):
    """Shared across processes (``connector.ratelimit``): one bucket per provider account."""

    def acquire(self, bucket: str, limits: tuple[tuple[int, float], ...]) -> None:
        """Block until one more request to ``bucket`` may be sent, or raise :class:`Throttled`
        when that is too far away (the account is paused or its budget booked)."""
        ...

    def pause(self, bucket: str, seconds: float) -> None:
        """The provider answered 429: hold every worker's requests to ``bucket`` this long."""
        ...

    def concurrent(
        self, bucket: str, limit: int, lease: float = 120.0
    ) -> AbstractContextManager[None]:
        """Hold one of ``limit`` in-flight slots of ``bucket`` (every process shares them), or
        raise :class:`Throttled` when none frees up soon."""
        ...


class AccountingProvider(abc.ABC):
    """What every accounting system offers the pipeline and the admin console."""

    name: str = ""
    display_name: str = ""
    # How long a memo (shown to the customer) and a private note may be, when the provider caps
    # them: the pipeline lists a period invoice's approvals within these ("and 3 more").
    memo_max_chars: int | None = None
    note_max_chars: int | None = None

    # customers (mapping screen)
    @abc.abstractmethod
    def list_customers(
        self, *, query: str | None = None, cursor: str | None = None, limit: int = 100
    ) -> CustomerPage: ...

    def iter_customers(self, *, query: str | None = None) -> Iterator[AccountingCustomer]:
        cursor: str | None = None
        while True:
            page = self.list_customers(query=query, cursor=cursor)
            yield from page.customers
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    @abc.abstractmethod
    def get_customer(self, customer_id: str) -> AccountingCustomer | None: ...

    @abc.abstractmethod
    def create_customer(self, new: NewCustomer) -> AccountingCustomer: ...

    # drafts
    @abc.abstractmethod
    def create_draft(self, draft: DraftInvoice) -> CreatedDraft:
        """Create the invoice under ``draft.key``; the same key again returns the same invoice."""

    @abc.abstractmethod
    def find_draft(self, key: str) -> CreatedDraft | None:
        """The invoice created under ``key``, if any (reconciles unknown outcomes)."""

    @abc.abstractmethod
    def remove_draft(self, provider_id: str) -> RemovalOutcome:
        """Delete (or void where deleting is impossible) an invoice that is still a draft."""

    def abandon_draft(self, key: str) -> RemovalOutcome:
        """Remove whatever an unfinished create under ``key`` left behind.

        Called when an approval is withdrawn while its draft's creation never completed (e.g.
        Stripe's invoice exists but not all lines were added). Providers whose create is a
        single call have nothing to clean up.
        """
        return RemovalOutcome.ALREADY_GONE

    # per_period consolidation: one invoice, lines appended and removed per approval
    def append_lines(self, provider_id: str, draft: DraftInvoice) -> CreatedDraft:
        """Add ``draft.lines`` to the existing draft invoice ``provider_id``, tagged with
        ``draft.key``, and set its memo and private note to ``draft.memo`` and
        ``draft.private_note`` (which name every approval on the invoice, once).

        Idempotent on ``draft.key``: lines already on the invoice under that key are not added
        again (a retry after a crash or an unknown outcome). Raises :class:`NotADraft` when the
        invoice is no longer a draft; nothing is added then.
        """
        raise Rejected(f"{self.display_name} cannot add lines to an existing draft.")

    def remove_lines(
        self, provider_id: str, key: str, memo: str | None = None, note: str | None = None
    ) -> RemovalOutcome:
        """Remove only the lines added under ``key`` from the draft ``provider_id`` (and set its
        memo and private note to ``memo`` and ``note`` when given). ``NOT_A_DRAFT`` when finance
        sent it: nothing changed."""
        raise Rejected(f"{self.display_name} cannot remove lines from a draft.")

    def fetch_invoice_states(self, refs: Sequence[str]) -> dict[str, InvoiceState]:
        """The current state of each invoice in ``refs`` (provider ids), read in as few calls as
        the provider allows and within its rate limits. An invoice the provider no longer has is
        reported as ``DELETED``; every ref asked for is in the answer."""
        raise NotImplementedError(f"{self.name} cannot report invoice states")

    @abc.abstractmethod
    def draft_link(self, provider_id: str) -> str | None:
        """A deep link a human can open to review the draft."""
