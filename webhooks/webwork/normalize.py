"""WebWork API V2 timesheet (as carried by the v1 event) -> the billing engine's TimesheetInput.

Everything the billing engine needs is taken from the event; nothing is invented. Ids become
strings (WebWork mixes integers and opaque strings), money becomes Decimal, dates are checked.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from connector.billing import Client, Member, Money, Task, TimeRow, TimesheetInput, check_rate
from connector.money import check_currency
from webhooks.webwork.events import EventError, parse_datetime
from webhooks.webwork.names import person_name


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise EventError(422, field, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _money(raw: dict[str, Any] | None, field: str) -> Money | None:
    if raw is None:
        return None
    try:
        amount = Decimal(str(raw["amount"]))
    except (InvalidOperation, KeyError):
        raise EventError(422, f"{field}/amount", "is not a decimal amount") from None
    if not amount.is_finite() or amount < 0:
        raise EventError(422, f"{field}/amount", "must be a finite amount >= 0")
    # The magnitude first: 1e400 or 1e-400 would cost the exact checks below a huge integer.
    if amount.adjusted() > 12 or amount.as_tuple().exponent < -12:  # type: ignore[operator]
        raise EventError(422, f"{field}/amount", f"{amount} is out of range for a rate")
    currency = str(raw["currency"]).upper()
    try:
        check_currency(currency)
        # The billing engine's own limits, checked here so that an accepted event never
        # fails later in the worker for its rate.
        check_rate(amount, currency)
    except ValueError as exc:
        raise EventError(422, f"{field}/amount", str(exc)) from None
    return Money(amount=amount, currency=currency)


def normalize_timesheet(raw: dict[str, Any]) -> TimesheetInput:
    base = "/data/timesheet"
    member_raw = raw["member"]
    date_from = _date(raw["date_from"], f"{base}/date_from")
    date_to = _date(raw["date_to"], f"{base}/date_to")
    if date_to < date_from:
        raise EventError(422, f"{base}/date_to", "is before date_from")
    rows: list[TimeRow] = []
    for day_text, day_rows in raw.get("daily_breakdown", {}).items():
        day_field = f"{base}/daily_breakdown/{day_text}"
        day = _date(day_text, day_field)
        if not date_from <= day <= date_to:
            raise EventError(422, day_field, f"{day} is outside {date_from}..{date_to}")
        for index, row in enumerate(day_rows):
            field = f"{day_field}/{index}"
            client = row.get("client")
            task = row.get("task")
            contract = row.get("contract_id")
            rows.append(
                TimeRow(
                    date=day,
                    project_id=str(row["project_id"]),
                    project_name=row.get("project_name") or str(row["project_id"]),
                    minutes=int(row["total_minutes"]),
                    contract_id=None if contract is None else str(contract),
                    billable=row.get("billable"),
                    rate=_money(row.get("rate"), f"{field}/rate"),
                    client=Client(
                        id=str(client["id"]), name=client["name"], email=client.get("email")
                    )
                    if client
                    else None,
                    task=Task(id=str(task["id"]), name=task["name"]) if task else None,
                )
            )
    approved_at = raw.get("approved_at")
    return TimesheetInput(
        id=str(raw["id"]),
        member=Member(
            id=str(member_raw["id"]),
            # WebWork's firstname + lastname, or a single name (both shapes are accepted).
            name=person_name(member_raw) or f"Member {member_raw['id']}",
            email=member_raw.get("email"),
        ),
        date_from=date_from,
        date_to=date_to,
        rows=tuple(rows),
        approved_at=parse_datetime(approved_at, f"{base}/approved_at") if approved_at else None,
    )
