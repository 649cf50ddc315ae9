"""Stripe request parameters built from our values (pure): invoice, lines, metadata."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any, TypeVar

from connector.money import format_money, to_minor_units
from connector.providers.base import (
    DraftInvoice,
    DraftLine,
)

T = TypeVar("T")


# Used when neither workspace nor customer sets payment terms (documented in docs/stripe.md).
DEFAULT_DAYS_UNTIL_DUE = 30


# Stripe documents no per-call cap for add_lines (250 items per invoice at most): stay modest.
LINES_PER_CALL = 50


MAX_INVOICE_LINES = 250


MAX_DESCRIPTION = 1500


# --- small pure helpers ------------------------------------------------------------------------
def as_dict(obj: Any) -> dict[str, Any]:
    """Stripe objects are not dicts since v15: work on plain data from here on."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.to_dict()


def metadata(*sources: Mapping[str, Any]) -> dict[str, str]:
    """Merge metadata within Stripe's limits (50 keys, key <= 40 chars without [], value <= 500).

    Later sources win, and the last source's keys are kept first when trimming to 50 keys, so the
    keys the connector relies on (draft_key, ...) are never the ones dropped.
    """
    merged: dict[str, str] = {}
    for source in sources:
        for key, value in source.items():
            if value is None:
                continue
            clean = re.sub(r"[\[\]]", "_", str(key))[:40]
            merged[clean] = str(value)[:500]
    if len(merged) > 50:
        essential = {re.sub(r"[\[\]]", "_", str(k))[:40] for k in sources[-1]}
        extra = [k for k in merged if k not in essential][: 50 - len(essential)]
        merged = {k: v for k, v in merged.items() if k in essential or k in extra}
    return merged


def _timestamp(day: date) -> int:
    # Noon UTC shows the same calendar date in the Dashboard from UTC-11 to UTC+11, whereas
    # midnight would slip a day back for every account west of Greenwich.
    return int(datetime.combine(day, dtime(12, 0), tzinfo=UTC).timestamp())


def line_description(line: DraftLine, currency: str) -> str:
    """The billing description plus the rate (``... - 8 h 50 min x 27.50 USD/h``)."""
    rate = f"{format_money(line.unit_price, currency)}/h"
    if rate in line.description:
        return line.description
    return f"{line.description} x {rate}"


def line_params(draft: DraftInvoice, index: int, line: DraftLine) -> dict[str, Any]:
    """One ``lines[]`` entry of add_lines: integer minor units, never a float or a Decimal."""
    currency = draft.currency.upper()  # the money helpers take ISO codes in upper case
    params: dict[str, Any] = {
        "amount": to_minor_units(line.amount, currency),
        "description": line_description(line, currency),
        # draft_key + index let a resumed create_draft tell which lines are already there.
        "metadata": metadata(
            line.metadata,
            {"draft_key": draft.key, "line": str(index), "hours": str(line.quantity)},
        ),
    }
    start = line.period_start or line.service_date
    end = line.period_end or line.service_date or start
    if start is not None and end is not None:
        params["period"] = {"start": _timestamp(start), "end": _timestamp(max(start, end))}
    return params


def chunks(items: Sequence[T], size: int = LINES_PER_CALL) -> list[tuple[int, Sequence[T]]]:
    """(chunk index, items) pairs; chunk boundaries are deterministic, so are their keys."""
    return [(i // size, items[i : i + size]) for i in range(0, len(items), size)]


def invoice_params(draft: DraftInvoice, workspace_id: int) -> dict[str, Any]:
    terms = draft.payment_terms_days
    params: dict[str, Any] = {
        "customer": draft.customer_id,
        # Explicitly false: with true Stripe finalizes the draft by itself about an hour later.
        "auto_advance": False,
        "collection_method": "send_invoice",
        "days_until_due": DEFAULT_DAYS_UNTIL_DUE if terms is None else terms,
        # Only our lines: never sweep the customer's other pending invoice items into this draft.
        "pending_invoice_items_behavior": "exclude",
        "currency": draft.currency.lower(),
        "metadata": metadata(
            draft.metadata,
            {
                "workspace_id": str(workspace_id),
                "customer_id": draft.customer_id,
                "draft_key": draft.key,
                "line_count": str(len(draft.lines)),
                "internal_note": draft.private_note or None,
            },
        ),
    }
    if draft.memo:
        params["description"] = draft.memo[:MAX_DESCRIPTION]
    return params


def search_literal(value: str) -> str:
    # Stripe's search language quotes strings with double quotes, escaped with a backslash.
    return value.replace("\\", "\\\\").replace('"', '\\"')
