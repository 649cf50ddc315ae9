"""What every API module does with a request body: read it as a JSON object, name a bad field."""

from __future__ import annotations

from typing import Any

from flask import request

from connector.problems import Problem


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 problem saying what was wrong."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Problem(
            400,
            "Malformed request body",
            "Send a JSON object with 'Content-Type: application/json'.",
            type_="malformed-body",
        )
    return body


def invalid(field: str, message: str) -> Problem:
    return Problem(
        422,
        "Invalid field",
        f"{field}: {message}",
        type_="invalid-field",
        field=f"/{field}",
    )
