"""Stripe provider: one draft invoice per customer, created exactly once.

A draft costs exactly two API calls: ``POST /v1/invoices`` (``auto_advance=false``,
``collection_method=send_invoice``, metadata naming the timesheet and the draft key), then
``POST /v1/invoices/{id}/add_lines`` with up to :data:`LINES_PER_CALL` lines of integer minor-unit
amounts (more lines: one more call per chunk).

Exactly once, in layers:

1. Every mutating call carries a deterministic ``Idempotency-Key`` derived from ``draft.key``
   (``<key>:create``, ``<key>:lines:<chunk>``). A repeat within Stripe's retention (~24 h)
   replays the stored response instead of creating anything.
2. Between the two calls the connection's ``meta["pending_drafts"]`` records key -> invoice id.
   A later ``create_draft`` (a retry after a crash, a job parked for days waiting for a reconnect,
   so after Stripe pruned the keys) resumes that invoice: it lists the lines already there (each
   line carries ``draft_key``/``line`` metadata) and adds only the missing ones.
3. ``find_draft(key)`` looks in the pending record, then lists the customer's invoices (strongly
   consistent; the customer comes from the pipeline's ``drafts`` row), then falls back to
   ``/v1/invoices/search`` (eventually consistent, about a minute). An invoice whose lines are
   incomplete is NOT reported as found: it is recorded as pending and ``None`` is returned, so the
   caller's next ``create_draft`` completes it instead of recording a half-filled draft.
4. Same key with different parameters (``IdempotencyError``) or a replayed 500 reconciles through
   the customer's invoice list; a second invoice is never created while one exists for the key.
   A replayed 500 on ``add_lines`` reconciles through the invoice's lines: only the missing ones
   go out, under a fresh key derived from the chunk's.

Currency is checked before anything is sent: the Stripe customer's locked currency is cached in
``meta["customer_currencies"]`` (filled by get/list/create customer and after each draft); only an
unknown customer costs one ``GET /v1/customers/{id}`` (a third call), and Stripe's own "cannot
combine currencies" error is translated too, as a backstop.

No ``stripe.*`` exception leaves this module: see :meth:`StripeProvider._translate`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any, TypeVar

import stripe  # the SDK: absolute import, this module's own name only shadows it as a submodule
from stripe.oauth_error import OAuthError

from connector import observability, ratelimit
from connector.money import format_money, from_minor_units, to_minor_units
from connector.providers.base import (
    AccountingCustomer,
    AccountingProvider,
    CreatedDraft,
    CredentialStore,
    CurrencyMismatch,
    CustomerPage,
    DraftInvoice,
    DraftLine,
    DraftRecords,
    DraftState,
    InvoiceState,
    NewCustomer,
    NotADraft,
    ProviderError,
    ProviderStatus,
    RateLimiter,
    ReconnectNeeded,
    Rejected,
    RemovalOutcome,
    RetryLater,
    Throttled,
)
from connector.retry_after import retry_after

log = logging.getLogger(__name__)

# The one place the API version is pinned: the version stripe-python 16.1.0 was generated for
# (stripe._api_version._ApiVersion.CURRENT); a test fails if an SDK upgrade changes it.
STRIPE_API_VERSION = "2026-10-28.endive"

DEFAULT_API_BASE_URL = "https://api.stripe.com"
DEFAULT_CONNECT_BASE_URL = "https://connect.stripe.com"
DASHBOARD_URL = "https://dashboard.stripe.com"
DEFAULT_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10.0
# Used when neither workspace nor customer sets payment terms (documented in docs/stripe.md).
DEFAULT_DAYS_UNTIL_DUE = 30
# Stripe documents no per-call cap for add_lines (250 items per invoice at most): stay modest.
LINES_PER_CALL = 50
MAX_INVOICE_LINES = 250
# Stripe allows 25 req/s in test mode and 100 in live; the shared limiter is a fixed window,
# so keep a margin.
RATE_LIMITS: dict[str, tuple[tuple[int, float], ...]] = {
    "test": ((20, 1.0),),
    "live": ((80, 1.0),),
}
DEFAULT_RETRY_AFTER = 2.0
MAX_DESCRIPTION = 1500
META_PENDING = "pending_drafts"
META_CURRENCIES = "customer_currencies"

T = TypeVar("T")


# --- small pure helpers ------------------------------------------------------------------------
def _as_dict(obj: Any) -> dict[str, Any]:
    """Stripe objects are not dicts since v15: work on plain data from here on."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.to_dict()


def _metadata(*sources: Mapping[str, Any]) -> dict[str, str]:
    """Merge metadata within Stripe's limits (50 keys, key <= 40 chars without [], value <= 500).

    Later sources win, and the last source's keys are kept first when trimming to 50 keys, so the
    keys the connector relies on (draft_key, ...) are never the ones dropped.
    """
    merged: dict[str, str] = {}
    for source in sources:
        for key, value in source.items():
            if value is None:
                continue
            clean = re.sub(r"[\[\]]", "_", str(key))[:40]
            merged[clean] = str(value)[:500]
    if len(merged) > 50:
        essential = {re.sub(r"[\[\]]", "_", str(k))[:40] for k in sources[-1]}
        extra = [k for k in merged if k not in essential][: 50 - len(essential)]
        merged = {k: v for k, v in merged.items() if k in essential or k in extra}
    return merged


def _timestamp(day: date) -> int:
    # Noon UTC shows the same calendar date in the Dashboard from UTC-11 to UTC+11, whereas
    # midnight would slip a day back for every account west of Greenwich.
    return int(datetime.combine(day, dtime(12, 0), tzinfo=UTC).timestamp())


def line_description(line: DraftLine, currency: str) -> str:
    """The billing description plus the rate (``... - 8 h 50 min x 27.50 USD/h``)."""
    rate = f"{format_money(line.unit_price, currency)}/h"
    if rate in line.description:
        return line.description
    return f"{line.description} x {rate}"


def line_params(draft: DraftInvoice, index: int, line: DraftLine) -> dict[str, Any]:
    """One ``lines[]`` entry of add_lines: integer minor units, never a float or a Decimal."""
    currency = draft.currency.upper()  # the money helpers take ISO codes in upper case
    params: dict[str, Any] = {
        "amount": to_minor_units(line.amount, currency),
        "description": line_description(line, currency),
        # draft_key + index let a resumed create_draft tell which lines are already there.
        "metadata": _metadata(
            line.metadata,
            {"draft_key": draft.key, "line": str(index), "hours": str(line.quantity)},
        ),
    }
    start = line.period_start or line.service_date
    end = line.period_end or line.service_date or start
    if start is not None and end is not None:
        params["period"] = {"start": _timestamp(start), "end": _timestamp(max(start, end))}
    return params


def chunks(items: Sequence[T], size: int = LINES_PER_CALL) -> list[tuple[int, Sequence[T]]]:
    """(chunk index, items) pairs; chunk boundaries are deterministic, so are their keys."""
    return [(i // size, items[i : i + size]) for i in range(0, len(items), size)]


def invoice_params(draft: DraftInvoice, workspace_id: int) -> dict[str, Any]:
    terms = draft.payment_terms_days
    params: dict[str, Any] = {
        "customer": draft.customer_id,
        # Explicitly false: with true Stripe finalizes the draft by itself about an hour later.
        "auto_advance": False,
        "collection_method": "send_invoice",
        "days_until_due": DEFAULT_DAYS_UNTIL_DUE if terms is None else terms,
        # Only our lines: never sweep the customer's other pending invoice items into this draft.
        "pending_invoice_items_behavior": "exclude",
        "currency": draft.currency.lower(),
        "metadata": _metadata(
            draft.metadata,
            {
                "workspace_id": str(workspace_id),
                "customer_id": draft.customer_id,
                "draft_key": draft.key,
                "line_count": str(len(draft.lines)),
                "internal_note": draft.private_note or None,
            },
        ),
    }
    if draft.memo:
        params["description"] = draft.memo[:MAX_DESCRIPTION]
    return params


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


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def _retry_after(headers: Mapping[str, str] | None) -> float:
    wait = retry_after(headers)  # seconds or an HTTP date (connector.retry_after)
    return DEFAULT_RETRY_AFTER if wait is None else wait


def _not_editable(exc: ProviderError) -> bool:
    """Stripe's refusal to change an invoice that is no longer a draft."""
    text = f"{exc.code or ''} {exc.message or ''}".lower()
    return "invoice_not_editable" in text or "not a draft" in text or "finalized" in text


def _search_literal(value: str) -> str:
    # Stripe's search language quotes strings with double quotes, escaped with a backslash.
    return value.replace("\\", "\\\\").replace('"', '\\"')


class _Replayed(RetryLater):
    """A 5xx Stripe replayed from its idempotency cache: retrying the same key cannot help."""


class _KeyConflict(Rejected):
    """Stripe's idempotency_error: this key was first used with other parameters."""


# --- the provider ------------------------------------------------------------------------------
class StripeProvider(AccountingProvider):
    name = "stripe"
    display_name = "Stripe"
    memo_max_chars = MAX_DESCRIPTION  # the invoice description (the Dashboard's memo)
    note_max_chars = 500  # kept as the metadata value internal_note

    def __init__(
        self,
        *,
        workspace_id: int,
        store: Any,
        api_key: str,
        environment: str,
        method: str = "api_key",
        stripe_account: str | None = None,
        account_id: str | None = None,
        api_base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        limiter: RateLimiter | None = None,
        draft_records: DraftRecords | None = None,
    ):
        self.workspace_id = workspace_id
        self.draft_records = draft_records
        self.store = store  # a DbCredentialStore: load/meta/update_meta/lock/mark_reconnect_needed
        self.environment = environment if environment in RATE_LIMITS else "test"
        self.method = method
        self.stripe_account = stripe_account
        self.account_id = account_id or stripe_account
        self._limiter = limiter
        self.client = stripe.StripeClient(
            api_key,
            stripe_account=stripe_account,  # Connect: every call carries Stripe-Account
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": api_base_url or DEFAULT_API_BASE_URL},
            # The job queue owns retries (with the same idempotency keys): the SDK must not retry.
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=(CONNECT_TIMEOUT_SECONDS, timeout)),
        )

    # -- plumbing
    @property
    def limiter(self) -> RateLimiter:
        if self._limiter is None:
            self._limiter = ratelimit.shared_limiter()
        return self._limiter

    @property
    def bucket(self) -> str:
        return f"stripe:{self.account_id or f'workspace-{self.workspace_id}'}"

    def _call(self, what: str, fn: Callable[..., T], *args: Any, mutating: bool = False) -> T:
        """Rate-limit, call the SDK, translate every Stripe exception (none may escape)."""
        self.limiter.acquire(self.bucket, RATE_LIMITS[self.environment])
        try:
            result = fn(*args)
        except stripe.StripeError as exc:
            observability.count_provider_call("stripe", exc.http_status)
            raise self._translate(exc, what=what, mutating=mutating) from exc
        observability.count_provider_call("stripe", 200)
        return result

    def _reconnect(self, reason: str, exc: stripe.StripeError) -> ReconnectNeeded:
        try:
            self.store.mark_reconnect_needed(reason)
        except Exception:  # the jobs still wait on ReconnectNeeded
            log.exception("could not mark the Stripe connection of workspace %s", self.workspace_id)
        return ReconnectNeeded(reason, code=exc.code, detail=exc.user_message)

    def _translate(self, exc: stripe.StripeError, *, what: str, mutating: bool) -> ProviderError:
        message = exc.user_message or str(exc)
        code = exc.code or (exc.error.code if exc.error is not None else None)
        if isinstance(exc, OAuthError) or code == "account_invalid":
            return self._reconnect(
                "Stripe no longer lets this app act on the account (it was disconnected or "
                "deauthorized): reconnect Stripe.",
                exc,
            )
        if isinstance(exc, stripe.AuthenticationError):
            return self._reconnect(
                "Stripe rejected the API key (revoked, rolled or expired): reconnect Stripe.", exc
            )
        if isinstance(exc, stripe.PermissionError):
            return self._reconnect(
                f"The Stripe key lacks a permission needed to {what}: {message} "
                "Create a key with the permissions in docs/stripe.md and reconnect.",
                exc,
            )
        if isinstance(exc, stripe.RateLimitError):
            if code == "lock_timeout":
                # One object is being changed by another request: not an account-wide limit.
                return RetryLater(
                    f"Stripe is busy with this object ({what})",
                    retry_after=_retry_after(exc.headers),
                    code=code,
                    detail=message,
                )
            # Every worker's calls to this account wait, not only this job's.
            wait = _retry_after(exc.headers)
            self.limiter.pause(self.bucket, wait)
            return Throttled(
                f"Stripe is rate limiting requests ({what})",
                retry_after=wait,
                code=code or "rate_limit",
                detail=message,
            )
        if isinstance(exc, stripe.IdempotencyError):
            # Callers that send keys handle this themselves; reaching here is a programming error
            # the admin can still read.
            return Rejected(message, code="idempotency_error")
        if isinstance(exc, (stripe.InvalidRequestError, stripe.CardError)):
            param = getattr(exc, "param", None)
            return Rejected(
                message,
                code=code or "invalid_request",
                detail=f"parameter {param}" if param else None,
            )
        # APIConnectionError (timeout, reset), APIError (5xx, 409 concurrent key use) and anything
        # unforeseen: transient, and for a POST the request may have been committed.
        replayed = (_header(exc.headers, "Idempotent-Replayed") or "").lower() == "true"
        cls = _Replayed if replayed and mutating else RetryLater
        return cls(
            f"Stripe could not be reached or failed ({what})",
            outcome_unknown=mutating,
            code=code or type(exc).__name__,
            detail=message,
        )

    # -- connection meta (cache and pending drafts), serialized across processes
    def _meta(self, name: str) -> dict[str, Any]:
        return dict(self.store.meta().get(name) or {})

    def _update_meta(self, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        try:
            with self.store.lock("meta", timeout=10.0):
                values = self._meta(name)
                before = dict(values)
                change(values)
                if values != before:
                    self.store.update_meta(**{name: values})
        except Exception:  # a cache/bookkeeping write must not fail a draft
            log.exception("could not update Stripe connection meta %s", name)

    def _remember_currencies(self, customers: Sequence[AccountingCustomer]) -> None:
        locked = {c.id: c.currency.lower() for c in customers if c.currency}
        if locked:
            self._update_meta(META_CURRENCIES, lambda cache: cache.update(locked))

    def _set_pending(self, key: str, invoice_id: str, customer_id: str) -> None:
        record = {"invoice": invoice_id, "customer": customer_id, "at": int(time.time())}
        self._update_meta(META_PENDING, lambda pending: pending.update({key: record}))

    def _clear_pending(self, key: str) -> None:
        self._update_meta(META_PENDING, lambda pending: pending.pop(key, None))

    # -- customers
    def _customer(self, data: Mapping[str, Any]) -> AccountingCustomer:
        currency = data.get("currency")
        return AccountingCustomer(
            id=data["id"],
            name=data.get("name") or data.get("email") or data["id"],
            email=data.get("email"),
            currency=currency.upper() if currency else None,
        )

    def list_customers(
        self, *, query: str | None = None, cursor: str | None = None, limit: int = 100
    ) -> CustomerPage:
        # Cursors are opaque to the caller: "s:<page token>" for search, "l:<customer id>" for list.
        limit = max(1, min(limit, 100))
        query = (query or "").strip()
        if query and len(query) >= 3 and not (cursor or "").startswith("l:"):
            page = self._search_customers(query, cursor[2:] if cursor else None, limit)
            if page is not None:
                return page
            cursor = None
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["starting_after"] = cursor[2:]
        if query and "@" in query and " " not in query:
            params["email"] = query  # exact (case-sensitive) email filter of the list endpoint
        result = _as_dict(self._call("list customers", self.client.v1.customers.list, params))
        data = result.get("data") or []
        customers = [self._customer(c) for c in data]
        if query and "email" not in params:
            needle = query.lower()
            customers = [
                c for c in customers if needle in c.name.lower() or needle in (c.email or "")
            ]
        self._remember_currencies(customers)
        more = bool(result.get("has_more")) and bool(data)
        return CustomerPage(
            customers=tuple(customers), next_cursor=f"l:{data[-1]['id']}" if more else None
        )

    def _search_customers(self, query: str, page: str | None, limit: int) -> CustomerPage | None:
        literal = _search_literal(query)
        params: dict[str, Any] = {
            "query": f'name~"{literal}" OR email~"{literal}"',
            "limit": limit,
        }
        if page:
            params["page"] = page
        try:
            result = _as_dict(
                self._call("search customers", self.client.v1.customers.search, params)
            )
        except Rejected:
            # Search is unavailable in some regions/accounts: the caller falls back to listing.
            return None
        customers = [self._customer(c) for c in result.get("data") or []]
        self._remember_currencies(customers)
        next_page = result.get("next_page") if result.get("has_more") else None
        return CustomerPage(
            customers=tuple(customers), next_cursor=f"s:{next_page}" if next_page else None
        )

    def get_customer(self, customer_id: str) -> AccountingCustomer | None:
        try:
            data = _as_dict(
                self._call("read a customer", self.client.v1.customers.retrieve, customer_id)
            )
        except Rejected as exc:
            if exc.code == "resource_missing":
                return None
            raise
        if data.get("deleted"):
            return None
        customer = self._customer(data)
        self._remember_currencies([customer])
        return customer

    def create_customer(self, new: NewCustomer) -> AccountingCustomer:
        name = new.name.strip()
        if not name:
            raise Rejected("A customer needs a name.")
        params: dict[str, Any] = {"name": name}
        if new.email:
            params["email"] = new.email
        if new.tracker_id:
            params["metadata"] = _metadata(
                {"tracker_client_id": new.tracker_id, "workspace_id": str(self.workspace_id)}
            )
        # Same request twice (a double click, a retried job) -> the same customer, not two.
        digest = hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()[:32]
        options = {"idempotency_key": f"customer:{self.workspace_id}:{digest}"}
        data = _as_dict(
            self._call(
                "create a customer",
                self.client.v1.customers.create,
                params,
                options,
                mutating=True,
            )
        )
        # A new customer has no currency yet: Stripe locks it with the first invoice.
        return self._customer(data)

    # -- drafts
    def _created(self, invoice: Mapping[str, Any]) -> CreatedDraft:
        status = invoice.get("status")
        state = {
            "draft": DraftState.DRAFT,
            "void": DraftState.VOID,
        }.get(status or "", DraftState.SENT)
        if invoice.get("deleted"):
            state = DraftState.DELETED
        total = invoice.get("total")
        currency = (invoice.get("currency") or "").upper()
        return CreatedDraft(
            provider_id=invoice["id"],
            link=self.draft_link(invoice["id"]),
            state=state,
            number=invoice.get("number"),
            total=from_minor_units(total, currency)
            if isinstance(total, int) and currency
            else None,
        )

    def _check_currency(self, draft: DraftInvoice) -> None:
        """Hold a draft the customer's locked currency would refuse, before sending anything."""
        wanted = draft.currency.lower()
        locked = self._meta(META_CURRENCIES).get(draft.customer_id)
        if locked is None:
            customer = self.get_customer(draft.customer_id)  # the 3rd call, first draft only
            if customer is None:
                raise Rejected(
                    f"Stripe customer {draft.customer_id} ({draft.customer_name}) no longer "
                    "exists: map the client to another customer.",
                    code="resource_missing",
                )
            locked = customer.currency.lower() if customer.currency else None
        if locked and locked != wanted:
            raise self._mismatch(draft, locked)

    def _mismatch(self, draft: DraftInvoice, locked: str | None) -> CurrencyMismatch:
        shown = locked.upper() if locked else "another currency"
        return CurrencyMismatch(
            f"Stripe customer {draft.customer_name} ({draft.customer_id}) is billed in {shown}; "
            f"this draft is in {draft.currency.upper()}. Stripe cannot mix currencies on one "
            "customer: map the client to a customer in the draft's currency or change its rate.",
            customer_currency=locked.upper() if locked else "",
            draft_currency=draft.currency.upper(),
            code="currency_mismatch",
        )

    def _translate_mismatch(self, exc: Rejected, draft: DraftInvoice) -> ProviderError:
        if "combine currencies" not in (exc.message or "").lower():
            return exc
        # "... This customer has had a subscription, coupon, or invoice item with currency eur"
        found = re.search(r"\bcurrency ([a-z]{3})\b", exc.message)
        return self._mismatch(draft, found.group(1) if found else None)

    def _validate(self, draft: DraftInvoice) -> None:
        if not draft.lines:
            raise Rejected("A draft invoice needs at least one line.")
        if len(draft.lines) > MAX_INVOICE_LINES:
            raise Rejected(
                f"Stripe allows at most {MAX_INVOICE_LINES} lines per invoice; this draft has "
                f"{len(draft.lines)}. Group the lines by project or customer instead."
            )
        try:
            for line in draft.lines:
                to_minor_units(line.amount, draft.currency.upper())
        except (TypeError, ValueError) as exc:
            raise Rejected(f"A line amount cannot be sent to Stripe: {exc}") from exc

    def create_draft(self, draft: DraftInvoice) -> CreatedDraft:
        self._validate(draft)
        pending = self._meta(META_PENDING).get(draft.key)
        if pending:
            # A previous attempt created the invoice but did not finish its lines.
            invoice = self._retrieve_invoice(pending["invoice"])
            if invoice is None:
                self._clear_pending(draft.key)
                raise Rejected(
                    f"The Stripe draft {pending['invoice']} started for this timesheet was deleted "
                    "before all its lines were added; retry the draft to create it again.",
                    code="draft_deleted",
                )
            return self._resume(invoice, draft)

        self._check_currency(draft)
        params = invoice_params(draft, self.workspace_id)
        try:
            invoice = _as_dict(
                self._call(
                    "create the draft invoice",
                    self.client.v1.invoices.create,
                    params,
                    {"idempotency_key": f"{draft.key}:create"},
                    mutating=True,
                )
            )
        except _Replayed:
            # Stripe replays a stored 5xx for this key until it expires: look, then (only if
            # nothing exists) create under a new key.
            return self._reconcile_or_create(draft, params)
        except Rejected as exc:
            if exc.code == "idempotency_error":
                # Same key, different parameters (e.g. the memo changed): the first request
                # may have created the invoice; never create a second one.
                found = self._find_for_customer(draft.customer_id, draft.key)
                if found is not None:
                    return self._resume(found, draft)
                raise Rejected(
                    "Stripe refused to reuse this draft's idempotency key with changed details, "
                    "and no invoice exists for it yet; retry in 24 hours or contact support.",
                    code="idempotency_error",
                    detail=exc.detail or exc.message,
                ) from exc
            raise self._translate_mismatch(exc, draft) from exc
        return self._add_all_lines(invoice, draft)

    def _reconcile_or_create(self, draft: DraftInvoice, params: dict[str, Any]) -> CreatedDraft:
        found = self._find_for_customer(draft.customer_id, draft.key)
        if found is not None:
            return self._resume(found, draft)
        # The customer's invoice list is strongly consistent and shows no invoice for the key,
        # and the job lease keeps a second worker out: a fresh key (per hour, so a retry inside
        # the hour reuses it) cannot duplicate.
        key = f"{draft.key}:create:{int(time.time()) // 3600}"
        invoice = _as_dict(
            self._call(
                "create the draft invoice",
                self.client.v1.invoices.create,
                params,
                {"idempotency_key": key},
                mutating=True,
            )
        )
        return self._add_all_lines(invoice, draft)

    def _add_all_lines(self, invoice: dict[str, Any], draft: DraftInvoice) -> CreatedDraft:
        """Lines of a freshly created (or key-replayed) invoice: each chunk under its own key."""
        self._set_pending(draft.key, invoice["id"], draft.customer_id)
        lines = [line_params(draft, i, line) for i, line in enumerate(draft.lines)]
        for index, chunk in chunks(lines):
            try:
                invoice = self._add_chunk(
                    invoice["id"], list(chunk), f"{draft.key}:lines:{index}", draft
                )
            except _KeyConflict:
                # This chunk's key was used before with other content: the line metadata, not
                # the keys, now says what is missing; _resume adds exactly that and finishes.
                current = self._retrieve_invoice(invoice["id"])
                if current is None:
                    raise
                return self._resume(current, draft)
        return self._finish(invoice, draft)

    def _add_chunk(
        self, invoice_id: str, lines: list[dict[str, Any]], key: str, draft: DraftInvoice
    ) -> dict[str, Any]:
        """Add one chunk; a replayed 5xx is reconciled like one on create.

        Stripe stores a 5xx under the idempotency key and replays it for ~24 h, so sending the
        same key again cannot help: look at the invoice's lines (their metadata says which landed)
        and send only the missing ones under a fresh key derived from this one (per hour, so a
        retry inside the hour reuses it; the job lease keeps a second worker out).
        """
        try:
            return self._add_lines(invoice_id, lines, key, draft)
        except _Replayed:
            present = self._present_lines(invoice_id, draft.key)
            missing = [p for p in lines if p["metadata"]["line"] not in present]
            if not missing:
                invoice = self._retrieve_invoice(invoice_id)
                if invoice is None:
                    raise
                return invoice
            fresh = f"{key}:retry-{int(time.time()) // 3600}"
            if len(missing) != len(lines):
                fresh += "-rest-" + missing[0]["metadata"]["line"]
            return self._add_lines(invoice_id, missing, fresh, draft)

    def _add_lines(
        self, invoice_id: str, lines: list[dict[str, Any]], key: str, draft: DraftInvoice
    ) -> dict[str, Any]:
        try:
            return _as_dict(
                self._call(
                    "add the invoice lines",
                    self.client.v1.invoices.add_lines,
                    invoice_id,
                    {"lines": lines},
                    {"idempotency_key": key},
                    mutating=True,
                )
            )
        except Rejected as exc:
            if exc.code == "idempotency_error":
                raise _KeyConflict(exc.message, code=exc.code, detail=exc.detail) from exc
            raise self._translate_mismatch(exc, draft) from exc

    def _finish(self, invoice: dict[str, Any], draft: DraftInvoice) -> CreatedDraft:
        self._clear_pending(draft.key)
        # The customer is now locked to this currency: later drafts skip the GET.
        self._update_meta(
            META_CURRENCIES, lambda cache: cache.update({draft.customer_id: draft.currency.lower()})
        )
        return self._created(invoice)

    def _resume(self, invoice: dict[str, Any], draft: DraftInvoice) -> CreatedDraft:
        """Add the lines a previous attempt did not, judged by the lines' own metadata."""
        if invoice.get("status") != "draft":
            # Finance finalized/sent it (or it is void): hands off, report it as it is.
            self._clear_pending(draft.key)
            return self._created(invoice)
        self._set_pending(draft.key, invoice["id"], draft.customer_id)
        present = self._present_lines(invoice["id"], draft.key)
        lines = [line_params(draft, i, line) for i, line in enumerate(draft.lines)]
        for index, chunk in chunks(lines):
            missing = [p for p in chunk if p["metadata"]["line"] not in present]
            if not missing:
                continue
            # A whole missing chunk is exactly the original request: reuse its key (a replay
            # within 24 h returns Stripe's stored answer). A partial one gets its own key. A key
            # conflict here is not reconciled again (no loop): it fails as Rejected.
            key = f"{draft.key}:lines:{index}"
            if len(missing) != len(chunk):
                key += ":rest-" + missing[0]["metadata"]["line"]
            invoice = self._add_chunk(invoice["id"], missing, key, draft)
            present.update(p["metadata"]["line"] for p in missing)
        return self._finish(invoice, draft)

    def _present_lines(self, invoice_id: str, key: str) -> set[str]:
        return {
            str(line["metadata"]["line"])
            for line in self._lines_of(invoice_id, key)
            if line["metadata"].get("line") is not None
        }

    def _lines_of(self, invoice_id: str, key: str) -> list[dict[str, Any]]:
        """The invoice's lines added under ``key`` (their ``draft_key`` metadata)."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            page = _as_dict(
                self._call(
                    "list the invoice lines",
                    self.client.v1.invoices.line_items.list,
                    invoice_id,
                    params,
                )
            )
            data = page.get("data") or []
            for line in data:
                meta = line.get("metadata") or {}
                if meta.get("draft_key") == key:
                    found.append({**line, "metadata": meta})
            if not page.get("has_more") or not data:
                return found
            params = {"limit": 100, "starting_after": data[-1]["id"]}

    def _retrieve_invoice(self, invoice_id: str) -> dict[str, Any] | None:
        try:
            invoice = _as_dict(
                self._call("read the invoice", self.client.v1.invoices.retrieve, invoice_id)
            )
        except Rejected as exc:
            if exc.code == "resource_missing":
                return None
            raise
        return None if invoice.get("deleted") else invoice

    def _find_for_customer(self, customer_id: str, key: str) -> dict[str, Any] | None:
        """The customer's recent invoice carrying ``key`` (a list call: strongly consistent)."""
        result = _as_dict(
            self._call(
                "list the customer's invoices",
                self.client.v1.invoices.list,
                {"customer": customer_id, "limit": 100},
            )
        )
        for invoice in result.get("data") or []:
            if (invoice.get("metadata") or {}).get("draft_key") == key:
                return invoice
        return None

    def _search_invoice(self, key: str) -> dict[str, Any] | None:
        query = f"metadata['draft_key']:\"{_search_literal(key)}\""
        try:
            result = _as_dict(
                self._call(
                    "search invoices", self.client.v1.invoices.search, {"query": query, "limit": 10}
                )
            )
        except Rejected:
            return None  # search unavailable for this account
        for invoice in result.get("data") or []:
            if (invoice.get("metadata") or {}).get("draft_key") == key:
                return invoice
        return None

    def _customer_hint(self, key: str) -> str | None:
        """The accounting customer recorded for ``key`` (given by the factory)."""
        if self.draft_records is None:
            return None
        try:
            record = self.draft_records(key)
        except Exception:  # only a hint; the search below still runs
            log.debug("no customer hint for draft key %s", key, exc_info=True)
            return None
        return record.customer_id if record is not None else None

    def _candidates(self, key: str) -> Iterator[dict[str, Any]]:
        pending = self._meta(META_PENDING).get(key)
        if pending:
            invoice = self._retrieve_invoice(pending["invoice"])
            if invoice is not None:
                yield invoice
                return
        customer = (pending or {}).get("customer") or self._customer_hint(key)
        if customer:
            # Listing is strongly consistent: when it shows nothing, search (which lags) would
            # not know better, so it is not asked.
            invoice = self._find_for_customer(customer, key)
            if invoice is not None:
                yield invoice
            return
        invoice = self._search_invoice(key)
        if invoice is not None:
            yield invoice

    def find_draft(self, key: str) -> CreatedDraft | None:
        for invoice in self._candidates(key):
            expected = (invoice.get("metadata") or {}).get("line_count")
            have = (invoice.get("lines") or {}).get("total_count")
            incomplete = (
                invoice.get("status") == "draft"
                and expected is not None
                and isinstance(have, int)
                and have < int(expected)
            )
            if incomplete:
                # Report "not found" and remember the invoice: the caller's create_draft then
                # completes this invoice rather than the pipeline recording a half-filled draft.
                customer = invoice.get("customer")
                if isinstance(customer, dict):
                    customer = customer.get("id")
                self._set_pending(key, invoice["id"], str(customer or ""))
                return None
            self._clear_pending(key)
            return self._created(invoice)
        return None

    def remove_draft(self, provider_id: str) -> RemovalOutcome:
        invoice = self._retrieve_invoice(provider_id)
        if invoice is None:
            return RemovalOutcome.ALREADY_GONE
        status = invoice.get("status")
        if status == "void":
            return RemovalOutcome.ALREADY_GONE
        if status != "draft":
            return RemovalOutcome.NOT_A_DRAFT  # open/paid/uncollectible: finance owns it now
        try:
            self._call(
                "delete the draft invoice",
                self.client.v1.invoices.delete,
                provider_id,
                mutating=True,
            )
        except Rejected as exc:
            if exc.code == "resource_missing":
                return RemovalOutcome.ALREADY_GONE
            raise
        self._update_meta(
            META_PENDING,
            lambda pending: [
                pending.pop(k) for k, v in list(pending.items()) if v.get("invoice") == provider_id
            ],
        )
        return RemovalOutcome.DELETED

    # -- per_period consolidation: lines of many approvals on one draft
    def append_lines(self, provider_id: str, draft: DraftInvoice) -> CreatedDraft:
        """Add ``draft.lines`` to a draft invoice, tagged ``draft_key`` = ``draft.key``.

        The invoice is read first: only a ``draft`` is appended to (finance may have finalized it
        a second ago; Stripe then refuses the add, which is translated too). Lines already there
        under the key (a retry after a crash) are not sent again; each chunk goes under its own
        idempotency key, as on create."""
        self._validate(draft)
        invoice = self._retrieve_invoice(provider_id)
        if invoice is None or invoice.get("status") != "draft":
            raise NotADraft(
                f"Stripe invoice {provider_id} is "
                f"{(invoice or {}).get('status') or 'deleted'}, no longer a draft."
            )
        total_lines = (invoice.get("lines") or {}).get("total_count")
        if isinstance(total_lines, int) and total_lines + len(draft.lines) > MAX_INVOICE_LINES:
            raise Rejected(
                f"Stripe allows at most {MAX_INVOICE_LINES} lines per invoice; the period's draft "
                f"has {total_lines} and this approval adds {len(draft.lines)}. Group the lines by "
                "project, or bill this customer per timesheet."
            )
        present = self._present_lines(provider_id, draft.key)
        lines = [line_params(draft, i, line) for i, line in enumerate(draft.lines)]
        try:
            for index, chunk in chunks(lines):
                missing = [p for p in chunk if p["metadata"]["line"] not in present]
                if not missing:
                    continue
                key = f"{draft.key}:lines:{index}"
                if len(missing) != len(chunk):
                    key += ":rest-" + missing[0]["metadata"]["line"]
                invoice = self._add_chunk(provider_id, missing, key, draft)
                present.update(p["metadata"]["line"] for p in missing)
        except Rejected as exc:
            if _not_editable(exc):
                raise NotADraft(exc.message, code=exc.code, detail=exc.detail) from exc
            raise
        invoice = self._set_memo(invoice, draft.memo, draft.key, draft.private_note)
        return self._created(invoice)

    def remove_lines(
        self, provider_id: str, key: str, memo: str | None = None, note: str | None = None
    ) -> RemovalOutcome:
        """Remove the lines added under ``key`` (``POST /v1/invoices/{id}/remove_lines``)."""
        invoice = self._retrieve_invoice(provider_id)
        if invoice is None or invoice.get("status") == "void":
            return RemovalOutcome.ALREADY_GONE
        if invoice.get("status") != "draft":
            return RemovalOutcome.NOT_A_DRAFT
        ids = sorted(str(line["id"]) for line in self._lines_of(provider_id, key))
        try:
            if ids:
                digest = hashlib.sha256(",".join(ids).encode()).hexdigest()[:12]
                invoice = _as_dict(
                    self._call(
                        "remove the invoice lines",
                        self.client.v1.invoices.remove_lines,
                        provider_id,
                        {"lines": [{"id": i, "behavior": "delete"} for i in ids]},
                        {"idempotency_key": f"{key}:remove:{digest}"},
                        mutating=True,
                    )
                )
            if memo is not None:
                self._set_memo(invoice, memo, f"{key}:remove", note)
        except Rejected as exc:
            if _not_editable(exc):
                return RemovalOutcome.NOT_A_DRAFT
            raise
        return RemovalOutcome.DELETED

    def _set_memo(
        self, invoice: dict[str, Any], memo: str, key: str, note: str | None = None
    ) -> dict[str, Any]:
        """The invoice description (and internal note) list the period's approvals, each once
        (one update when they changed)."""
        memo = memo[:MAX_DESCRIPTION]
        params: dict[str, Any] = {}
        if memo and invoice.get("description") != memo:
            params["description"] = memo
        internal = (note or "")[:500]
        if internal and (invoice.get("metadata") or {}).get("internal_note") != internal:
            params["metadata"] = {"internal_note": internal}
        if not params:
            return invoice
        digest = hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()[:12]
        return _as_dict(
            self._call(
                "update the invoice memo",
                self.client.v1.invoices.update,
                invoice["id"],
                params,
                {"idempotency_key": f"{key}:memo:{digest}"},
                mutating=True,
            )
        )

    def abandon_draft(self, key: str) -> RemovalOutcome:
        """Delete the half-filled invoice a create under ``key`` left (lines never all added)."""
        pending = self._meta(META_PENDING).get(key)
        if not pending:
            return RemovalOutcome.ALREADY_GONE
        outcome = self.remove_draft(pending["invoice"])
        self._clear_pending(key)
        return outcome

    def fetch_invoice_states(self, refs: Sequence[str]) -> dict[str, InvoiceState]:
        """One ``GET /v1/invoices/{id}`` per invoice, each through the shared limiter (Stripe
        has no batch read by id); a missing or deleted invoice is ``DELETED``."""
        states: dict[str, InvoiceState] = {}
        for ref in dict.fromkeys(refs):
            invoice = self._retrieve_invoice(ref) if ref.startswith("in_") else None
            if invoice is None:
                states[ref] = InvoiceState(status=ProviderStatus.DELETED)
                continue
            currency = (invoice.get("currency") or "").upper()

            def money(value: Any, currency: str = currency) -> Any:
                return from_minor_units(value, currency) if isinstance(value, int) else None

            states[ref] = InvoiceState(
                status=invoice_status(invoice),
                balance=money(invoice.get("amount_remaining")) if currency else None,
                total=money(invoice.get("total")) if currency else None,
            )
        return states

    def draft_link(self, provider_id: str) -> str | None:
        # Dashboard pattern: /[acct_…/][test/]invoices/{id}. With Connect the account id makes
        # the Dashboard switch to the connected account the invoice lives in.
        parts = [DASHBOARD_URL]
        if self.method == "oauth" and self.account_id:
            parts.append(self.account_id)
        if self.environment != "live":
            parts.append("test")
        parts.append(f"invoices/{provider_id}")
        return "/".join(parts)


def create(
    workspace_id: int,
    store: CredentialStore | None,
    config: Mapping[str, Any],
    *,
    draft_records: DraftRecords | None = None,
) -> StripeProvider:
    """The workspace's Stripe provider, from its stored (encrypted) credentials."""
    credentials = store.load() if store is not None else {}
    if store is None or not credentials:
        raise ReconnectNeeded("Stripe is not connected for this workspace.")
    connection = store.connection()
    if connection is not None and connection.status == "reconnect_needed":
        raise ReconnectNeeded(connection.last_error or "Stripe needs to be reconnected.")
    method = credentials.get("method", "api_key")
    if method == "oauth":
        api_key = config.get("STRIPE_PLATFORM_SECRET_KEY")
        account = credentials.get("stripe_user_id")
        if not api_key or not account:
            raise ReconnectNeeded(
                "Stripe Connect needs STRIPE_PLATFORM_SECRET_KEY and a connected account."
            )
    else:
        api_key = credentials.get("api_key")
        account = None
        if not api_key:
            raise ReconnectNeeded("No Stripe API key is stored: reconnect Stripe.")
    environment = store.environment or ("live" if "_live_" in str(api_key) else "test")
    try:
        timeout = float(config.get("STRIPE_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS)
    except (TypeError, ValueError):
        timeout = DEFAULT_TIMEOUT_SECONDS
    return StripeProvider(
        workspace_id=workspace_id,
        store=store,
        api_key=str(api_key),
        environment=environment,
        method=method,
        stripe_account=account,
        account_id=store.account_id or account,
        api_base_url=config.get("STRIPE_API_BASE_URL") or None,
        timeout=timeout,
        draft_records=draft_records,
    )
