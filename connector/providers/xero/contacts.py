"""Xero contacts (the accounting customers of the mapping page) and the organisation's facts,
with the short-lived read cache that keeps a draft to one request."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from connector.providers.base import (
    AccountingCustomer,
    CredentialStore,
    CustomerPage,
    DuplicateCustomer,
    NewCustomer,
    Rejected,
)
from connector.providers.xero import payloads
from connector.providers.xero.client import XeroClient
from connector.providers.xero.errors import NotFound

MAX_PAGE_SIZE = 1000  # Xero's pageSize cap
FILL_WAIT_SECONDS = 10.0
CONTACT_FIELDS = ("ContactID", "Name", "EmailAddress", "DefaultCurrency", "ContactStatus")


def _quote(value: str) -> str:
    """A string literal of Xero's ``where`` filter language."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def customer_of(row: Mapping[str, Any]) -> AccountingCustomer:
    return AccountingCustomer(
        id=str(row["ContactID"]),
        name=str(row.get("Name") or row["ContactID"]),
        email=row.get("EmailAddress") or None,
        currency=(str(row["DefaultCurrency"]).upper() if row.get("DefaultCurrency") else None),
    )


class XeroContacts:
    """Contacts, currencies and the organisation of one Xero connection."""

    def __init__(
        self,
        store: CredentialStore,
        client: XeroClient,
        cache_seconds: float,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.client = client
        self.cache_seconds = cache_seconds
        self._clock = clock

    # -- the read cache (shared by every process: the provider_cache table) --------------------
    def _cached(self, name: str) -> dict[str, Any] | None:
        if self.cache_seconds <= 0:
            return None
        entry = self.store.cache_get(name)
        if entry is None:
            return None
        value, fetched_at = entry
        if fetched_at.tzinfo is None:
            fetched_at = fetched_at.replace(tzinfo=UTC)
        age = self._clock() - fetched_at.timestamp()
        return value if age < self.cache_seconds else None

    def drop_cache(self) -> None:
        self.store.cache_drop()

    def _fill_once(self, name: str, read: Callable[[], dict[str, Any] | None]) -> Any:
        """The cached value, else read it, one process at a time: workers that miss the cache
        together (a burst of approvals) wait for the one reading instead of all spending calls
        of the organisation's 60 a minute on the same read."""
        cached = self._cached(name)
        if cached is not None:
            return cached
        try:
            with self.store.lock(f"fill:{name}", timeout=FILL_WAIT_SECONDS):
                cached = self._cached(name)  # filled while we waited
                if cached is not None:
                    return cached
                value = read()
        except TimeoutError:  # the filler is slow: read it ourselves
            value = read()
        if value is not None:
            self.store.cache_put(name, value, datetime.fromtimestamp(self._clock(), UTC))
        return value

    # -- the organisation ------------------------------------------------------------------------
    def organisation(self) -> dict[str, Any]:
        rows = self.client.request("GET", "Organisation").get("Organisations") or []
        return dict(rows[0]) if rows else {}

    def currencies(self) -> dict[str, Any]:
        """{"base": the organisation's base currency (read at connect), "codes": every currency
        it uses (``GET /Currencies`` lists the base one too)}."""

        def read() -> dict[str, Any]:
            rows = self.client.request("GET", "Currencies").get("Currencies") or []
            codes = {str(r.get("Code")).upper() for r in rows if r.get("Code")}
            base = str(self.store.meta().get("base_currency") or "").upper()
            return {"base": base, "codes": sorted(codes | {base} - {""})}

        return self._fill_once("currencies", read)

    def check_posting(self, account_code: str | None, item_code: str | None) -> str | None:
        """What is wrong with these codes in this organisation, in plain words (None: fine)."""
        if account_code:
            rows = (
                self.client.request(
                    "GET", "Accounts", params={"where": f"Code=={_quote(account_code)}"}
                ).get("Accounts")
                or []
            )
            active = [r for r in rows if r.get("Status", "ACTIVE") == "ACTIVE"]
            if not active:
                return f"Xero has no active account with code {account_code}."
            if active[0].get("Class") not in (None, "REVENUE"):
                return (
                    f"Account {account_code} ({active[0].get('Name')}) is not a revenue account: "
                    "choose the sales account invoices are posted to."
                )
        if item_code:
            rows = (
                self.client.request(
                    "GET", "Items", params={"where": f"Code=={_quote(item_code)}"}
                ).get("Items")
                or []
            )
            if not rows:
                return f"Xero has no item with code {item_code}."
        return None

    def check_currency(self, currency: str) -> None:
        """Say so, in plain words, when the organisation does not use ``currency``."""
        known = self.currencies()
        if currency.upper() in known["codes"]:
            return
        base = known.get("base") or "its base currency"
        raise Rejected(
            f"This Xero organisation does not use {currency.upper()} (it bills in "
            f"{', '.join(known['codes']) or base}). Add {currency.upper()} in Xero (Accounting, "
            "Advanced, Currencies; it needs a plan with multicurrency) or bill this client in "
            f"{base}, then retry.",
            code="currency_not_enabled",
        )

    # -- contacts --------------------------------------------------------------------------------
    def contact_row(self, contact_id: str) -> dict[str, Any] | None:
        """The contact's name, currency and status, cached; None when Xero has no such contact."""

        def read() -> dict[str, Any] | None:
            try:
                rows = self.client.request("GET", f"Contacts/{contact_id}").get("Contacts") or []
            except NotFound:
                return None
            if not rows:
                return None
            return {k: rows[0].get(k) for k in CONTACT_FIELDS if rows[0].get(k) is not None}

        value: dict[str, Any] | None = self._fill_once(f"contact:{contact_id}", read)
        return value

    def list_customers(
        self, *, query: str | None = None, cursor: str | None = None, limit: int = 100
    ) -> CustomerPage:
        page = int(cursor) if cursor and cursor.isdigit() and int(cursor) > 0 else 1
        size = max(1, min(limit, MAX_PAGE_SIZE))
        params: dict[str, Any] = {"page": page, "pageSize": size, "order": "Name ASC"}
        if query and query.strip():
            params["searchTerm"] = query.strip()  # Name, first/last name, email, contact number
        rows = self.client.request("GET", "Contacts", params=params).get("Contacts") or []
        active = [r for r in rows if str(r.get("ContactStatus") or "ACTIVE") == "ACTIVE"]
        return CustomerPage(
            customers=tuple(customer_of(r) for r in active),
            next_cursor=str(page + 1) if len(rows) >= size else None,
        )

    def get_customer(self, customer_id: str) -> AccountingCustomer | None:
        row = self.contact_row(customer_id)
        return customer_of({"ContactID": customer_id, **row}) if row else None

    def find_contact_by_name(self, name: str) -> AccountingCustomer | None:
        rows = (
            self.client.request(
                "GET", "Contacts", params={"where": f"Name=={_quote(name)}", "page": 1}
            ).get("Contacts")
            or []
        )
        return customer_of(rows[0]) if rows else None

    def create_customer(self, new: NewCustomer) -> AccountingCustomer:
        body = payloads.build_contact(new)
        if not body.get("Name"):
            raise Rejected("A contact needs a name.")
        if new.currency:
            self.check_currency(new.currency)
        try:
            answer = self.client.request(
                "PUT",
                "Contacts",
                body={"Contacts": [body]},
                # The same contact asked again (a retried job) is answered once.
                idempotency_key=payloads.idempotency_key(
                    "contact", "create", payloads.body_digest(body)
                ),
            )
        except Rejected as exc:
            if "already" not in exc.message.lower():
                raise
            existing = self.find_contact_by_name(body["Name"])
            raise DuplicateCustomer(
                f"Xero already has a contact named {body['Name']!r}"
                + (" (you can link it)." if existing else "."),
                existing=existing,
                code=exc.code,
            ) from None
        rows = answer.get("Contacts") or []
        if not rows or not rows[0].get("ContactID"):
            raise Rejected("Xero answered the contact create without a contact.")
        return customer_of(rows[0])
