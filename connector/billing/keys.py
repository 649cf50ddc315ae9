"""Deterministic names: a timesheet's content revision and each draft's idempotency key."""

from __future__ import annotations

import hashlib
from base64 import b32encode
from datetime import date
from decimal import Decimal

from connector.billing.records import TimesheetInput


def canonical_decimal(value: Decimal) -> str:
    # 27.5 and 27.50 are the same rate; 1E+2 and 100 the same amount.
    return format(value.normalize(), "f")


def timesheet_revision(timesheet: TimesheetInput) -> str:
    """Content hash of the member, the period and the rows (as a multiset: order-independent).

    approved_at is deliberately left out: re-approving identical content keeps the same keys.
    """
    member = timesheet.member
    header = repr(
        (
            "timesheet-revision-v1",
            member.id,
            member.name,
            member.email,
            timesheet.date_from.isoformat(),
            timesheet.date_to.isoformat(),
        )
    )
    # Each token is repr() of the tuple (date ISO string, project id, project name, minutes,
    # contract id, billable, None | (canonical rate, currency), None | (client id, name, email),
    # None | (task id, name)). It is spelled out below with !r, which is exactly what repr() of
    # a tuple does to each item, so no tuple is built per row; the date, shared by many rows, is
    # formatted once per day. test_revision_token_format pins this against the tuple form.
    day_reprs: dict[date, str] = {}
    tokens = []
    for row in timesheet.rows:
        day = day_reprs.get(row.date)
        if day is None:
            day = day_reprs[row.date] = repr(row.date.isoformat())
        rate, client, task = row.rate, row.client, row.task
        rate_part = (
            "None" if rate is None else repr((canonical_decimal(rate.amount), rate.currency))
        )
        client_part = (
            "None" if client is None else f"({client.id!r}, {client.name!r}, {client.email!r})"
        )
        task_part = "None" if task is None else f"({task.id!r}, {task.name!r})"
        tokens.append(
            f"({day}, {row.project_id!r}, {row.project_name!r}, {row.minutes!r}, "
            f"{row.contract_id!r}, {row.billable!r}, {rate_part}, {client_part}, {task_part})"
        )
    tokens.sort()
    digest = hashlib.sha256()
    digest.update(header.encode())
    for token in tokens:
        # repr() escapes newlines, so "\n" cannot occur inside a token: the join is unambiguous.
        digest.update(b"\n")
        digest.update(token.encode())
    return "rev1-" + digest.hexdigest()[:40]


def draft_key(workspace_id: str, timesheet_id: str, revision: str, customer_id: str) -> str:
    """Deterministic idempotency key: 'ti-' + 40 base32 chars of a sha256 (43 chars, [a-z2-7-])."""
    material = repr(("draft-key-v1", workspace_id, timesheet_id, revision, customer_id))
    encoded = b32encode(hashlib.sha256(material.encode()).digest()).decode().rstrip("=").lower()
    return "ti-" + encoded[:40]
