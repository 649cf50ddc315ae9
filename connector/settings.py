"""Workspace settings: their names, defaults, and validation (shared by API, admin and pipeline)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, get_type_hints

# One definition: the billing engine owns what it can group by and round to.
from connector.billing import BILLING_INCREMENTS, CONSOLIDATIONS, GROUPINGS, PERIODS, WEEKDAYS
from connector.validation import INT4_MAX, TAX_CODE_MAX, FieldError, ascii_whole, iso_currency

__all__ = [
    "BILLING_INCREMENTS",
    "CONSOLIDATIONS",
    "GROUPINGS",
    "PERIODS",
    "WEEKDAYS",
    "SettingsError",
    "WorkspaceSettings",
    "validate_settings",
]


class SettingsError(FieldError):
    """Workspace settings that cannot be stored."""


@dataclass(frozen=True)
class WorkspaceSettings:
    grouping: str = "project"  # how hours become invoice lines
    billing_increment: int | None = None  # round each day's row up to N minutes
    payment_terms_days: int = 30  # due date = issue date + N days
    default_currency: str = "USD"  # for customers whose currency the provider does not lock
    tax_code: str | None = None  # QuickBooks TaxCodeRef (US: TAX/NON); None = NON in the US
    consolidation: str = "per_timesheet"  # or per_period: one draft per customer and period
    period: str = "weekly"  # per_period only: weekly | semi_monthly | monthly
    week_start: str = "monday"  # per_period weekly only: the first day of a week

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> WorkspaceSettings:
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fields_holding(kind: type) -> frozenset[str]:
    hints = get_type_hints(WorkspaceSettings)
    return frozenset(
        f.name
        for f in fields(WorkspaceSettings)
        if kind in (hints[f.name], *getattr(hints[f.name], "__args__", ()))
    )


# Settings held as text: a JSON number, list or object sent for one is refused, never stored
# as its ``str()`` (``tax_code: 0`` is not the tax code "0").
TEXT_FIELDS = _fields_holding(str)
# Whole numbers: JSON true is not 1 and 30.5 days is not 30 (forms send digits as text).
WHOLE_NUMBER_FIELDS = _fields_holding(int)


def _check_json_type(name: str, value: Any) -> None:
    if value is None:
        return
    if name in TEXT_FIELDS and not isinstance(value, str):
        raise SettingsError(name, "must be a string")
    if name in WHOLE_NUMBER_FIELDS and (
        isinstance(value, bool) or (isinstance(value, float) and not value.is_integer())
    ):
        raise SettingsError(name, "must be a whole number")


def _whole(value: Any, field: str) -> int:
    """A whole number from a form (ASCII digits) or JSON (an int, or a float with no fraction)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return ascii_whole(value, field, lo=-INT4_MAX, hi=INT4_MAX)


def validate_settings(changes: dict[str, Any], current: WorkspaceSettings) -> WorkspaceSettings:
    """Apply ``changes`` to ``current``; raise SettingsError naming the first bad field."""
    known = {f.name for f in fields(WorkspaceSettings)}
    for name, value in changes.items():
        if name not in known:
            raise SettingsError(name, "is not a setting")
        _check_json_type(name, value)
    merged = {**current.to_dict(), **changes}
    if merged["grouping"] not in GROUPINGS:
        raise SettingsError("grouping", f"must be one of {', '.join(GROUPINGS)}")
    inc = merged["billing_increment"]
    if inc in ("", "none"):
        inc = merged["billing_increment"] = None
    if inc is not None:
        try:
            inc = merged["billing_increment"] = _whole(inc, "billing_increment")
        except FieldError:
            raise SettingsError("billing_increment", "must be 1, 6, 15 or empty") from None
    if inc not in BILLING_INCREMENTS:
        raise SettingsError("billing_increment", "must be 1, 6, 15 or empty")
    try:
        terms = _whole(merged["payment_terms_days"], "payment_terms_days")
    except FieldError:
        raise SettingsError("payment_terms_days", "must be a whole number of days") from None
    if not 0 <= terms <= 365:
        raise SettingsError("payment_terms_days", "must be between 0 and 365")
    merged["payment_terms_days"] = terms
    try:
        merged["default_currency"] = iso_currency(merged["default_currency"])
    except ValueError as exc:
        raise SettingsError("default_currency", str(exc)) from None
    tax = merged["tax_code"]
    merged["tax_code"] = (str(tax).strip() or None) if tax is not None else None
    if merged["tax_code"] is not None and len(merged["tax_code"]) > TAX_CODE_MAX:
        raise SettingsError("tax_code", f"must be at most {TAX_CODE_MAX} characters")
    for name, allowed in (
        ("consolidation", CONSOLIDATIONS),
        ("period", PERIODS),
        ("week_start", WEEKDAYS),
    ):
        value = str(merged[name] or "").strip().lower()
        if value not in allowed:
            raise SettingsError(name, f"must be one of {', '.join(allowed)}")
        merged[name] = value
    return WorkspaceSettings(**merged)
