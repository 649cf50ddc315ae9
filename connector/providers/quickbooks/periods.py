"""per_period: sparse updates of the unsent invoice, lines added and removed per approval."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from connector.providers.base import (
    CreatedDraft,
    DraftInvoice,
    DraftState,
    NotADraft,
    Rejected,
    RemovalOutcome,
)
from connector.providers.quickbooks.payloads import (
    MAX_CUSTOMER_MEMO,
    clip,
    compact,
    decimal,
    has_line_tag,
    has_marker,
    marked_note,
    note_keys,
    request_id,
    words_of,
)
from connector.providers.quickbooks.status import STALE_OBJECT_CODE
from connector.validation import is_ascii_digits

log = logging.getLogger(__name__)


class QuickBooksPeriodLines:
    """per_period: sparse updates of the unsent invoice, lines added and removed per approval."""

    # -- per_period consolidation: a sparse update of the unsent invoice ------------------------
    def _editable(self, provider_id: str) -> Mapping[str, Any] | None:
        """The invoice, if the connector may still change it: unsent (EmailStatus NotSet), not
        voided, nothing paid (Balance == TotalAmt). None when it is gone."""
        row = self._read_invoice(provider_id) if is_ascii_digits(provider_id) else None
        if row is None:
            return None
        total, balance = decimal(row.get("TotalAmt")), decimal(row.get("Balance"))
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
                    "CustomerMemo": {"value": clip(draft.memo, MAX_CUSTOMER_MEMO)}
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
            words = note if note is not None else words_of(old)
            return compact(
                {
                    "Line": kept,
                    "PrivateNote": marked_note(words, [k for k in note_keys(old) if k != key]),
                    "CustomerMemo": {"value": clip(memo, MAX_CUSTOMER_MEMO)} if memo else None,
                }
            )

        try:
            row = self._sparse_update(provider_id, f"{key}:remove", change)
        except NotADraft:
            return RemovalOutcome.NOT_A_DRAFT
        return RemovalOutcome.ALREADY_GONE if row is None else RemovalOutcome.DELETED
