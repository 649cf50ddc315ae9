"""QuickBooks Online: customers, the service item, and "draft" invoices.

QuickBooks has no draft state. What this provider creates is an ordinary, unsent invoice
(``EmailStatus: NotSet``), which QuickBooks already counts as a receivable. Its PrivateNote says it
is a generated draft to review and carries a marker line ``tsi-key: <key>`` by which
:meth:`QuickBooksProvider.find_draft` finds it again.

Exactly once: the create is sent with ``?requestid=<draft.key>``, so QuickBooks answers a repeat
with the invoice of the first call. When a create's outcome is unknown (timeout, 5xx, dropped
connection) the pipeline calls :meth:`find_draft` before creating again. ``PrivateNote`` is not
filterable in QuickBooks queries, so ``find_draft`` asks for the invoices of the draft's customer
on the draft's ``TxnDate`` (both filterable, both known from the pipeline's ``drafts`` row): a
handful of rows however many invoices the company has. Only a key with no ``drafts`` row falls
back to paging through invoices created in the last ``QUICKBOOKS_FIND_LOOKBACK_DAYS`` days.

One request per draft: the customer's currency and terms and the service item are read once and
reused for ``QUICKBOOKS_CACHE_SECONDS`` (the customers in the shared ``provider_cache`` table, the
item id in the connection's meta); workers that miss the cache at once (a burst) wait for the
one filling it rather than all reading the same things. An invoice create refused with a 6xxx
business-validation error (or 610/2500, "made inactive" / "invalid reference") may mean they
changed in QuickBooks: the cache is dropped, the invoice is rebuilt from fresh reads and, if
that changed anything, sent once more under a derived ``requestid``.

The JSON is built by hand rather than with python-quickbooks objects: those send ``""`` for unset
dates and ``LineNum: 0``, Decimals as strings, and no timeouts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from connector import ratelimit
from connector.providers.base import (
    AccountingProvider,
    CreatedDraft,
    CredentialStore,
    CurrencyMismatch,
    DraftInvoice,
    DraftRecords,
    DraftState,
    InvoiceState,
    ProviderStatus,
    RateLimiter,
    ReconnectNeeded,
    Rejected,
    RemovalOutcome,
    RetryLater,
)
from connector.providers.quickbooks import oauth
from connector.providers.quickbooks.client import NotFound, QboHttp
from connector.providers.quickbooks.customers import QuickBooksCustomers
from connector.providers.quickbooks.payloads import (
    MAX_CUSTOMER_MEMO,
    build_invoice,
    decimal,
    has_marker,
    quote,
    request_id,
    select,
)
from connector.providers.quickbooks.periods import QuickBooksPeriodLines
from connector.providers.quickbooks.status import (
    STALE_OBJECT_CODE,
    STATES_PER_QUERY,
    invoice_status,
    says_references_changed,
)
from connector.validation import is_ascii_digits

log = logging.getLogger(__name__)


T = TypeVar("T")


DEFAULT_LOOKBACK_DAYS = 60


FIND_PAGE_SIZE = 200


DEFAULT_CACHE_SECONDS = 3600


DraftHint = tuple[str, date]  # (accounting customer id, the invoice's TxnDate)


# --- the provider -------------------------------------------------------------------------------
class QuickBooksProvider(QuickBooksCustomers, QuickBooksPeriodLines, AccountingProvider):
    name = "quickbooks"

    display_name = "QuickBooks Online"

    memo_max_chars = MAX_CUSTOMER_MEMO

    # The words of the private note; the rest of its 4,000 characters records each approval's key.
    note_max_chars = 1000

    def __init__(
        self,
        workspace_id: int,
        store: Any,
        settings: oauth.IntuitSettings,
        realm_id: str,
        *,
        limiter: RateLimiter,
        lookback_days: int = DEFAULT_LOOKBACK_DAYS,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        http: QboHttp | None = None,
        draft_hint: Callable[[str], DraftHint | None] | None = None,
        draft_records: DraftRecords | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.workspace_id = workspace_id
        self.store = store
        self.settings = settings
        self.realm_id = realm_id
        self.lookback_days = lookback_days
        self.cache_seconds = cache_seconds
        self.http = http or QboHttp(settings, store, realm_id, limiter=limiter)
        self.draft_records = draft_records
        self.draft_hint = draft_hint or self._draft_hint_from_records
        self._clock = clock
        self._terms: dict[str, int | None] = {}

    def _created(self, row: Mapping[str, Any]) -> CreatedDraft:
        total = decimal(row.get("TotalAmt"))
        balance = decimal(row.get("Balance"))
        note = str(row.get("PrivateNote") or "")
        if total == 0 and note.startswith("Voided"):
            state = DraftState.VOID
        elif row.get("EmailStatus") == "EmailSent" or (
            total is not None and balance is not None and balance != total
        ):
            state = DraftState.SENT
        else:
            state = DraftState.DRAFT
        provider_id = str(row["Id"])
        return CreatedDraft(
            provider_id=provider_id,
            link=self.draft_link(provider_id),
            state=state,
            number=str(row["DocNumber"]) if row.get("DocNumber") else None,
            total=total,
        )

    def invoice_body(self, draft: DraftInvoice) -> dict[str, Any]:
        """Check the customer and build the Invoice JSON (no write)."""
        customer = self.draft_customer(draft.customer_id)
        if customer is None:
            raise Rejected(
                f"QuickBooks customer {draft.customer_id} ({draft.customer_name}) does not exist "
                "or was deleted; map the client to another customer."
            )
        if customer.currency and customer.currency.upper() != draft.currency.upper():
            raise CurrencyMismatch(
                f"QuickBooks customer {customer.name} is billed in {customer.currency}, "
                f"this draft is in {draft.currency}.",
                customer_currency=customer.currency,
                draft_currency=draft.currency,
            )
        return build_invoice(
            draft,
            item_id=self.service_item_id(),
            tax_code=self._tax_code(draft),
            customer_currency=customer.currency,
            customer_terms_days=customer.payment_terms_days,
        )

    def _post_invoice(self, body: dict[str, Any], rid: str) -> CreatedDraft:
        created = self.http.request("POST", "invoice", params={"requestid": rid}, body=body)
        row = created.get("Invoice")
        if not row or not row.get("Id"):
            raise Rejected("QuickBooks answered the invoice create without an invoice.")
        return self._created(row)

    def create_draft(self, draft: DraftInvoice) -> CreatedDraft:
        try:
            return self._create_draft(draft)
        except RetryLater as exc:
            # The invoice POST is the only write under the key, and every error that may follow
            # a sent write says outcome_unknown: anything else (the limiter's refusal, a 429, a
            # failed read before the POST) left nothing to look up.
            if not exc.outcome_unknown:
                exc.created_nothing = True
            raise

    def _create_draft(self, draft: DraftInvoice) -> CreatedDraft:
        body = self.invoice_body(draft)
        try:
            return self._post_invoice(body, request_id(draft.key))
        except Rejected as exc:
            if not says_references_changed(exc):
                raise
            # The cached customer/item may be what QuickBooks refused: read them again. Only
            # when that changes the invoice is it worth sending again; a refusal of a request
            # that reached nothing created nothing, so a derived requestid cannot duplicate.
            log.info("QuickBooks refused an invoice (code %s): dropping the read cache", exc.code)
            self.drop_cache()
            fresh = self.invoice_body(draft)
            if fresh == body:
                raise
            return self._post_invoice(fresh, request_id(f"{draft.key}:fresh"))

    def _draft_hint_from_records(self, key: str) -> DraftHint | None:
        """The customer and issue date recorded for ``key`` (given by the factory)."""
        if self.draft_records is None:
            return None
        try:
            record = self.draft_records(key)
        except Exception:  # only a hint: the lookback scan still runs
            log.debug("no draft hint for key %s", key, exc_info=True)
            return None
        if record is None or not record.customer_id:
            return None
        # The pipeline issues a draft on the UTC day its row was created (see draft_invoice).
        return (str(record.customer_id), record.created_at.astimezone(UTC).date())

    def _scan(self, where: str, key: str) -> CreatedDraft | None:
        start = 1
        while True:
            rows = (
                self.http.query(
                    select(
                        "Invoice",
                        where,
                        "ORDERBY MetaData.CreateTime DESC "
                        f"STARTPOSITION {start} MAXRESULTS {FIND_PAGE_SIZE}",
                    )
                ).get("Invoice")
                or []
            )
            for row in rows:
                if has_marker(row.get("PrivateNote"), key):
                    return self._created(row)
            if len(rows) < FIND_PAGE_SIZE:
                return None
            start += len(rows)

    def find_draft(self, key: str) -> CreatedDraft | None:
        hint = self.draft_hint(key)
        if hint is not None:
            customer_id, issue_date = hint
            # CustomerRef and TxnDate are filterable: one short page, whatever the company's size.
            return self._scan(
                f"CustomerRef = {quote(customer_id)} AND TxnDate = {quote(issue_date.isoformat())}",
                key,
            )
        since = (datetime.now(UTC) - timedelta(days=self.lookback_days)).strftime(
            "%Y-%m-%dT%H:%M:%S+00:00"
        )
        return self._scan(f"MetaData.CreateTime >= {quote(since)}", key)

    def _read_invoice(self, provider_id: str) -> Mapping[str, Any] | None:
        try:
            row = self.http.request("GET", f"invoice/{provider_id}").get("Invoice")
        except NotFound:
            return None
        if not row or row.get("status") == "Deleted":
            return None
        return row

    def remove_draft(self, provider_id: str) -> RemovalOutcome:
        if not is_ascii_digits(provider_id):
            return RemovalOutcome.ALREADY_GONE
        for attempt in (1, 2):
            row = self._read_invoice(provider_id)
            if row is None:
                return RemovalOutcome.ALREADY_GONE
            if self._created(row).state != DraftState.DRAFT:
                return RemovalOutcome.NOT_A_DRAFT  # sent, paid or voided: finance owns it now
            try:
                self.http.request(
                    "POST",
                    "invoice",
                    params={"operation": "delete"},
                    body={"Id": str(row["Id"]), "SyncToken": str(row["SyncToken"])},
                )
                return RemovalOutcome.DELETED
            except NotFound:
                return RemovalOutcome.ALREADY_GONE
            except Rejected as exc:
                # Someone edited it between our read and delete: read again and re-decide.
                if exc.code != STALE_OBJECT_CODE or attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def fetch_invoice_states(self, refs: Sequence[str]) -> dict[str, InvoiceState]:
        """One ``SELECT * FROM Invoice WHERE Id IN (...)`` per 100 invoices (rate limited by the
        shared limiter in QboHttp); an id the query does not return was deleted."""
        wanted = list(dict.fromkeys(ref for ref in refs if is_ascii_digits(ref)))
        found: dict[str, Mapping[str, Any]] = {}
        for start in range(0, len(wanted), STATES_PER_QUERY):
            chunk = wanted[start : start + STATES_PER_QUERY]
            ids = ", ".join(quote(ref) for ref in chunk)
            rows = (
                self.http.query(
                    select("Invoice", f"Id IN ({ids})", f"MAXRESULTS {STATES_PER_QUERY}")
                ).get("Invoice")
                or []
            )
            found.update({str(row.get("Id")): row for row in rows})
        states = {}
        for ref in refs:
            row = found.get(ref)
            states[ref] = (
                InvoiceState(
                    status=invoice_status(row),
                    balance=decimal(row.get("Balance")),
                    total=decimal(row.get("TotalAmt")),
                )
                if row is not None
                else InvoiceState(status=ProviderStatus.DELETED)
            )
        return states

    def draft_link(self, provider_id: str) -> str | None:
        return f"{self.settings.app_base_url}/app/invoice?txnId={provider_id}"


def create(
    workspace_id: int,
    store: CredentialStore,
    config: Mapping[str, Any],
    *,
    limiter: RateLimiter | None = None,
    draft_records: DraftRecords | None = None,
) -> QuickBooksProvider:
    """The QuickBooks provider of a workspace (``build_provider`` calls this)."""
    realm_id = store.account_id
    if not realm_id:
        raise ReconnectNeeded("QuickBooks is not connected for this workspace.")
    try:
        settings = oauth.settings_from_config(config, store.environment)
        lookback = int(config.get("QUICKBOOKS_FIND_LOOKBACK_DAYS") or DEFAULT_LOOKBACK_DAYS)
        cache_setting = config.get("QUICKBOOKS_CACHE_SECONDS")
        cache_seconds = float(
            DEFAULT_CACHE_SECONDS if cache_setting in (None, "") else cache_setting
        )
    except (oauth.QuickBooksConfigError, ValueError) as exc:
        # A deployment problem, not the admin's connection: jobs wait until it is fixed.
        raise ReconnectNeeded(f"QuickBooks configuration problem: {exc}") from None
    if limiter is None:
        limiter = ratelimit.shared_limiter()
    return QuickBooksProvider(
        workspace_id,
        store,
        settings,
        str(realm_id),
        limiter=limiter,
        lookback_days=lookback,
        cache_seconds=cache_seconds,
        draft_records=draft_records,
    )
