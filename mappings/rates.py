"""The rate table: hourly rates per scope with effective dates, validated before they are stored.

Scopes, most specific first (the billing engine picks the first that has a rate in force):
contract, member x project, project, customer, workspace default. The scope is implied by
which ids are set; combinations the engine would reject are refused here with the field named.

A customer's rate belongs to the books the workspace bills to when it is made (``Rate.books``),
as mappings do: after a switch to other books it is history (:func:`history`), listed with its
books' name, never applied, never edited; it applies again when the workspace returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import billing, books
from connector import rates as stored
from connector.models import Rate
from connector.money import parse_amount
from connector.rates import to_entry
from connector.validation import FieldError, iso_currency
from mappings.service import current_books

SCOPE_LABELS: Final = {
    "contract": "Contract",
    "member_project": "Member on project",
    "project": "Project",
    "customer": "Customer",
    "workspace": "Workspace default",
}
_ID_FIELDS: Final = ("member_id", "project_id", "contract_id", "customer_id")


class RateError(FieldError):
    """A rate that cannot be stored; ``field`` names the input to fix."""


class RateOfOtherBooks(Exception):
    """A customer rate of books the workspace does not bill to now: history, read-only."""

    def __init__(self, rate_id: int, books_name: str, now_name: str | None) -> None:
        now = f"this workspace now bills to {now_name}" if now_name else "no books are connected"
        super().__init__(
            f"Rate #{rate_id} is for a customer in {books_name}; {now}. It is kept as history "
            "and never applied, so it cannot be changed: add a rate for the customer in the "
            "current books instead."
        )

    @classmethod
    def of(cls, s: Session, workspace_id: int, row: Rate) -> RateOfOtherBooks:
        key = current_books(s, workspace_id)
        return cls(
            row.id,
            books.describe_key(s, workspace_id, row.books or ""),
            books.describe_key(s, workspace_id, key) if key else None,
        )


@dataclass(frozen=True)
class RateInput:
    amount: Decimal
    currency: str
    effective_from: date | None = None
    member_id: str | None = None
    project_id: str | None = None
    contract_id: str | None = None
    customer_id: str | None = None

    def entry(self) -> billing.RateEntry:
        return to_entry(self)


def scope_of(rate: Rate | RateInput) -> str:
    if rate.contract_id:
        return "contract"
    if rate.member_id:
        return "member_project"
    if rate.project_id:
        return "project"
    if rate.customer_id:
        return "customer"
    return "workspace"


def _text(data: Mapping[str, Any], field: str) -> str | None:
    """A text input: None when absent or blank; a JSON number, list or object is refused."""
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RateError(field, "must be a string")
    return value.strip() or None


# Hourly rates a person types (console and API): at most 4 decimals. Price lists use 2; 4 keeps
# a fee spread over hours (27.3333) while a slip like 0.0000001, which QuickBooks' 7 decimals
# would carry silently, is refused at the field. Rates read from the tracker keep theirs.
RATE_DECIMALS = 4


def parse_rate(data: Mapping[str, Any]) -> RateInput:
    """Validate raw form/JSON input; raise RateError naming the first bad field."""
    raw_amount = data.get("amount")
    if isinstance(raw_amount, int | float):  # bool is an int too
        # JSON numbers are binary floats: 0.1 + 0.2 is not 0.3, so money travels as text.
        raise RateError("amount", 'send the amount as a string, e.g. "27.50"')
    if raw_amount is not None and not isinstance(raw_amount, str):
        raise RateError("amount", 'send the amount as a string, e.g. "27.50"')
    if raw_amount is None or not raw_amount.strip():
        raise RateError("amount", "is required")
    try:
        amount = parse_amount(raw_amount)
    except (TypeError, ValueError):
        raise RateError("amount", "must be a plain non-negative number such as 27.50") from None
    if -int(amount.normalize().as_tuple().exponent) > RATE_DECIMALS:  # 27.50000 is 27.5
        raise RateError(
            "amount",
            f"has more than {RATE_DECIMALS} decimals: hourly rates are kept to "
            f"{Decimal(1).scaleb(-RATE_DECIMALS)} (enough for a fee spread over hours, such as "
            "27.3333), so a slip such as 0.0000001 is caught here",
        )

    try:
        currency = iso_currency(_text(data, "currency"))
    except ValueError:
        raise RateError("currency", "must be an ISO 4217 currency code such as USD") from None

    effective_from = None
    raw_date = _text(data, "effective_from")
    if raw_date:
        try:
            effective_from = date.fromisoformat(raw_date)
        except ValueError:
            raise RateError("effective_from", "must be a date as YYYY-MM-DD") from None

    ids = {name: _text(data, name) for name in _ID_FIELDS}
    for name, value in ids.items():
        if value is not None and len(value) > 255:
            raise RateError(name, "is longer than 255 characters")
    if ids["contract_id"] and ids["customer_id"]:
        raise RateError("customer_id", "a contract rate cannot also name a customer")
    if ids["member_id"] and not (ids["project_id"] or ids["contract_id"]):
        raise RateError("project_id", "a member rate needs a project (member x project)")
    if ids["member_id"] and ids["customer_id"]:
        raise RateError("customer_id", "a member x project rate cannot also name a customer")
    if ids["project_id"] and ids["customer_id"] and not ids["contract_id"]:
        raise RateError("customer_id", "a project rate cannot also name a customer")

    rate = RateInput(amount=amount, currency=currency, effective_from=effective_from, **ids)
    try:
        billing.check_rate(amount, currency)
    except (TypeError, ValueError) as exc:
        raise RateError("amount", str(exc)) from None
    return rate


def rate_errors(data: Mapping[str, Any]) -> dict[str, str]:
    """Every field's problem at once (the console marks them together); {} when valid.

    Each value field is checked alongside valid stand-ins for the others, then the scope ids
    with the real values, then the whole rate (combinations such as decimals per currency).
    """
    stand_ins = {"amount": "1", "currency": "USD", "effective_from": ""}
    errors: dict[str, str] = {}
    for name in stand_ins:
        probe = {**stand_ins, name: data.get(name)}
        try:
            parse_rate(probe)
        except RateError as exc:
            errors[exc.field] = exc.message
    try:
        parse_rate({**data, **stand_ins})
    except RateError as exc:
        errors.setdefault(exc.field, exc.message)
    if not errors:
        try:
            parse_rate(data)
        except RateError as exc:
            errors[exc.field] = exc.message
    return errors


def list_rates(s: Session, workspace_id: int) -> list[Rate]:
    """The rates billing applies now: every rate that names no customer, and the customer rates
    of the books the workspace bills to."""
    key = current_books(s, workspace_id)
    return _in_order(s.scalars(stored.applicable(workspace_id, key).order_by(Rate.id)))


def history(s: Session, workspace_id: int) -> list[Rate]:
    """Customer rates made in other books than the workspace bills to now: never applied."""
    key = current_books(s, workspace_id)
    return _in_order(s.scalars(stored.of_other_books(workspace_id, key).order_by(Rate.id)))


def books_names(s: Session, workspace_id: int) -> dict[str, str]:
    """books key -> plain words, for every set of books a customer rate was made in."""
    keys = s.scalars(
        select(Rate.books).where(Rate.workspace_id == workspace_id, Rate.books.is_not(None))
    )
    return {key: books.describe_key(s, workspace_id, key) for key in set(keys)}


def _in_order(rows: Iterable[Rate]) -> list[Rate]:
    order = list(SCOPE_LABELS)
    return sorted(
        rows,
        key=lambda r: (
            order.index(scope_of(r)),
            r.contract_id or "",
            r.member_id or "",
            r.project_id or "",
            r.customer_id or "",
            r.effective_from or date.min,
        ),
    )


def _same_slot(row: Rate, rate: RateInput) -> bool:
    return all(getattr(row, f) == getattr(rate, f) for f in (*_ID_FIELDS, "effective_from"))


def _check_table(s: Session, workspace_id: int, rate: RateInput, *, skip_id: int | None) -> None:
    others = [r for r in list_rates(s, workspace_id) if r.id != skip_id]
    for row in others:
        if _same_slot(row, rate):
            when = rate.effective_from.isoformat() if rate.effective_from else "the start"
            raise RateError(
                "effective_from",
                f"this scope already has a rate from {when} (rate #{row.id}); edit that one",
            )
    entries = [to_entry(r) for r in others] + [rate.entry()]
    try:
        billing.RateTable(tuple(entries))
    except ValueError as exc:  # the engine's own consistency rules, in its words
        raise RateError("effective_from", str(exc)) from None


def create_rate(s: Session, workspace_id: int, data: Mapping[str, Any]) -> Rate:
    rate = parse_rate(data)
    _check_table(s, workspace_id, rate, skip_id=None)
    row = Rate(workspace_id=workspace_id, **_values(s, workspace_id, rate))
    s.add(row)
    s.flush()
    return row


def get_rate(s: Session, workspace_id: int, rate_id: int) -> Rate | None:
    row = s.get(Rate, rate_id)
    # Another workspace's rate is "not found", never "forbidden": ids must not leak.
    return row if row is not None and row.workspace_id == workspace_id else None


def applies(s: Session, workspace_id: int, row: Rate) -> bool:
    """False for a customer rate of other books than the workspace bills to now."""
    return row.books is None or row.books == current_books(s, workspace_id)


def _refuse_history(s: Session, workspace_id: int, row: Rate) -> None:
    if not applies(s, workspace_id, row):
        raise RateOfOtherBooks.of(s, workspace_id, row)


def update_rate(s: Session, workspace_id: int, rate_id: int, data: Mapping[str, Any]) -> Rate:
    row = get_rate(s, workspace_id, rate_id)
    if row is None:
        raise LookupError(rate_id)
    _refuse_history(s, workspace_id, row)
    rate = parse_rate(data)
    _check_table(s, workspace_id, rate, skip_id=row.id)
    for name, value in _values(s, workspace_id, rate).items():
        setattr(row, name, value)
    s.flush()
    return row


def delete_rate(s: Session, workspace_id: int, rate_id: int) -> bool:
    row = get_rate(s, workspace_id, rate_id)
    if row is None:
        return False
    _refuse_history(s, workspace_id, row)
    s.delete(row)
    s.flush()
    return True


def _values(s: Session, workspace_id: int, rate: RateInput) -> dict[str, Any]:
    books_key = None
    if rate.customer_id is not None:
        books_key = current_books(s, workspace_id)
        if books_key is None:
            raise RateError(
                "customer_id", "names a customer of no books yet: connect the accounting system"
            )
    return {
        "amount": rate.amount,
        "currency": rate.currency,
        "effective_from": rate.effective_from,
        **{name: getattr(rate, name) for name in _ID_FIELDS},
        "books": books_key,  # the books the customer id belongs to
    }


def serialize_rates(s: Session, workspace_id: int, rows: Iterable[Rate]) -> list[dict[str, Any]]:
    """Rates as the API shows them, a customer rate with its books' name and whether it applies."""
    key = current_books(s, workspace_id)
    names = books_names(s, workspace_id)
    return [
        _serialize(
            row,
            applies=row.books is None or row.books == key,
            books_name=None if row.books is None else names.get(row.books, row.books),
        )
        for row in rows
    ]


def serialize_rate(s: Session, workspace_id: int, row: Rate) -> dict[str, Any]:
    return serialize_rates(s, workspace_id, [row])[0]


def _serialize(row: Rate, *, applies: bool, books_name: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "scope": scope_of(row),
        "amount": str(row.amount),
        "currency": row.currency,
        "effective_from": row.effective_from.isoformat() if row.effective_from else None,
        "member_id": row.member_id,
        "project_id": row.project_id,
        "contract_id": row.contract_id,
        "customer_id": row.customer_id,
        "books": row.books,
        "books_name": books_name,
        "applies": applies,
    }
