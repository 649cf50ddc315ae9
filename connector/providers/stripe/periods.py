"""per_period: lines appended to and removed from the period's draft."""

from __future__ import annotations

import hashlib
from typing import Any

from connector.providers.base import (
    CreatedDraft,
    DraftInvoice,
    NotADraft,
    Rejected,
    RemovalOutcome,
)
from connector.providers.stripe.payloads import (
    MAX_DESCRIPTION,
    MAX_INVOICE_LINES,
    as_dict,
    chunks,
    line_params,
)
from connector.providers.stripe.status import not_editable


class StripePeriodLines:
    """per_period: lines appended to and removed from the period's draft."""

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
            if not_editable(exc):
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
                invoice = as_dict(
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
            if not_editable(exc):
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
        return as_dict(
            self._call(
                "update the invoice memo",
                self.client.v1.invoices.update,
                invoice["id"],
                params,
                {"idempotency_key": f"{key}:memo:{digest}"},
                mutating=True,
            )
        )
