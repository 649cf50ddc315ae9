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

No ``stripe.*`` exception leaves this module: see :meth:`StripeProvider._translate`."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import stripe  # the SDK: absolute import, this module's own name only shadows it as a submodule

from connector.money import from_minor_units, to_minor_units
from connector.providers.base import (
    AccountingProvider,
    CreatedDraft,
    CredentialStore,
    DraftInvoice,
    DraftRecords,
    DraftState,
    InvoiceState,
    ProviderStatus,
    RateLimiter,
    ReconnectNeeded,
    Rejected,
    RemovalOutcome,
)
from connector.providers.stripe.client import (
    CONNECT_TIMEOUT_SECONDS,
    DASHBOARD_URL,
    DEFAULT_API_BASE_URL,
    DEFAULT_TIMEOUT_SECONDS,
    META_CURRENCIES,
    META_PENDING,
    RATE_LIMITS,
    STRIPE_API_VERSION,
    StripeClient,
)
from connector.providers.stripe.customers import StripeCustomers
from connector.providers.stripe.errors import KeyConflict, Replayed
from connector.providers.stripe.finding import StripeFinding
from connector.providers.stripe.payloads import (
    MAX_DESCRIPTION,
    MAX_INVOICE_LINES,
    as_dict,
    chunks,
    invoice_params,
    line_params,
)
from connector.providers.stripe.periods import StripePeriodLines
from connector.providers.stripe.status import invoice_status

log = logging.getLogger(__name__)


T = TypeVar("T")


# --- the provider ------------------------------------------------------------------------------
class StripeProvider(
    StripeClient, StripeCustomers, StripeFinding, StripePeriodLines, AccountingProvider
):
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
            invoice = as_dict(
                self._call(
                    "create the draft invoice",
                    self.client.v1.invoices.create,
                    params,
                    {"idempotency_key": f"{draft.key}:create"},
                    mutating=True,
                )
            )
        except Replayed:
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
        invoice = as_dict(
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
            except KeyConflict:
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
        except Replayed:
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
            return as_dict(
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
                raise KeyConflict(exc.message, code=exc.code, detail=exc.detail) from exc
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
            page = as_dict(
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
