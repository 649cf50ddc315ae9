"""QuickBooks customers, terms, the service item and the read cache (one request per draft)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any, TypeVar

from connector.providers.base import (
    AccountingCustomer,
    CustomerPage,
    DraftInvoice,
    DuplicateCustomer,
    NewCustomer,
    Rejected,
)
from connector.providers.quickbooks.client import NotFound
from connector.providers.quickbooks.payloads import (
    MAX_QUERY_RESULTS,
    build_customer,
    build_service_item,
    quote,
    ref,
    select,
)
from connector.providers.quickbooks.status import DUPLICATE_NAME_CODE
from connector.validation import is_ascii_digits

T = TypeVar("T")


# How long a worker waits for another one filling the same cache entry before reading it itself.
FILL_WAIT_SECONDS = 10.0


DEFAULT_SERVICE_ITEM_NAME = "Hours"


class QuickBooksCustomers:
    """Customers, terms, the service item and the read cache that keeps a draft to one request."""

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
            currency=ref(row.get("CurrencyRef")),
            payment_terms_days=self._terms_days(ref(row.get("SalesTermRef")))
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
