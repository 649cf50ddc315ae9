"""The JSON and queries this connector sends QuickBooks (pure): what is sent is what is tested."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from connector import money
from connector.providers.base import (
    DraftInvoice,
    DraftLine,
    NewCustomer,
    Rejected,
)

MARKER_PREFIX = "tsi-key: "


MAX_CUSTOMER_MEMO = 1000


MAX_PRIVATE_NOTE = 4000


MAX_DESCRIPTION = 4000


MAX_DISPLAY_NAME = 500


MAX_REQUEST_ID = 50


MAX_QUERY_RESULTS = 1000  # QuickBooks' cap on MAXRESULTS


# Qty and UnitPrice carry at most 7 decimals (as declared in the registry's capabilities).
QUANTITY_DECIMALS = 7
PRICE_DECIMALS = 7
# QuickBooks checks Amount == Qty x UnitPrice rounded half-up (error 6070, "Amount is not equal
# to UnitPrice * Qty") at the currency's decimals but never fewer than 2, even for JPY.
MIN_COMPARE_DECIMALS = 2


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


def clip(text: str, limit: int) -> str:
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
    return (clip(words, room) + tail) if words and room > 1 else tail[1:]


def words_of(private_note: str) -> str:
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


def line_numbers(line: DraftLine, currency: str) -> tuple[Decimal, Decimal]:
    """(Qty, UnitPrice) for one line that pass QuickBooks' 6070 check against ``line.amount``:
    our hours and rate when they do (almost always), else the nearest pair that does."""
    return money.line_numbers(
        line.quantity,
        line.unit_price,
        line.amount,
        quantity_decimals=QUANTITY_DECIMALS,
        price_decimals=PRICE_DECIMALS,
        amount_decimals=max(money.minor_units(currency), MIN_COMPARE_DECIMALS),
        rounding=ROUND_HALF_UP,
    )


def decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def ref(value: Any) -> str | None:
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
        quantity, unit_price = line_numbers(line, draft.currency)
        detail = {
            "ItemRef": {"value": item_id},
            "Qty": number(quantity),
            "UnitPrice": number(unit_price),
            "ServiceDate": line.service_date.isoformat() if line.service_date else None,
            "TaxCodeRef": {"value": tax_code} if tax_code else None,
        }
        lines.append(
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": number(line.amount),
                "Description": (clip(line.description, MAX_DESCRIPTION - len(tag)) + tag) or None,
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
        "CustomerMemo": {"value": clip(draft.memo, MAX_CUSTOMER_MEMO)} if draft.memo else None,
        "PrivateNote": private_note(draft.private_note, draft.key),
        "EmailStatus": "NotSet",  # never queue it for sending: finance reviews it first
    }
    return compact(body)


def build_customer(new: NewCustomer) -> dict[str, Any]:
    name = new.name.strip()
    notes = None
    if new.tracker_id:
        notes = f"Created by timesheet-invoicer for tracker client {new.tracker_id}."
    return compact(
        {
            "DisplayName": clip(name, MAX_DISPLAY_NAME),
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
