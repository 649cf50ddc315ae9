"""Xero's error answers turned into plain words (pure), and the one error kept inside the folder.

Xero answers a refused write with ``400`` and ``{"ErrorNumber": 10, "Type":
"ValidationException", "Message": "A validation exception occurred", "Elements": [{...,
"ValidationErrors": [{"Message": "..."}]}]}``: the useful words are the ValidationErrors of the
elements. Authentication failures are problem documents (``{"Title": "Unauthorized", "Status":
401, "Detail": "TokenExpired: ..."}``); 403 ``AuthenticationUnsuccessful`` means the organisation
is no longer connected to this app (disconnected in Xero, or the grant lost it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.providers.base import Rejected

GENERIC = "Xero refused the request."


class NotFound(Rejected):
    """The invoice or contact does not exist (any more). Internal to the Xero folder."""


def validation_messages(body: Any) -> list[str]:
    """Every ValidationErrors message of a Xero error body, in order, without repeats."""
    if not isinstance(body, Mapping):
        return []
    found: list[str] = []
    holders: list[Any] = list(body.get("Elements") or [])
    for key in ("Invoices", "Contacts"):
        holders += list(body.get(key) or [])
    for element in holders:
        if not isinstance(element, Mapping):
            continue
        for error in element.get("ValidationErrors") or []:
            if isinstance(error, Mapping) and error.get("Message"):
                found.append(str(error["Message"]).strip())
    return list(dict.fromkeys(found))


def describe(body: Any, status: int) -> tuple[str, str | None]:
    """(plain words, Xero's error type or number) of an error answer."""
    messages = validation_messages(body)
    if messages:
        return ("Xero refused it: " + " ".join(_sentence(m) for m in messages), _code(body))
    if isinstance(body, Mapping):
        for key in ("Message", "Detail", "detail", "message", "Title"):
            if body.get(key):
                return (f"Xero refused it: {_sentence(str(body[key]))}", _code(body))
    return (f"{GENERIC} (HTTP {status})", None)


def _code(body: Any) -> str | None:
    if not isinstance(body, Mapping):
        return None
    value = body.get("Type") or body.get("ErrorNumber")
    return str(value) if value not in (None, "") else None


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."


def says_references_changed(messages: list[str]) -> bool:
    """A refusal whose cause may be a contact, currency or account changed in Xero since we
    cached it (archived contact, currency, account code): worth one fresh read."""
    words = " ".join(messages).lower()
    return any(
        hint in words for hint in ("contact", "currency", "account code", "archived", "item code")
    )
