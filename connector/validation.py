"""Checks shared by the console, the API and the CLI, so every form enforces the same rules.

Currency codes must be real ISO 4217 codes (``pycountry``'s table), not any three letters;
emails must be well-formed (``email-validator``, syntax only: no DNS lookups on a form post).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final

import pycountry
from email_validator import EmailNotValidError, validate_email


class FieldError(ValueError):
    """Input that cannot be stored; ``field`` names what to fix, ``message`` says why.

    One class for settings, mappings, rates and customer overrides, so the console shows it
    beside the field and the API turns it into a 422 naming the field the same way."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# Column sizes, in one place (models use the same numbers).
NAME_MAX: Final = 200  # workspace names, token names
CUSTOMER_NAME_MAX: Final = 500
EMAIL_MAX: Final = 320
TAX_CODE_MAX: Final = 100  # workspace and customer tax codes alike
CURRENCY_HINT: Final = "use an ISO 4217 currency code such as USD, EUR or JPY"


def iso_currency(value: str | None) -> str:
    """The upper-cased code when ``value`` is an ISO 4217 currency; ValueError otherwise."""
    code = str(value or "").strip().upper()
    if len(code) != 3 or not code.isalpha() or pycountry.currencies.get(alpha_3=code) is None:
        # Echo a short code whole, a long one cut: the message lands on pages and in logs.
        shown = code if len(code) <= 12 else f"{code[:12]}… ({len(code)} characters)"
        raise ValueError(f"{shown or 'an empty value'} is not a currency: {CURRENCY_HINT}")
    return code


def email_address(value: str | None) -> str:
    """A well-formed email address (normalised domain); ValueError with a readable reason."""
    text = str(value or "").strip()
    if len(text) > EMAIL_MAX:
        raise ValueError(f"must be at most {EMAIL_MAX} characters")
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"is not a valid email address ({exc})") from None


# --- numbers written by people and senders: ASCII digits only, within what a column stores ------
# Python's int(), Decimal() and str.isdigit() accept any Unicode digit ("٣" is 3, "²" passes
# isdigit() and then fails int()), and int() also takes "1_000" and surrounding spaces. Ids,
# counts, paging and amounts arrive here as text and are read by these functions only.

# SQLAlchemy ``Integer`` is PostgreSQL ``integer`` (4 bytes); SQLite would store 8 bytes, so the
# narrower bound is the one both backends keep. ``BigInteger`` columns hold INT8_MAX.
INT4_MAX: Final = 2**31 - 1
INT8_MAX: Final = 2**63 - 1
_ASCII_WHOLE: Final = re.compile(r"(-?)([0-9]+)")
_ASCII_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ASCII_DECIMAL: Final = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


def is_ascii_digits(text: object) -> bool:
    """``str.isdigit()`` for ids that are digit strings: only 0-9 ("²" and "٣" are digits to
    isdigit(), and int() then fails or reads another script's number)."""
    return isinstance(text, str) and text.isascii() and text.isdigit()


class FieldErrors(ValueError):
    """Several fields at once, in the order they were found (the API and console show all)."""

    def __init__(self, errors: Iterable[FieldError]):
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


def ascii_whole(value: object, field: str, *, lo: int = 0, hi: int = INT4_MAX) -> int:
    """``value`` (text, or an int that is not a bool) as an int in lo..hi; FieldError otherwise.

    Text must be ASCII digits with an optional leading "-": no spaces inside, no "+", no "_",
    no other script's digits. Bounds default to what an ``Integer`` column holds."""
    hint = f"must be a whole number from {lo} to {hi}"
    if isinstance(value, bool):
        raise FieldError(field, hint)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        match = _ASCII_WHOLE.fullmatch(value.strip())
        # More digits than the bound has cannot be in range: never build a huge int.
        if match is None or len(match[2].lstrip("0")) > len(str(max(abs(lo), abs(hi)))):
            raise FieldError(field, hint + " (ASCII digits 0-9)")
        number = int(value.strip())
    else:
        raise FieldError(field, hint)
    if not lo <= number <= hi:
        raise FieldError(field, hint)
    return number


def record_id(value: object, field: str) -> int:
    """The id of a row (1..INT4_MAX), as :func:`ascii_whole` reads it."""
    return ascii_whole(value, field, lo=1, hi=INT4_MAX)


def record_id_or_none(value: object) -> int | None:
    """A row id, or None when ``value`` cannot be one (an id nobody has, not an error)."""
    try:
        return record_id(value, "id")
    except FieldError:
        return None


def ascii_decimal(
    value: object, field: str, *, max_digits: int = 12, places: int = 6, signed: bool = False
) -> Decimal:
    """Plain decimal text ("27.50") with ASCII digits, at most ``max_digits`` before the point
    and ``places`` after it; FieldError otherwise (no exponent, NaN, separator, other digits)."""
    hint = f'must be a decimal number such as "27.50" (ASCII digits, up to {places} decimals)'
    match = _ASCII_DECIMAL.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or (match[1] and not signed):
        raise FieldError(field, hint)
    if len(match[2].lstrip("0")) > max_digits or len(match[3] or "") > places:
        raise FieldError(
            field, f"is out of range: at most {max_digits} digits and {places} decimals"
        )
    return Decimal(value.strip())  # type: ignore[union-attr]


@dataclass(frozen=True)
class Paging:
    limit: int
    offset: int


MAX_OFFSET: Final = INT4_MAX


def paging(args: Mapping[str, str], *, default_limit: int = 50, max_limit: int = 200) -> Paging:
    """``limit`` (1..max_limit) and ``offset`` (0..MAX_OFFSET) from a query string; FieldErrors
    naming each bad one. An empty value is an error too: ``?limit=`` is not "the default"."""
    errors: list[FieldError] = []
    values = {"limit": default_limit, "offset": 0}
    for name, hi, lo in (("limit", max_limit, 1), ("offset", MAX_OFFSET, 0)):
        if name in args:
            try:
                values[name] = ascii_whole(args[name], name, lo=lo, hi=hi)
            except FieldError as exc:
                errors.append(exc)
    if errors:
        raise FieldErrors(errors)
    return Paging(**values)


class ErrorCollector:
    """Runs checks and keeps their FieldErrors, so a request's bad fields are all named at once:
    ``value = errors.check(parse, raw, "field")`` ... ``errors.raise_any()``."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def check(self, parse: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return parse(*args, **kwargs)
        except FieldErrors as exc:
            self.errors.extend(exc.errors)
        except FieldError as exc:
            self.errors.append(exc)
        return None

    def raise_any(self) -> None:
        if self.errors:
            raise FieldErrors(self.errors)


def iso_date(value: object, field: str) -> date:
    """A calendar date written YYYY-MM-DD in ASCII digits; FieldError otherwise."""
    text = value.strip() if isinstance(value, str) else ""
    if not _ASCII_DATE.fullmatch(text):
        raise FieldError(field, "must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FieldError(field, f"{text} is not a date in the calendar") from None


def one_of(value: object, field: str, allowed: Iterable[str]) -> str:
    """``value`` when it is one of ``allowed``; FieldError listing them otherwise."""
    choices = list(allowed)
    if not isinstance(value, str) or value not in choices:
        raise FieldError(field, f"must be one of {', '.join(choices)}")
    return value


def every_field_error(
    check: Callable[[dict[str, Any]], object], body: Mapping[str, Any]
) -> list[FieldError]:
    """Every bad field of ``body`` at once: ``check`` (which raises the first FieldError) runs on
    each field alone, then, when each is fine alone, on the whole body (rules across fields)."""
    found: dict[str, FieldError] = {}
    for name, value in body.items():
        try:
            check({name: value})
        except FieldErrors as exc:
            for error in exc.errors:
                found.setdefault(error.field, error)
        except FieldError as exc:
            found.setdefault(exc.field, exc)
    if not found:
        try:
            check(dict(body))
        except FieldErrors as exc:
            return exc.errors
        except FieldError as exc:
            return [exc]
    return list(found.values())


# --- JSON from outside: depth-limited ------------------------------------------------------------
# json.loads recurses once per nested array/object: 100,000 "[" raise RecursionError (a 500 if
# nobody catches it), and a few thousand levels that do parse blow up later, wherever the value
# is walked or written back. No request body, event or stored payload nests this deep.
MAX_JSON_DEPTH: Final = 64
_JSON_STRING_BYTES: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS: Final = bytes(set(range(256)) - set(b"[]{}"))
_JSON_INNERMOST_PAIR: Final = re.compile(rb"[\[{][\]}]")


class JsonError(ValueError):
    """Not JSON, or JSON nested deeper than the limit; the message says which."""


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays/objects in ``body`` nest deeper than ``limit`` (brackets inside strings do
    not count; unbalanced brackets count as too deep). No recursion and no Python loop per
    byte: each pass deletes the innermost bracket pairs, so ``limit`` passes empty any body
    nested at most ``limit`` deep. The common body has fewer brackets than that: not scanned."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _JSON_STRING_BYTES.sub(b"", body).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        brackets, removed = _JSON_INNERMOST_PAIR.subn(b"", brackets)
        if not brackets:
            return False
        if not removed:
            return True
    return True


def parse_json(body: bytes | str, *, max_depth: int = MAX_JSON_DEPTH, **loads_kwargs: Any) -> Any:
    """``json.loads`` for input from outside: JsonError when it is not JSON or nests deeper than
    ``max_depth``. ``loads_kwargs`` go to json.loads (parse_float=Decimal, ...)."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if json_depth_exceeds(raw, max_depth):
        raise JsonError(f"JSON nests deeper than {max_depth} levels")
    try:
        return json.loads(body, **loads_kwargs)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise JsonError(f"not valid JSON: {exc}") from None
