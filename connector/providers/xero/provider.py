"""Xero: DRAFT sales invoices, one per customer and approval (or period), for one organisation.

Exactly once: each create is sent with an ``Idempotency-Key`` derived from the draft key (Xero
answers a repeat with the first result), and its ``Reference`` ends with the key's marker, so a
create whose answer was lost is looked up (``find_draft``: Xero's ``searchTerm`` over Reference,
narrowed to the draft's contact) before it is ever sent again.

One request per draft: a contact's currency and status and the organisation's currencies are
read once and reused for ``XERO_CACHE_SECONDS`` (the shared ``provider_cache`` table). A create
refused for something that may have changed in Xero (an archived contact, a currency, an account
code) drops the cache, checks again from fresh reads and, if that changes the request, sends it
once more under a new key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connector import ratelimit
from connector.providers.base import (
    AccountingProvider,
    CreatedDraft,
    CredentialStore,
    CurrencyMismatch,
    DraftInvoice,
    DraftRecords,
    InvoiceState,
    NotADraft,
    ProviderStatus,
    RateLimiter,
    ReconnectNeeded,
    Rejected,
    RemovalOutcome,
    RetryLater,
)
from connector.providers.xero import payloads
from connector.providers.xero.client import XeroClient
from connector.providers.xero.contacts import XeroContacts
from connector.providers.xero.errors import NotFound, says_references_changed
from connector.providers.xero.settings import (
    DEFAULT_ACCOUNT_CODE,
    XeroConfigError,
    XeroSettings,
    settings_from_config,
)
from connector.providers.xero.status import (
    EDITABLE_STATUSES,
    decimal_or_none,
    draft_state,
    provider_status,
)

log = logging.getLogger(__name__)

UNIT_DP = {"unitdp": 4}  # 4-decimal unit amounts on every call that carries lines
STATES_PER_CALL = 50  # invoice ids per GET /Invoices?IDs=... (a URL well under 4 KB)
FIND_PAGE_SIZE = 100


class XeroProvider(XeroContacts, AccountingProvider):
    name = "xero"
    display_name = "Xero"

    def __init__(
        self,
        workspace_id: int,
        store: CredentialStore,
        settings: XeroSettings,
        client: XeroClient,
        *,
        draft_records: DraftRecords | None = None,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(store, client, settings.cache_seconds, clock)
        self.workspace_id = workspace_id
        self.settings = settings
        self.draft_records = draft_records

    # -- the workspace's posting choices (the organisation picker page stores them) -------------
    def _account_code(self) -> str | None:
        meta = self.store.meta()
        if meta.get("item_code") and not meta.get("account_code"):
            return None  # the item carries its own sales account
        return str(meta.get("account_code") or DEFAULT_ACCOUNT_CODE)

    def _item_code(self) -> str | None:
        return self.store.meta().get("item_code") or None

    # -- drafts ----------------------------------------------------------------------------------
    def _created(self, row: Mapping[str, Any]) -> CreatedDraft:
        provider_id = str(row["InvoiceID"])
        return CreatedDraft(
            provider_id=provider_id,
            link=self.draft_link(provider_id),
            state=draft_state(row),
            number=str(row["InvoiceNumber"]) if row.get("InvoiceNumber") else None,
            total=decimal_or_none(row.get("Total")),
        )

    def invoice_body(self, draft: DraftInvoice) -> dict[str, Any]:
        """Check the contact and currency (cached reads) and build the invoice (no write)."""
        contact = self.contact_row(draft.customer_id)
        if contact is None:
            raise Rejected(
                f"Xero contact {draft.customer_id} ({draft.customer_name}) does not exist or was "
                "deleted; map the client to another contact."
            )
        name = contact.get("Name") or draft.customer_name
        if str(contact.get("ContactStatus") or "ACTIVE").upper() != "ACTIVE":
            raise Rejected(
                f"Xero contact {name} is archived, so Xero will not invoice it. Restore it in "
                "Xero (Contacts, Archived, Restore) or map the client to another contact, then "
                "retry."
            )
        contact_currency = str(contact.get("DefaultCurrency") or "").upper()
        if contact_currency and contact_currency != draft.currency.upper():
            raise CurrencyMismatch(
                f"Xero contact {name} is billed in {contact_currency}, this draft is in "
                f"{draft.currency}.",
                customer_currency=contact_currency,
                draft_currency=draft.currency,
            )
        self.check_currency(draft.currency)
        return payloads.build_invoice(
            draft, account_code=self._account_code(), item_code=self._item_code()
        )

    def _put_invoice(self, body: dict[str, Any], key: str) -> CreatedDraft:
        answer = self.client.request(
            "PUT",
            "Invoices",
            params=UNIT_DP,
            body={"Invoices": [body]},
            idempotency_key=payloads.idempotency_key(key, "create", payloads.body_digest(body)),
        )
        rows = answer.get("Invoices") or []
        if not rows or not rows[0].get("InvoiceID"):
            raise Rejected("Xero answered the invoice create without an invoice.")
        return self._created(rows[0])

    def create_draft(self, draft: DraftInvoice) -> CreatedDraft:
        try:
            return self._create_draft(draft)
        except RetryLater as exc:
            # The PUT is the only write under the key; every error that may follow a sent write
            # says outcome_unknown. Anything else (the limiter, a 429, a read) created nothing.
            if not exc.outcome_unknown:
                exc.created_nothing = True
            raise

    def _create_draft(self, draft: DraftInvoice) -> CreatedDraft:
        body = self.invoice_body(draft)
        try:
            return self._put_invoice(body, draft.key)
        except NotFound:
            raise
        except Rejected as exc:
            if not says_references_changed([exc.message]):
                raise
            # The cached contact or currencies may be what Xero refused: read them again.
            log.info("Xero refused an invoice (%s): dropping the read cache", exc.code)
            self.drop_cache()
            fresh = self.invoice_body(draft)
            if fresh == body:
                raise
            return self._put_invoice(fresh, draft.key)

    def _contact_hint(self, key: str) -> str | None:
        if self.draft_records is None:
            return None
        try:
            record = self.draft_records(key)
        except Exception:  # only a hint: the search still runs without it
            log.debug("no draft hint for key %s", key, exc_info=True)
            return None
        return str(record.customer_id) if record is not None and record.customer_id else None

    def find_draft(self, key: str) -> CreatedDraft | None:
        params: dict[str, Any] = {
            "searchTerm": payloads.search_term(key),
            "pageSize": FIND_PAGE_SIZE,
            "page": 1,
        }
        contact_id = self._contact_hint(key)
        if contact_id:
            params["ContactIDs"] = contact_id  # one short page, whatever the organisation's size
        while True:
            rows = self.client.request("GET", "Invoices", params=params).get("Invoices") or []
            for row in rows:
                if payloads.has_marker(row.get("Reference"), key) and row.get("Status") != (
                    "DELETED"
                ):
                    return self._created(row)
            if len(rows) < FIND_PAGE_SIZE:
                return None
            params["page"] += 1

    def read_invoice(self, provider_id: str) -> Mapping[str, Any] | None:
        try:
            rows = (
                self.client.request("GET", f"Invoices/{provider_id}", params=UNIT_DP).get(
                    "Invoices"
                )
                or []
            )
        except NotFound:
            return None
        return rows[0] if rows else None

    def _delete(self, provider_id: str) -> None:
        self.client.request(
            "POST",
            f"Invoices/{provider_id}",
            body={"Invoices": [{"InvoiceID": provider_id, "Status": "DELETED"}]},
            idempotency_key=payloads.idempotency_key(provider_id, "delete"),
        )

    def remove_draft(self, provider_id: str) -> RemovalOutcome:
        for attempt in (1, 2):
            row = self.read_invoice(provider_id)
            if row is None or row.get("Status") in ("DELETED", "VOIDED"):
                return RemovalOutcome.ALREADY_GONE
            if row.get("Status") not in EDITABLE_STATUSES:
                return RemovalOutcome.NOT_A_DRAFT  # approved in Xero: finance owns it now
            try:
                self._delete(provider_id)
                return RemovalOutcome.DELETED
            except NotFound:
                return RemovalOutcome.ALREADY_GONE
            except Rejected:
                # Approved between our read and the delete: read again and decide again.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- per_period consolidation: lines appended to / removed from the DRAFT invoice -----------
    def _editable(self, provider_id: str) -> Mapping[str, Any] | None:
        row = self.read_invoice(provider_id)
        if row is None or row.get("Status") == "DELETED":
            return None
        if row.get("Status") not in EDITABLE_STATUSES:
            raise NotADraft(
                f"Xero invoice {row.get('InvoiceNumber') or provider_id} was already approved, "
                "paid or voided."
            )
        return row

    def _update_lines(
        self, provider_id: str, row: Mapping[str, Any], lines: list[dict[str, Any]], key: str
    ) -> Mapping[str, Any]:
        body = {"InvoiceID": provider_id, "LineItems": lines}
        # One key per (approval, invoice version): a lost answer's repeat replays, a later change
        # of the same invoice is a new write.
        version = str(row.get("UpdatedDateUTC") or "")
        answer = self.client.request(
            "POST",
            f"Invoices/{provider_id}",
            params=UNIT_DP,
            body={"Invoices": [body]},
            idempotency_key=payloads.idempotency_key(
                key, "lines", payloads.body_digest([version, lines])
            ),
        )
        rows = answer.get("Invoices") or []
        return rows[0] if rows else row

    def append_lines(self, provider_id: str, draft: DraftInvoice) -> CreatedDraft:
        row = self._editable(provider_id)
        if row is None:
            raise NotADraft(f"Xero invoice {provider_id} no longer exists.")
        existing = list(row.get("LineItems") or [])
        if any(payloads.has_marker(line.get("Description"), draft.key) for line in existing):
            return self._created(row)  # appended before (the answer was lost): never twice
        new_lines = self.invoice_body(draft)["LineItems"]
        lines = [payloads.kept_line(line) for line in existing] + new_lines
        try:
            updated = self._update_lines(provider_id, row, lines, draft.key)
        except NotFound:
            raise NotADraft(f"Xero invoice {provider_id} no longer exists.") from None
        except Rejected:
            # Approved between our read and the update? Then say so (NotADraft), else re-raise.
            if self._editable(provider_id) is None:
                raise NotADraft(f"Xero invoice {provider_id} no longer exists.") from None
            raise
        return self._created(updated)

    def remove_lines(
        self, provider_id: str, key: str, memo: str | None = None, note: str | None = None
    ) -> RemovalOutcome:
        # Xero invoices have no memo or internal note: the Reference and each line's marker say
        # what the invoice holds, so ``memo`` and ``note`` have nothing to update.
        try:
            row = self._editable(provider_id)
        except NotADraft:
            return RemovalOutcome.NOT_A_DRAFT
        if row is None:
            return RemovalOutcome.ALREADY_GONE
        existing = list(row.get("LineItems") or [])
        kept = [line for line in existing if not payloads.has_marker(line.get("Description"), key)]
        if len(kept) == len(existing):
            return RemovalOutcome.ALREADY_GONE  # removed before
        if not kept:
            self._delete(provider_id)  # its last approval left: nothing to bill
            return RemovalOutcome.DELETED
        self._update_lines(
            provider_id, row, [payloads.kept_line(line) for line in kept], f"{key}:remove"
        )
        return RemovalOutcome.DELETED

    # -- status sync -----------------------------------------------------------------------------
    def fetch_invoice_states(self, refs: Sequence[str]) -> dict[str, InvoiceState]:
        """``GET /Invoices?IDs=...&summaryOnly=true`` per 50 invoices; an id Xero does not
        return is gone."""
        wanted = list(dict.fromkeys(ref for ref in refs if ref))
        found: dict[str, Mapping[str, Any]] = {}
        for start in range(0, len(wanted), STATES_PER_CALL):
            chunk = wanted[start : start + STATES_PER_CALL]
            params = {"IDs": ",".join(chunk), "summaryOnly": "true", "page": 1}
            rows = self.client.request("GET", "Invoices", params=params).get("Invoices") or []
            found.update({str(row.get("InvoiceID")).lower(): row for row in rows})
        states = {}
        for ref in refs:
            row = found.get(ref.lower())
            states[ref] = (
                InvoiceState(
                    status=provider_status(row),
                    balance=decimal_or_none(row.get("AmountDue")),
                    total=decimal_or_none(row.get("Total")),
                )
                if row is not None
                else InvoiceState(status=ProviderStatus.DELETED)
            )
        return states

    def draft_link(self, provider_id: str) -> str | None:
        target = f"/AccountsReceivable/Edit.aspx?InvoiceID={provider_id}"
        shortcode = self.store.meta().get("short_code")
        if shortcode:
            # Xero's deep link: opens the right organisation first.
            return (
                f"{self.settings.app_base_url}/organisationlogin/default.aspx"
                f"?shortcode={shortcode}&redirecturl={target}"
            )
        return f"{self.settings.app_base_url}{target}"

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)


def create(
    workspace_id: int,
    store: CredentialStore,
    config: Mapping[str, Any],
    *,
    limiter: RateLimiter | None = None,
    draft_records: DraftRecords | None = None,
) -> XeroProvider:
    """The Xero provider of a workspace (``build_provider`` calls this)."""
    tenant_id = store.account_id
    if not tenant_id:
        raise ReconnectNeeded("Xero is not connected for this workspace.")
    try:
        settings = settings_from_config(config)
    except XeroConfigError as exc:
        # A deployment problem, not the admin's connection: jobs wait until it is fixed.
        raise ReconnectNeeded(f"Xero configuration problem: {exc}") from None
    client = XeroClient(
        settings, store, str(tenant_id), limiter=limiter or ratelimit.shared_limiter()
    )
    return XeroProvider(workspace_id, store, settings, client, draft_records=draft_records)
