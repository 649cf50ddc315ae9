"""The invoice an unknown outcome may have left, found by its key first."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from connector.providers.base import (
    CreatedDraft,
    Rejected,
)
from connector.providers.stripe.client import META_PENDING
from connector.providers.stripe.payloads import as_dict, search_literal

log = logging.getLogger(__name__)


class StripeFinding:
    """The invoice an unknown outcome may have left, found by its key first."""

    def _retrieve_invoice(self, invoice_id: str) -> dict[str, Any] | None:
        try:
            invoice = as_dict(
                self._call("read the invoice", self.client.v1.invoices.retrieve, invoice_id)
            )
        except Rejected as exc:
            if exc.code == "resource_missing":
                return None
            raise
        return None if invoice.get("deleted") else invoice

    def _find_for_customer(self, customer_id: str, key: str) -> dict[str, Any] | None:
        """The customer's recent invoice carrying ``key`` (a list call: strongly consistent)."""
        result = as_dict(
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
        query = f"metadata['draft_key']:\"{search_literal(key)}\""
        try:
            result = as_dict(
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
