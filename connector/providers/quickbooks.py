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
dates and ``LineNum: 0``, Decimals as strings, and no timeouts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from connector import ratelimit
from connector.providers import quickbooks_oauth as oauth
from connector.providers.base import (
    AccountingCustomer,
    AccountingProvider,
    CreatedDraft,
    CredentialStore,
    CurrencyMismatch,
    CustomerPage,
    DraftInvoice,
    DraftRecords,
    DraftState,
    DuplicateCustomer,
    InvoiceState,
    NewCustomer,
    NotADraft,
    ProviderStatus,
    RateLimiter,
    ReconnectNeeded,
    Rejected,
    RemovalOutcome,
    RetryLater,
)
from connector.providers.quickbooks_http import NotFound, QboHttp
from connector.validation import is_ascii_digits

log = logging.getLogger(__name__)

T = TypeVar("T")
# How long a worker waits for another one filling the same cache entry before reading it itself.
FILL_WAIT_SECONDS = 10.0

MARKER_PREFIX = "tsi-key: "
MAX_CUSTOMER_MEMO = 1000
MAX_PRIVATE_NOTE = 4000
MAX_DESCRIPTION = 4000
MAX_DISPLAY_NAME = 500
MAX_REQUEST_ID = 50
MAX_QUERY_RESULTS = 1000  # QuickBooks' cap on MAXRESULTS
DEFAULT_SERVICE_ITEM_NAME = "Hours"
DEFAULT_LOOKBACK_DAYS = 60
FIND_PAGE_SIZE = 200
DUPLICATE_NAME_CODE = "6240"
STALE_OBJECT_CODE = "5010"
DEFAULT_CACHE_SECONDS = 3600
# Codes besides 6xxx after which cached references may be out of date ("Object Not Found:
# something you're trying to use has been made inactive", "Invalid Reference Id").
STALE_REFERENCE_CODES = {"610", "2500"}

DraftHint = tuple[str, date]  # (accounting customer id, the invoice's TxnDate)


# --- small pure helpers (tested directly) ------------------------------------------------------
def quote(value: str) -> str:
    """A QuickBooks query string literal: single quotes escaped with a backslash."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def select(entity: str, where: str = "", tail: str = "") -> str:
    """A QuickBooks query statement (read-only, one entity); literals in ``where`` must come from
    :func:`quote`."""
    parts = ["SELECT * FROM", entity]
    if where:
        parts += ["WHERE", where]
    if tail:
        parts.append(tail)
    return " ".join(parts)


def says_references_changed(exc: Rejected) -> bool:
    """A refused create whose cause may be a customer, item or account changed in QuickBooks."""
    code = str(exc.code or "")
    return (len(code) == 4 and code.startswith("6")) or code in STALE_REFERENCE_CODES


def marker(key: str) -> str:
    return f"{MARKER_PREFIX}{key}"


def has_marker(private_note: Any, key: str) -> bool:
    # A whole-line match, so key "a-1" never matches an invoice made under "a-12".
    wanted = marker(key)
    return isinstance(private_note, str) and any(
        line.strip() == wanted for line in private_note.splitlines()
    )


def line_tag(key: str) -> str:
    """per_period: the short reference ending each line an approval put on a shared invoice.

    QuickBooks lines carry no metadata, so this is how a withdrawal finds only its own lines
    (and finance can tell them apart). Eight hex digits of the draft key's hash."""
    return f"[tsi {hashlib.sha256(key.encode()).hexdigest()[:8]}]"


def has_line_tag(line: Mapping[str, Any], key: str) -> bool:
    return str(line.get("Description") or "").endswith(line_tag(key))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def private_note(note: str, key: str) -> str:
    """The internal note plus the marker line; the note is clipped, never the marker."""
    return marked_note(note, [key])


def note_keys(private_note: Any) -> list[str]:
    """The keys of the approvals on an invoice, from its marker lines, in order."""
    if not isinstance(private_note, str):
        return []
    return [
        line.strip()[len(MARKER_PREFIX) :]
        for line in private_note.splitlines()
        if line.strip().startswith(MARKER_PREFIX)
    ]


def marked_note(note: str, keys: Sequence[str]) -> str:
    """The internal note, then one marker line per approval on the invoice (each key once).
    The words are clipped to fit QuickBooks' 4,000 characters, never a marker: markers that no
    longer fit are refused in plain words (nothing is sent)."""
    tail = "".join(f"\n{marker(k)}" for k in dict.fromkeys(keys))
    if len(tail) - 1 > MAX_PRIVATE_NOTE:
        raise Rejected(
            f"QuickBooks keeps at most {MAX_PRIVATE_NOTE} characters in an invoice's private "
            f"note, where each approval on it is recorded: {len(keys)} approvals do not fit. "
            "Bill this customer per timesheet or per shorter period (customer settings)."
        )
    room = MAX_PRIVATE_NOTE - len(tail)
    words = note.strip()
    return (_clip(words, room) + tail) if words and room > 1 else tail[1:]


def _words_of(private_note: str) -> str:
    return "\n".join(
        line for line in private_note.splitlines() if not line.strip().startswith(MARKER_PREFIX)
    )


def request_id(key: str) -> str:
    """``requestid`` must be <= 50 chars; keys are, by contract, but never send a longer one."""
    if len(key) <= MAX_REQUEST_ID:
        return key
    return "tsi-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def number(value: Decimal) -> float | str:
    """A JSON number for QuickBooks. ``float`` prints the shortest text that round-trips, so any
    amount of <= 15 significant digits is sent exactly as written; anything else goes as text."""
    as_float = float(value)
    if Decimal(repr(as_float)) == value:
        return as_float
    return str(value)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _ref(value: Any) -> str | None:
    if isinstance(value, Mapping) and value.get("value") not in (None, ""):
        return str(value["value"])
    return None


def compact(value: Any) -> Any:
    """Drop ``None`` and ``""`` fields (QuickBooks shows an empty ServiceDate as 12/31/9999)."""
    if isinstance(value, Mapping):
        out = {k: compact(v) for k, v in value.items() if v is not None and v != ""}
        return {k: v for k, v in out.items() if v != {} and v != []}
    if isinstance(value, list | tuple):
        return [compact(v) for v in value if v is not None and v != ""]
    return value


def build_invoice(
    draft: DraftInvoice,
    *,
    item_id: str,
    tax_code: str | None,
    customer_currency: str | None,
    customer_terms_days: int | None,
) -> dict[str, Any]:
    """The Invoice JSON for one draft (pure: what is sent is exactly what the tests validate)."""
    terms = draft.payment_terms_days
    if terms is None:
        terms = customer_terms_days
    lines = []
    # Lines of a period invoice (consolidation) end with their approval's tag.
    tag = f" {line_tag(draft.key)}" if draft.metadata.get("consolidated") else ""
    for line in draft.lines:
        detail = {
            "ItemRef": {"value": item_id},
            "Qty": number(line.quantity),
            "UnitPrice": number(line.unit_price),
            "ServiceDate": line.service_date.isoformat() if line.service_date else None,
            "TaxCodeRef": {"value": tax_code} if tax_code else None,
        }
        lines.append(
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": number(line.amount),
                "Description": (_clip(line.description, MAX_DESCRIPTION - len(tag)) + tag) or None,
                "SalesItemLineDetail": detail,
            }
        )
    body = {
        "CustomerRef": {"value": draft.customer_id},
        # Only when the customer has one: the invoice's currency IS its customer's currency, and
        # a company without multicurrency accepts its home currency here.
        "CurrencyRef": {"value": draft.currency} if customer_currency else None,
        "TxnDate": draft.issue_date.isoformat(),
        "DueDate": (draft.issue_date + timedelta(days=terms)).isoformat()
        if terms is not None
        else None,
        "Line": lines,
        "CustomerMemo": {"value": _clip(draft.memo, MAX_CUSTOMER_MEMO)} if draft.memo else None,
        "PrivateNote": private_note(draft.private_note, draft.key),
        "EmailStatus": "NotSet",  # never queue it for sending: finance reviews it first
    }
    return compact(body)


STATES_PER_QUERY = 100  # ids per "Id IN (...)" query: one request, a URL well under 8 KB


def invoice_status(row: Mapping[str, Any]) -> ProviderStatus:
    """Where a QuickBooks invoice stands, from the fields a read returns (pure).

    A voided invoice keeps its row with every amount zeroed and "Voided" put in its PrivateNote
    (recorded in void_invoice.yml); a payment lowers Balance; "sent" is EmailStatus EmailSent.
    Deleted invoices are simply absent from reads.
    """
    total = _decimal(row.get("TotalAmt"))
    balance = _decimal(row.get("Balance"))
    note = str(row.get("PrivateNote") or "")
    if total == 0 and note.startswith("Voided"):
        return ProviderStatus.VOIDED
    if total is not None and total > 0 and balance is not None:
        if balance <= 0:
            return ProviderStatus.PAID
        if balance < total:
            return ProviderStatus.PARTIALLY_PAID
    if row.get("EmailStatus") == "EmailSent":
        return ProviderStatus.SENT
    return ProviderStatus.DRAFT


def build_customer(new: NewCustomer) -> dict[str, Any]:
    name = new.name.strip()
    notes = None
    if new.tracker_id:
        notes = f"Created by timesheet-invoicer for tracker client {new.tracker_id}."
    return compact(
        {
            "DisplayName": _clip(name, MAX_DISPLAY_NAME),
            "PrimaryEmailAddr": {"Address": new.email.strip()} if new.email else None,
            "CurrencyRef": {"value": new.currency.upper()} if new.currency else None,
            "Notes": notes,
        }
    )


def build_service_item(name: str, income_account_id: str) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Service",
        "IncomeAccountRef": {"value": income_account_id},
    }


# --- the provider -------------------------------------------------------------------------------
class QuickBooksProvider(AccountingProvider):
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

    # -- connection ------------------------------------------------------------------------------
    def company_info(self) -> dict[str, Any]:
        body = self.http.request("GET", f"companyinfo/{self.realm_id}")
        return dict(body.get("CompanyInfo") or {})

    def _meta(self) -> dict[str, Any]:
        return dict(self.store.meta())

    def _update_meta(self, **values: Any) -> None:
        self.store.update_meta(**values)

    def _company_country(self) -> str | None:
        return self._fill_once("company-country", self._cached_country, self._read_country)

    def _cached_country(self) -> str | None:
        country = self._meta().get("company_country")
        return str(country) if country else None

    def _read_country(self) -> str | None:
        info = self.company_info()
        country = info.get("Country") or (info.get("CompanyAddr") or {}).get("Country")
        if country:
            self._update_meta(company_country=str(country), company_name=info.get("CompanyName"))
        return str(country) if country else None

    # -- customers -------------------------------------------------------------------------------
    def _terms_days(self, term_id: str | None) -> int | None:
        if not term_id:
            return None
        if term_id not in self._terms:
            try:
                term = self.http.request("GET", f"term/{term_id}").get("Term") or {}
            except NotFound:
                term = {}
            due_days = term.get("DueDays")
            # Only "net N days" terms convert to days; date-driven terms leave it to QuickBooks.
            self._terms[term_id] = (
                int(due_days)
                if isinstance(due_days, int) or is_ascii_digits(str(due_days))
                else None
            )
        return self._terms[term_id]

    def _customer(
        self, row: Mapping[str, Any], *, resolve_terms: bool = False
    ) -> AccountingCustomer:
        email = (row.get("PrimaryEmailAddr") or {}).get("Address")
        return AccountingCustomer(
            id=str(row["Id"]),
            name=str(row.get("DisplayName") or row.get("FullyQualifiedName") or row["Id"]),
            email=email or None,
            currency=_ref(row.get("CurrencyRef")),
            payment_terms_days=self._terms_days(_ref(row.get("SalesTermRef")))
            if resolve_terms
            else None,
        )

    def list_customers(
        self, *, query: str | None = None, cursor: str | None = None, limit: int = 100
    ) -> CustomerPage:
        start = int(cursor) if cursor and is_ascii_digits(cursor) and int(cursor) > 0 else 1
        limit = max(1, min(limit, MAX_QUERY_RESULTS))
        where = f"DisplayName LIKE {quote('%' + query.strip() + '%')}" if query else ""
        statement = select(
            "Customer", where, f"ORDERBY DisplayName STARTPOSITION {start} MAXRESULTS {limit}"
        )
        rows = self.http.query(statement).get("Customer") or []
        return CustomerPage(
            customers=tuple(self._customer(r) for r in rows),
            # A full page may be followed by more; an empty next page ends the iteration.
            next_cursor=str(start + len(rows)) if len(rows) >= limit else None,
        )

    def get_customer(self, customer_id: str) -> AccountingCustomer | None:
        if not is_ascii_digits(customer_id):
            return None
        try:
            body = self.http.request("GET", f"customer/{customer_id}")
        except NotFound:
            return None
        row = body.get("Customer")
        return self._customer(row, resolve_terms=True) if row else None

    def find_customer_by_name(self, name: str) -> AccountingCustomer | None:
        rows = (
            self.http.query(
                select("Customer", f"DisplayName = {quote(name)} AND Active IN (true, false)")
            ).get("Customer")
            or []
        )
        return self._customer(rows[0]) if rows else None

    def _check_customer_currency(self, currency: str) -> None:
        """A company with multicurrency off only has customers in its home currency: say so
        before QuickBooks refuses with a generic validation error."""
        rows = self.http.query("SELECT * FROM Preferences").get("Preferences") or []
        prefs = (rows[0] if rows else {}).get("CurrencyPrefs") or {}
        home = str((prefs.get("HomeCurrency") or {}).get("value") or "").upper()
        if prefs.get("MultiCurrencyEnabled") or not home or currency.upper() == home:
            return
        raise Rejected(
            f"QuickBooks has multicurrency turned off for this company (home currency {home}), "
            f"so it cannot have a customer billed in {currency.upper()}. Turn on Multicurrency "
            "in QuickBooks (Settings > Account and settings > Advanced > Currency; it cannot be "
            f"turned off again), or bill this client in {home}.",
            code="multicurrency_off",
        )

    def create_customer(self, new: NewCustomer) -> AccountingCustomer:
        body = build_customer(new)
        if not body.get("DisplayName"):
            raise Rejected("A customer needs a name.")
        if new.currency:
            self._check_customer_currency(new.currency)
        # Same customer asked again (a retried job) -> QuickBooks answers with the first result.
        rid = (
            "tsi-cust-" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]
        )
        try:
            created = self.http.request("POST", "customer", params={"requestid": rid}, body=body)
        except Rejected as exc:
            if exc.code != DUPLICATE_NAME_CODE:
                raise
            # DisplayName is unique across customers, vendors and employees: offer the customer
            # to link when it is one (None when the clash is with a vendor or employee).
            existing = self.find_customer_by_name(body["DisplayName"])
            raise DuplicateCustomer(
                f"QuickBooks already has a name {body['DisplayName']!r}"
                + (" (a customer you can link)." if existing else " (a vendor or employee)."),
                existing=existing,
                code=exc.code,
                detail=exc.detail,
            ) from None
        return self._customer(created.get("Customer") or {})

    # -- the service item ------------------------------------------------------------------------
    def _income_account_id(self) -> str:
        meta = self._meta()
        if meta.get("income_account_id"):
            return str(meta["income_account_id"])
        rows = (
            self.http.query(
                "SELECT * FROM Account WHERE AccountType = 'Income' AND Active = true "
                "MAXRESULTS 1000"
            ).get("Account")
            or []
        )
        if not rows:
            raise Rejected(
                "QuickBooks has no active Income account for the service item; create one "
                "(e.g. 'Services') or set the connection's income account."
            )

        # Prefer the account QuickBooks itself creates for service income.
        def rank(row: Mapping[str, Any]) -> tuple[int, int]:
            return (
                0 if str(row.get("Name", "")).strip().lower() == "services" else 1,
                0 if row.get("AccountSubType") == "ServiceFeeIncome" else 1,
            )

        return str(sorted(rows, key=rank)[0]["Id"])

    def _find_item(self, name: str) -> Mapping[str, Any] | None:
        rows = self.http.query(select("Item", f"Name = {quote(name)}")).get("Item") or []
        return rows[0] if rows else None

    def service_item_id(self) -> str:
        """The id of the service item every line is billed with; found or created once, cached."""
        return self._fill_once("service-item", self._cached_service_item_id, self._read_item_id)

    def _cached_service_item_id(self) -> str | None:
        meta = self._meta()
        checked_at = meta.get("service_item_checked_at")
        if (
            meta.get("service_item_id")
            and checked_at is not None
            and self._clock() - float(checked_at) < self.cache_seconds
        ):
            return str(meta["service_item_id"])
        return None

    def _read_item_id(self) -> str:
        meta = self._meta()
        name = str(meta.get("service_item_name") or DEFAULT_SERVICE_ITEM_NAME)
        row = self._find_item(name)
        if row is None:
            body = build_service_item(name, self._income_account_id())
            # Workers creating it at once share one requestid. After a drop the id it replaces
            # is part of the seed: QuickBooks would otherwise replay the deleted item's creation.
            seed = name + (
                f":{meta['service_item_replaces']}" if meta.get("service_item_replaces") else ""
            )
            rid = "tsi-item-" + hashlib.sha256(seed.encode()).hexdigest()[:32]
            try:
                row = self.http.request("POST", "item", params={"requestid": rid}, body=body).get(
                    "Item"
                )
            except Rejected as exc:
                if exc.code != DUPLICATE_NAME_CODE:
                    raise
                row = self._find_item(name)  # another worker created it first
                if row is None:
                    raise Rejected(
                        f"The name {name!r} is taken in QuickBooks by something that is not an "
                        "item; choose another service item name.",
                        code=exc.code,
                    ) from None
        if row.get("Type") not in ("Service", "NonInventory"):
            raise Rejected(
                f"The QuickBooks item {name!r} is of type {row.get('Type')}, not Service; "
                "choose another service item name."
            )
        item_id = str(row["Id"])
        self._update_meta(service_item_id=item_id, service_item_checked_at=self._clock())
        return item_id

    # -- the read cache --------------------------------------------------------------------------
    def _fill_once(self, name: str, cached: Callable[[], T | None], read: Callable[[], T]) -> T:
        """``cached()`` if it has a value, else ``read()``, by one worker at a time per company.

        Approvals arrive in bursts: without the lock every worker thread that starts at once
        misses the cache together and reads the same customer, company and item, each read
        spending a slot of the company's request budget. The others wait and find the value
        cached; a worker that waits too long reads it itself (a read, or a create under a shared
        requestid, is safe to repeat).
        """
        value = cached()
        if value is not None:
            return value
        held = ExitStack()
        try:
            held.enter_context(
                self.store.lock(f"read-cache:{self.realm_id}:{name}", FILL_WAIT_SECONDS)
            )
        except TimeoutError:  # LockTimeout: the filler is slow (throttled?); do not wait on
            return read()
        with held:
            value = cached()  # another worker may have filled it while this one waited
            return value if value is not None else read()

    def _cache_name(self, kind: str, id_: str) -> str:
        return f"{self.realm_id}:{kind}:{id_}"

    def draft_customer(self, customer_id: str) -> AccountingCustomer | None:
        """The customer a draft bills (currency, terms), from the cache while it is fresh."""
        return self._fill_once(
            f"customer:{customer_id}",
            lambda: self._cached_customer(customer_id),
            lambda: self._read_customer(customer_id),
        )

    def _cached_customer(self, customer_id: str) -> AccountingCustomer | None:
        cached = self.store.cache_get(self._cache_name("customer", customer_id))
        if cached is not None:
            value, fetched_at = cached
            if self._clock() - fetched_at.timestamp() < self.cache_seconds:
                return AccountingCustomer(**value)
        return None

    def _read_customer(self, customer_id: str) -> AccountingCustomer | None:
        name = self._cache_name("customer", customer_id)
        customer = self.get_customer(customer_id)
        if customer is not None:
            self.store.cache_put(
                name,
                {
                    "id": customer.id,
                    "name": customer.name,
                    "email": customer.email,
                    "currency": customer.currency,
                    "payment_terms_days": customer.payment_terms_days,
                },
                datetime.fromtimestamp(self._clock(), UTC),
            )
        return customer

    def drop_cache(self) -> None:
        """Forget the cached customers, terms and service item of this company (read again)."""
        self.store.cache_drop(f"{self.realm_id}:")
        self._terms.clear()
        meta = self._meta()
        self._update_meta(
            service_item_id=None,
            service_item_checked_at=None,
            service_item_replaces=meta.get("service_item_id") or meta.get("service_item_replaces"),
        )

    # -- drafts ----------------------------------------------------------------------------------
    def _tax_code(self, draft: DraftInvoice) -> str:
        if draft.tax_code:
            return draft.tax_code
        country = (self._company_country() or "").upper()
        if country in ("US", "USA", "UNITED STATES"):
            # Automated sales tax decides the rate; lines only say taxable or not.
            return "NON"
        raise Rejected(
            f"This QuickBooks company is in {country or 'a country other than the US'}: every "
            "invoice line needs a tax code. Set the workspace's tax code (a QuickBooks TaxCode "
            "id) and run the job again."
        )

    def _created(self, row: Mapping[str, Any]) -> CreatedDraft:
        total = _decimal(row.get("TotalAmt"))
        balance = _decimal(row.get("Balance"))
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

    # -- per_period consolidation: a sparse update of the unsent invoice ------------------------
    def _editable(self, provider_id: str) -> Mapping[str, Any] | None:
        """The invoice, if the connector may still change it: unsent (EmailStatus NotSet), not
        voided, nothing paid (Balance == TotalAmt). None when it is gone."""
        row = self._read_invoice(provider_id) if is_ascii_digits(provider_id) else None
        if row is None:
            return None
        total, balance = _decimal(row.get("TotalAmt")), _decimal(row.get("Balance"))
        if (
            self._created(row).state != DraftState.DRAFT
            or row.get("EmailStatus") not in (None, "NotSet")
            or balance != total
        ):
            raise NotADraft(
                f"QuickBooks invoice {row.get('DocNumber') or provider_id} was already sent, "
                "paid or voided."
            )
        return row

    def _sparse_update(
        self,
        provider_id: str,
        key: str,
        change: Callable[[Mapping[str, Any]], dict[str, Any] | None],
    ) -> Mapping[str, Any] | None:
        """Read the invoice, let ``change`` build the sparse body from it, send it with the
        read's SyncToken. A 5010 (someone edited it meanwhile) reads again and retries, so an
        edit is never overwritten with a stale copy. ``change`` returning None: nothing to do."""
        for attempt in range(1, 4):
            row = self._editable(provider_id)
            if row is None:
                return None
            body = change(row)
            if body is None:
                return row
            body = {
                "Id": str(row["Id"]),
                "SyncToken": str(row["SyncToken"]),
                "sparse": True,
                **body,
            }
            # One requestid per (approval, invoice version): a repeat of a lost answer replays.
            rid = request_id(f"{key}:u{row['SyncToken']}")
            try:
                updated = self.http.request("POST", "invoice", params={"requestid": rid}, body=body)
            except Rejected as exc:
                if exc.code != STALE_OBJECT_CODE or attempt == 3:
                    raise
                log.info(
                    "QuickBooks invoice %s changed meanwhile (5010): reading it again", row["Id"]
                )
                continue
            return updated.get("Invoice") or row
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _kept_lines(row: Mapping[str, Any], drop_key: str | None = None) -> list[dict[str, Any]]:
        """The invoice's item lines as they are (with their Id: sparse=true with a Line array
        replaces every line, so the others must be sent back), minus ``drop_key``'s."""
        return [
            dict(line)
            for line in row.get("Line") or []
            if line.get("DetailType") != "SubTotalLineDetail"
            and not (drop_key and has_line_tag(line, drop_key))
        ]

    def append_lines(self, provider_id: str, draft: DraftInvoice) -> CreatedDraft:
        new_lines = self.invoice_body(draft)["Line"]

        def change(row: Mapping[str, Any]) -> dict[str, Any] | None:
            note = str(row.get("PrivateNote") or "")
            if has_marker(note, draft.key):
                return None  # appended before (the answer was lost): never twice
            # The words name every approval on it once (the pipeline's), then each key once.
            marked = marked_note(draft.private_note, [*note_keys(note), draft.key])
            return compact(
                {
                    "Line": [*self._kept_lines(row), *new_lines],
                    "PrivateNote": marked,
                    "CustomerMemo": {"value": _clip(draft.memo, MAX_CUSTOMER_MEMO)}
                    if draft.memo
                    else None,
                }
            )

        row = self._sparse_update(provider_id, draft.key, change)
        if row is None:
            raise NotADraft(f"QuickBooks invoice {provider_id} no longer exists.")
        return self._created(row)

    def remove_lines(
        self, provider_id: str, key: str, memo: str | None = None, note: str | None = None
    ) -> RemovalOutcome:
        def change(row: Mapping[str, Any]) -> dict[str, Any] | None:
            old = str(row.get("PrivateNote") or "")
            lines = self._kept_lines(row)
            kept = self._kept_lines(row, drop_key=key)
            if len(kept) == len(lines) and not has_marker(old, key):
                return None  # removed before
            words = note if note is not None else _words_of(old)
            return compact(
                {
                    "Line": kept,
                    "PrivateNote": marked_note(words, [k for k in note_keys(old) if k != key]),
                    "CustomerMemo": {"value": _clip(memo, MAX_CUSTOMER_MEMO)} if memo else None,
                }
            )

        try:
            row = self._sparse_update(provider_id, f"{key}:remove", change)
        except NotADraft:
            return RemovalOutcome.NOT_A_DRAFT
        return RemovalOutcome.ALREADY_GONE if row is None else RemovalOutcome.DELETED

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
                    balance=_decimal(row.get("Balance")),
                    total=_decimal(row.get("TotalAmt")),
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
