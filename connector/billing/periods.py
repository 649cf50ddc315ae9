"""The billing periods of per_period consolidation: which days a period holds."""

from __future__ import annotations

from calendar import monthrange
from datetime import date, timedelta
from typing import Final

# per_timesheet: each approval gets its own drafts; per_period: one open draft per customer and
# period, every approval in the period appends its lines to it (see docs/billing.md).
CONSOLIDATIONS: Final = ("per_timesheet", "per_period")
PERIODS: Final = ("weekly", "semi_monthly", "monthly")
WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def period_bounds(day: date, period: str, week_start: str = "monday") -> tuple[date, date]:
    """The first and last day of the billing period holding ``day`` (per_period consolidation).

    weekly: seven days from the configured week start; semi_monthly: the 1st-15th and the 16th to
    the month's end; monthly: the calendar month.
    """
    if period == "weekly":
        start = day - timedelta(days=(day.weekday() - WEEKDAYS.index(week_start)) % 7)
        return start, start + timedelta(days=6)
    last = monthrange(day.year, day.month)[1]
    if period == "semi_monthly":
        if day.day <= 15:
            return day.replace(day=1), day.replace(day=15)
        return day.replace(day=16), day.replace(day=last)
    if period == "monthly":
        return day.replace(day=1), day.replace(day=last)
    raise ValueError(f"unknown billing period {period!r}")
