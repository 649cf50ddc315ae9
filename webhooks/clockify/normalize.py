"""The stored Clockify timesheet (``timesheets.build_timesheet``) -> billing's TimesheetInput.

Everything billing needs is in the stored JSON; nothing is invented. Money becomes Decimal and
is checked against billing's own limits here, so an accepted approval never fails later in the
worker for its rate.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connector.billing import Client, Member, Money, Task, TimeRow, TimesheetInput, check_rate
from connector.money import check_currency
from webhooks.clockify.events import EventError

BASE = "/timesheet"


def _date(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise EventError(422, field, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _money(raw: dict[str, Any] | None, field: str) -> Money | None:
    if raw is None:
        return None
    try:
        amount = Decimal(str(raw["amount"]))
        currency = str(raw["currency"]).upper()
    except (InvalidOperation, KeyError):
        raise EventError(422, f"{field}/amount", "is not a decimal amount") from None
    try:
        check_currency(currency)
        check_rate(amount, currency)
    except ValueError as exc:
        raise EventError(422, f"{field}/amount", str(exc)) from None
    return Money(amount=amount, currency=currency)


def _row(row: dict[str, Any], field: str, period: tuple[date, date]) -> TimeRow:
    day = _date(row.get("date"), f"{field}/date")
    if not period[0] <= day <= period[1]:
        raise EventError(422, f"{field}/date", f"{day} is outside {period[0]}..{period[1]}")
    client, task = row.get("client"), row.get("task")
    return TimeRow(
        date=day,
        project_id=str(row["project_id"]),
        project_name=str(row.get("project_name") or row["project_id"]),
        minutes=int(row["minutes"]),
        billable=row.get("billable"),
        rate=_money(row.get("rate"), f"{field}/rate"),
        client=Client(id=str(client["id"]), name=str(client["name"])) if client else None,
        task=Task(id=str(task["id"]), name=str(task["name"])) if task else None,
    )


def normalize_timesheet(raw: dict[str, Any]) -> TimesheetInput:
    try:
        member = raw["member"]
        period = (
            _date(raw["date_from"], f"{BASE}/date_from"),
            _date(raw["date_to"], f"{BASE}/date_to"),
        )
        rows = tuple(
            _row(row, f"{BASE}/rows/{i}", period) for i, row in enumerate(raw.get("rows") or [])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EventError(422, BASE, f"is not a Clockify timesheet ({exc!r})") from None
    approved_at = raw.get("approved_at")
    return TimesheetInput(
        id=str(raw["id"]),
        member=Member(
            id=str(member["id"]), name=str(member.get("name") or ""), email=member.get("email")
        ),
        date_from=period[0],
        date_to=period[1],
        rows=rows,
        approved_at=datetime.fromisoformat(approved_at).astimezone(UTC) if approved_at else None,
    )
