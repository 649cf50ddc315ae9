"""Checks shared by the console, the API and the CLI, so every form enforces the same rules.

Currency codes must be real ISO 4217 codes (``pycountry``'s table), not any three letters;
emails must be well-formed (``email-validator``, syntax only: no DNS lookups on a form post).
"""

from __future__ import annotations

from typing import Final

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
        raise ValueError(f"{code or 'an empty value'} is not a currency: {CURRENCY_HINT}")
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
