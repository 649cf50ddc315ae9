"""Plain words for the console: statuses, durations and delivery errors as people read them.

Internal keys (``project:p-101``, ``needs_mapping``, schema pointers) stay in the data and the
JSON API; pages show these words, with the technical detail folded away where it helps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from connector.admin import bp

# One label per draft status, the same on every page.
STATUS_WORDS: Final = {
    "pending": "Being created",
    "drafted": "Drafted",
    "needs_mapping": "Needs a customer",
    "needs_rate": "Needs a rate",
    "currency_mismatch": "Currency differs",
    "reconnect_needed": "Waiting for the connection",
    "connect_first": "Connect first",
    "failed": "Refused",
    "voided": "Removed",
    "needs_attention": "Needs attention",
    "superseded": "Replaced",
    "rebilling": "Re-billing…",
    # deliveries and connections share the status pill
    "accepted": "Accepted",
    "processed": "Processed",
    "invalid": "Not understood",
    "ignored": "Ignored (not an approval event)",
    "skipped": "Skipped (automatic invoicing was off)",
    "connected": "Connected",
    "disconnected": "Disconnected",
    "approved": "Approved",
    "withdrawn": "Withdrawn",
    "waiting_for_data": "Waiting for the tracker's data",
}


@bp.app_template_filter("status_words")
def status_words(status: str | None) -> str:
    if not status:
        return ""
    return STATUS_WORDS.get(status, status.replace("_", " ").capitalize())


@bp.app_template_filter("hm")
def hours_minutes(minutes: int | None) -> str:
    """530 -> "8 h 50 min"; hours are shown this one way on every page."""
    if minutes is None:
        return "—"
    minutes = int(minutes)
    sign = "-" if minutes < 0 else ""
    hours, rest = divmod(abs(minutes), 60)
    if hours and rest:
        return f"{sign}{hours} h {rest} min"
    if hours:
        return f"{sign}{hours} h"
    return f"{sign}{rest} min"


@dataclass(frozen=True)
class DeliveryProblem:
    summary: str  # one sentence for people
    detail: str  # the original text, folded away on the page


# Patterns of the receiver's and pipeline's messages, most specific first.
_DELIVERY_RULES: Final = (
    (
        re.compile(r"workspace_id|does not belong|another workspace", re.I),
        "The event was for a different tracker workspace than the one this workspace is set "
        "up for; check the workspace id in Settings.",
    ),
    (
        re.compile(r"date_to.*before date_from", re.I),
        "The timesheet's end date is before its start date, so it could not be billed.",
    ),
    (
        re.compile(r"required|missing", re.I),
        "The event was missing information this service needs (see the detail below).",
    ),
    (
        re.compile(r"schema|must be|is not of type|invalid", re.I),
        "The event did not have the shape the tracker's approval events have, so nothing was "
        "billed.",
    ),
    (
        re.compile(r"timeout|timed out|connection|unavailable|5\d\d", re.I),
        "The accounting system did not answer in time; it is retried automatically.",
    ),
)


def explain_delivery_error(error: str | None) -> DeliveryProblem | None:
    if not error:
        return None
    for pattern, words in _DELIVERY_RULES:
        if pattern.search(error):
            return DeliveryProblem(words, error)
    return DeliveryProblem("This event could not be processed (see the detail below).", error)


@bp.app_template_filter("delivery_problem")
def delivery_problem(error: str | None) -> DeliveryProblem | None:
    return explain_delivery_error(error)
