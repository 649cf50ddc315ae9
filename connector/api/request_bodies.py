"""What every API module does with a request: read the body as a JSON object, read numbers and
paging from the query string (``connector.validation``: ASCII digits, column bounds), and name
every bad field at once in one 422 problem."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pycountry
from flask import request

from connector.api import bp
from connector.problems import Problem
from connector.validation import (
    MAX_OFFSET,
    FieldError,
    FieldErrors,
    JsonError,
    Paging,
    paging,
    parse_json,
)


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 problem saying what was wrong."""
    try:
        body = parse_json(request.get_data(cache=True)) if request.is_json else None
    except JsonError as exc:
        raise _malformed(str(exc)) from None
    if not isinstance(body, dict):
        raise _malformed("Send a JSON object with 'Content-Type: application/json'.")
    return body


def _malformed(detail: str) -> Problem:
    return Problem(400, "Malformed request body", detail, type_="malformed-body")


def invalid(field: str, message: str) -> Problem:
    return invalid_fields([FieldError(field, message)])


def invalid_fields(errors: Iterable[FieldError]) -> Problem:
    """One 422 naming every bad field: ``field`` is the first (as before), ``errors`` all of
    them, each with its JSON pointer and what is wrong."""
    listed = [{"field": "/" + e.field.lstrip("/"), "detail": e.message} for e in errors]
    return Problem(
        422,
        "Invalid field" if len(listed) == 1 else f"{len(listed)} invalid fields",
        "; ".join(f"{e['field'].lstrip('/')}: {e['detail']}" for e in listed),
        type_="invalid-field",
        field=listed[0]["field"],
        errors=listed,
    )


# A text id or name the server strips and refuses when blank: at least one non-space character.
NON_BLANK_ID: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": r"\S",
}


# An ISO 4217 code, as connector.validation.iso_currency checks it (pycountry's table).
CURRENCY_SCHEMA: dict[str, Any] = {
    "type": "string",
    "enum": sorted(c.alpha_3 for c in pycountry.currencies),
    "description": "ISO 4217 currency code",
}


def paging_parameters(*, default_limit: int = 50, max_limit: int = 200) -> list[dict[str, Any]]:
    """The OpenAPI parameters :func:`query_paging` reads, with the same bounds."""
    return [
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": max_limit},
            "description": f"Page size (default {default_limit})",
        },
        {
            "name": "offset",
            "in": "query",
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
        },
    ]


PAGING_PARAMETERS = paging_parameters()


def query_paging(*, default_limit: int = 50, max_limit: int = 200) -> Paging:
    """``limit``/``offset`` from the query string, or a 422 naming each bad one."""
    return paging(request.args, default_limit=default_limit, max_limit=max_limit)


@bp.errorhandler(FieldError)
def _field_error(exc: FieldError) -> Any:
    return invalid_fields([exc]).response()


@bp.errorhandler(FieldErrors)
def _field_errors(exc: FieldErrors) -> Any:
    return invalid_fields(exc.errors).response()
