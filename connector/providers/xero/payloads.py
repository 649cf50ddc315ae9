"""The JSON this connector sends Xero, built from our values (pure: no I/O).

What is sent is exactly what the tests check against Xero's published OpenAPI description
(``tests/providers/xero/openapi/``).

Draft invoices are ``ACCREC`` with ``Status: DRAFT`` (Xero's own draft state: finance approves
and sends them in Xero), one line item per planned line, in the draft's currency, with the
workspace's sales account (or item) and tax type, and a ``Reference`` naming the timesheet plus a
short marker of the draft key (``[tsi 1a2b3c4d5e6f]``) by which :meth:`find_draft` finds an
invoice whose create answer was lost. Lines that an approval appended to a period invoice end
with that approval's marker, so a withdrawal removes exactly its own lines.

Amounts: Xero computes each line's amount as Quantity x UnitAmount rounded to 2 decimals, with at
most 4 decimals on each (``unitdp=4``). :func:`line_numbers` picks a quantity and unit amount
whose product is within half a cent of our rounded amount (so any rounding rule gives it), so
the invoice's total is the sum of our lines, to the cent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from connector import money
from connector.providers.base import DraftInvoice, DraftLine, NewCustomer

QUANTITY_DECIMALS = 4
UNIT_DECIMALS = 4  # with ?unitdp=4 on every request that carries line items
LINE_DECIMALS = 2  # Xero rounds each line's amount to cents
MAX_REFERENCE = 255
MAX_DESCRIPTION = 4000
MAX_CONTACT_NAME = 255
MAX_CONTACT_NUMBER = 50
MAX_IDEMPOTENCY_KEY = 128


def _marker_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def marker(key: str) -> str:
    """The short, searchable tag of a draft key: ``[tsi 1a2b3c4d5e6f]``."""
    return f"[tsi {_marker_hash(key)}]"


def search_term(key: str) -> str:
    """What ``find_draft`` asks Xero's ``searchTerm`` for (it searches Reference)."""
    return f"tsi {_marker_hash(key)}"


def has_marker(text: Any, key: str) -> bool:
    return isinstance(text, str) and text.rstrip().endswith(marker(key))


def idempotency_key(key: str, operation: str, *parts: str) -> str:
    """``Idempotency-Key`` of one write, derived from the draft key (<= 128 characters): the
    same write repeated (a lost answer) carries the same key and Xero answers it once."""
    value = ":".join(["tsi", key, operation, *parts])
    if len(value) <= MAX_IDEMPOTENCY_KEY:
        return value
    return f"tsi:{operation}:" + hashlib.sha256(value.encode()).hexdigest()


def body_digest(body: Any) -> str:
    """A short digest of a request body, so a changed request never reuses an earlier key."""
    return hashlib.sha256(repr(body).encode()).hexdigest()[:16]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def number(value: Decimal) -> float | str:
    """A JSON number that prints exactly as ``value`` (at most 15 significant digits)."""
    as_float = float(value)
    if Decimal(repr(as_float)) == value:
        return as_float
    return str(value)


def line_numbers(line: DraftLine) -> tuple[Decimal, Decimal]:
    """(Quantity, UnitAmount) for Xero, each at most 4 decimals, multiplying to ``line.amount``.

    Our hours and rate when Xero can carry them; else the nearest pair that can (1 x the amount
    at worst). Xero does not document how it rounds a line's halves, so the product must lie
    strictly within half a cent of our amount (``rounding=None``)."""
    return money.line_numbers(
        line.quantity,
        line.unit_price,
        line.amount,
        quantity_decimals=QUANTITY_DECIMALS,
        price_decimals=UNIT_DECIMALS,
        amount_decimals=LINE_DECIMALS,
        rounding=None,
    )


def reference(draft: DraftInvoice) -> str:
    """The invoice's Reference: the timesheet (or the period) it bills, and the key's marker."""
    meta = draft.metadata
    if meta.get("consolidated"):
        # A period invoice: its memo's first sentence names the period ("Hours worked <from> to
        # <to>"); the approval's own dates would name only the first timesheet.
        what = draft.memo.split(". ", 1)[0].rstrip(".") or "Hours worked"
    else:
        what = f"Timesheet {meta.get('timesheet_id') or draft.key}"
    tail = f" {marker(draft.key)}"
    return _clip(what, MAX_REFERENCE - len(tail)) + tail


def line_item(
    line: DraftLine,
    *,
    account_code: str | None,
    item_code: str | None,
    tax_type: str | None,
    tag: str = "",
) -> dict[str, Any]:
    quantity, unit = line_numbers(line)
    description = _clip(line.description, MAX_DESCRIPTION - len(tag)) + tag
    item: dict[str, Any] = {
        "Description": description,
        "Quantity": number(quantity),
        "UnitAmount": number(unit),
    }
    if item_code:
        item["ItemCode"] = item_code
    if account_code:
        item["AccountCode"] = account_code
    if tax_type:
        item["TaxType"] = tax_type
    return item


def line_items(
    draft: DraftInvoice, *, account_code: str | None, item_code: str | None
) -> list[dict[str, Any]]:
    # Lines of a period invoice end with their approval's marker (see the module docstring).
    tag = f" {marker(draft.key)}" if draft.metadata.get("consolidated") else ""
    return [
        line_item(
            line,
            account_code=account_code,
            item_code=item_code,
            tax_type=draft.tax_code,
            tag=tag,
        )
        for line in draft.lines
    ]


def build_invoice(
    draft: DraftInvoice, *, account_code: str | None, item_code: str | None = None
) -> dict[str, Any]:
    """One DRAFT sales invoice (the element of ``{"Invoices": [...]}``)."""
    invoice: dict[str, Any] = {
        "Type": "ACCREC",
        "Status": "DRAFT",
        "Contact": {"ContactID": draft.customer_id},
        "Date": draft.issue_date.isoformat(),
        "LineAmountTypes": "Exclusive",
        "CurrencyCode": draft.currency.upper(),
        "Reference": reference(draft),
        "LineItems": line_items(draft, account_code=account_code, item_code=item_code),
    }
    if draft.payment_terms_days is not None:
        invoice["DueDate"] = due_date(draft.issue_date, draft.payment_terms_days).isoformat()
    return invoice


def due_date(issued: date, terms_days: int) -> date:
    return issued + timedelta(days=terms_days)


def kept_line(row: Mapping[str, Any]) -> dict[str, Any]:
    """An invoice's existing line as sent back in an update: Xero deletes every line the update
    leaves out, and keeps (by LineItemID) the ones it names."""
    keep = ("LineItemID", "Description", "Quantity", "UnitAmount", "AccountCode", "ItemCode")
    item = {name: row[name] for name in keep if row.get(name) not in (None, "")}
    if row.get("TaxType"):
        item["TaxType"] = row["TaxType"]
    return item


def build_contact(new: NewCustomer) -> dict[str, Any]:
    """One contact (the element of ``{"Contacts": [...]}``), in its currency when given."""
    contact: dict[str, Any] = {"Name": _clip(new.name.strip(), MAX_CONTACT_NAME)}
    if new.email:
        contact["EmailAddress"] = new.email.strip()
    if new.currency:
        contact["DefaultCurrency"] = new.currency.upper()
    if new.tracker_id:
        # Shown as "Contact code" in Xero: finance can trace the contact to the tracker client.
        contact["ContactNumber"] = _clip(f"tsi-{new.tracker_id}", MAX_CONTACT_NUMBER)
    return contact
