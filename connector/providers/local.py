"""The built-in ``local`` provider: drafts kept in the plugin's own database.

The default for a new workspace, so the whole flow runs with no external account; also the
reference implementation of the provider contract (idempotent on the key, findable by the key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from connector import db
from connector.models import LocalCustomer, LocalInvoice, Workspace
from connector.providers.base import (
    AccountingCustomer,
    AccountingProvider,
    CreatedDraft,
    CurrencyMismatch,
    CustomerPage,
    DraftInvoice,
    DraftState,
    InvoiceState,
    NewCustomer,
    NotADraft,
    ProviderStatus,
    Rejected,
    RemovalOutcome,
)
from connector.settings import WorkspaceSettings
from connector.validation import record_id_or_none

# The ledger's own invoice states; anything else it may learn later counts as sent (hands off).
LOCAL_STATUSES = {
    "draft": ProviderStatus.DRAFT,
    "sent": ProviderStatus.SENT,
    "paid": ProviderStatus.PAID,
    "void": ProviderStatus.VOIDED,
    "deleted": ProviderStatus.DELETED,
}


class LocalProvider(AccountingProvider):
    name = "local"
    display_name = "Built-in ledger"

    def __init__(self, workspace_id: int, public_base_url: str = ""):
        self.workspace_id = workspace_id
        self.public_base_url = public_base_url.rstrip("/")

    # -- customers
    @staticmethod
    def _customer(row: LocalCustomer) -> AccountingCustomer:
        return AccountingCustomer(
            id=str(row.id), name=row.name, email=row.email, currency=row.currency
        )

    def list_customers(
        self, *, query: str | None = None, cursor: str | None = None, limit: int = 100
    ) -> CustomerPage:
        offset = int(cursor or 0)
        with db.new_session() as s:
            stmt = select(LocalCustomer).where(LocalCustomer.workspace_id == self.workspace_id)
            if query:
                like = f"%{query.lower()}%"
                stmt = stmt.where(
                    or_(
                        func.lower(LocalCustomer.name).like(like),
                        func.lower(LocalCustomer.email).like(like),
                    )
                )
            rows = s.scalars(stmt.order_by(LocalCustomer.name).offset(offset).limit(limit + 1))
            rows = list(rows)
        more = len(rows) > limit
        return CustomerPage(
            customers=tuple(self._customer(r) for r in rows[:limit]),
            next_cursor=str(offset + limit) if more else None,
        )

    def get_customer(self, customer_id: str) -> AccountingCustomer | None:
        row_id = record_id_or_none(customer_id)
        if row_id is None:  # "٣", "²" or a number past any row: no customer, never row 3
            return None
        with db.new_session() as s:
            row = s.get(LocalCustomer, row_id)
            if row is None or row.workspace_id != self.workspace_id:
                return None
            return self._customer(row)

    def create_customer(self, new: NewCustomer) -> AccountingCustomer:
        if not new.name.strip():
            raise Rejected("A customer needs a name.")
        with db.session_scope() as s:
            currency = new.currency
            if not currency:
                # Not told: the workspace's default currency, never a hard-coded one.
                workspace = s.get(Workspace, self.workspace_id)
                settings = WorkspaceSettings.from_dict(workspace.settings if workspace else None)
                currency = settings.default_currency
            row = LocalCustomer(
                workspace_id=self.workspace_id,
                name=new.name.strip(),
                email=new.email,
                currency=currency.upper(),
                tracker_id=new.tracker_id,
            )
            s.add(row)
            s.flush()
            return self._customer(row)

    # -- drafts
    def _created(self, row: LocalInvoice) -> CreatedDraft:
        state = DraftState.DRAFT if row.state == "draft" else DraftState(row.state)
        return CreatedDraft(
            provider_id=str(row.id),
            link=self.draft_link(str(row.id)),
            state=state,
            number=f"L-{row.id:06d}",
            total=row.total,
        )

    def create_draft(self, draft: DraftInvoice) -> CreatedDraft:
        existing = self.find_draft(draft.key)
        if existing is not None:
            return existing
        customer = self.get_customer(draft.customer_id)
        if customer is not None and customer.currency and customer.currency != draft.currency:
            raise CurrencyMismatch(
                f"Customer {customer.name} is billed in {customer.currency}, "
                f"this draft is in {draft.currency}.",
                customer_currency=customer.currency,
                draft_currency=draft.currency,
            )
        due = (
            draft.issue_date + timedelta(days=draft.payment_terms_days)
            if draft.payment_terms_days is not None
            else None
        )
        row = LocalInvoice(
            workspace_id=self.workspace_id,
            key=draft.key,
            customer_id=draft.customer_id,
            customer_name=draft.customer_name,
            currency=draft.currency,
            total=draft.total,
            lines=_ledger_lines(draft),
            memo=draft.memo,
            private_note=draft.private_note,
            issue_date=draft.issue_date,
            due_date=due,
        )
        try:
            with db.session_scope() as s:
                s.add(row)
        except IntegrityError:
            # A concurrent attempt with the same key won: return its invoice, never a second one.
            found = self.find_draft(draft.key)
            if found is None:
                raise
            return found
        return self._created(row)

    def find_draft(self, key: str) -> CreatedDraft | None:
        with db.new_session() as s:
            row = s.scalars(
                select(LocalInvoice).where(
                    LocalInvoice.workspace_id == self.workspace_id, LocalInvoice.key == key
                )
            ).one_or_none()
            return self._created(row) if row else None

    def remove_draft(self, provider_id: str) -> RemovalOutcome:
        with db.session_scope() as s:
            row = _get_invoice(s, provider_id)
            if row is None or row.workspace_id != self.workspace_id or row.state == "deleted":
                return RemovalOutcome.ALREADY_GONE
            if row.state != "draft":
                return RemovalOutcome.NOT_A_DRAFT
            row.state = "deleted"
            return RemovalOutcome.DELETED

    def append_lines(self, provider_id: str, draft: DraftInvoice) -> CreatedDraft:
        with db.session_scope() as s:
            row = self._invoice_for_update(s, provider_id)
            if row.state != "draft":
                raise NotADraft(f"Invoice L-{row.id:06d} is {row.state}, no longer a draft.")
            if not any(line.get("draft_key") == draft.key for line in row.lines):
                row.lines = [*row.lines, *_ledger_lines(draft)]
                # Totals are sums of lines (each line rounded on its own): never re-rounded.
                row.total = sum((Decimal(line["amount"]) for line in row.lines), Decimal(0))
            row.memo = draft.memo
            row.private_note = draft.private_note
            s.flush()
            return self._created(row)

    def remove_lines(
        self, provider_id: str, key: str, memo: str | None = None, note: str | None = None
    ) -> RemovalOutcome:
        with db.session_scope() as s:
            row = _get_invoice(s, provider_id)
            if row is None or row.workspace_id != self.workspace_id or row.state == "deleted":
                return RemovalOutcome.ALREADY_GONE
            if row.state != "draft":
                return RemovalOutcome.NOT_A_DRAFT
            row.lines = [line for line in row.lines if line.get("draft_key") != key]
            row.total = sum((Decimal(line["amount"]) for line in row.lines), Decimal(0))
            if memo is not None:
                row.memo = memo
            if note is not None:
                row.private_note = note
            return RemovalOutcome.DELETED

    def _invoice_for_update(self, s: Any, provider_id: str) -> LocalInvoice:
        stmt = select(LocalInvoice).where(
            LocalInvoice.workspace_id == self.workspace_id,
            LocalInvoice.id == (record_id_or_none(provider_id) or -1),
        )
        if s.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = s.scalars(stmt).one_or_none()
        if row is None or row.state == "deleted":
            raise NotADraft(f"Invoice {provider_id} no longer exists in the ledger.")
        return row

    def fetch_invoice_states(self, refs: Sequence[str]) -> dict[str, InvoiceState]:
        ids = {row_id for ref in refs if (row_id := record_id_or_none(ref)) is not None}
        with db.new_session() as s:
            rows = {
                str(row.id): row
                for row in s.scalars(
                    select(LocalInvoice).where(
                        LocalInvoice.workspace_id == self.workspace_id, LocalInvoice.id.in_(ids)
                    )
                )
            }
        states = {}
        for ref in refs:
            row = rows.get(ref)
            status = LOCAL_STATUSES.get(row.state, ProviderStatus.SENT) if row else None
            states[ref] = InvoiceState(
                status=status or ProviderStatus.DELETED, total=row.total if row else None
            )
        return states

    def draft_link(self, provider_id: str) -> str | None:
        return f"{self.public_base_url}/workspaces/{self.workspace_id}/ledger/{provider_id}"


def _get_invoice(s: Any, provider_id: str) -> LocalInvoice | None:
    row_id = record_id_or_none(provider_id)
    return None if row_id is None else s.get(LocalInvoice, row_id)


def _ledger_lines(draft: DraftInvoice) -> list[dict[str, Any]]:
    return [
        {
            "description": line.description,
            "quantity": str(line.quantity),
            "unit_price": str(line.unit_price),
            "amount": str(line.amount),
            "service_date": line.service_date.isoformat() if line.service_date else None,
            # Which approval the line came from: a consolidated invoice removes only its own.
            "draft_key": draft.key,
        }
        for line in draft.lines
    ]


def create(workspace_id: int, store: Any, config: Mapping[str, Any]) -> LocalProvider:
    return LocalProvider(workspace_id, str(config.get("PUBLIC_BASE_URL", "")))
