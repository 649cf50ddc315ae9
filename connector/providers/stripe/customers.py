"""Stripe customers: listed, searched, created in their currency."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from connector.providers.base import (
    AccountingCustomer,
    CurrencyMismatch,
    CustomerPage,
    DraftInvoice,
    NewCustomer,
    ProviderError,
    Rejected,
)
from connector.providers.stripe.client import META_CURRENCIES
from connector.providers.stripe.payloads import as_dict, metadata, search_literal


class StripeCustomers:
    """Stripe customers: listed, searched, created in their currency."""

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
        result = as_dict(self._call("list customers", self.client.v1.customers.list, params))
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
        literal = search_literal(query)
        params: dict[str, Any] = {
            "query": f'name~"{literal}" OR email~"{literal}"',
            "limit": limit,
        }
        if page:
            params["page"] = page
        try:
            result = as_dict(
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
            data = as_dict(
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
            params["metadata"] = metadata(
                {"tracker_client_id": new.tracker_id, "workspace_id": str(self.workspace_id)}
            )
        # Same request twice (a double click, a retried job) -> the same customer, not two.
        digest = hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()[:32]
        options = {"idempotency_key": f"customer:{self.workspace_id}:{digest}"}
        data = as_dict(
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
