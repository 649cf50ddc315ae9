"""Protections every response and every URL gets, whatever blueprint serves it.

* ``BoundedIntConverter`` replaces Flask's ``int`` converter: ``<int:...>`` matches only what fits
  the integer columns ids are stored in (PostgreSQL ``integer``), so an id such as
  ``99999999999999999999`` is a 404 for every route, never an overflow in the database driver.
* ``security_headers`` adds the browser protections: a Content-Security-Policy that allows only
  this origin's own scripts and styles (the console has no inline script or style; a test keeps
  it so), no framing, no MIME sniffing, a strict referrer policy, and HSTS in production.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response
from werkzeug.routing import IntegerConverter, Map

# The widest id any table holds: PostgreSQL's ``integer`` (SQLAlchemy ``Integer``).
MAX_ID = 2**31 - 1

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
    )
)
HSTS = "max-age=31536000; includeSubDomains"


def digits_up_to(limit: int) -> str:
    """A regex matching exactly the decimal numbers 0..limit (leading zeros allowed).

    The bound must be in the regex, not only in ``to_python``: werkzeug treats a converter's
    ValidationError as "this rule does not match" and then answers 405 when a sibling rule of
    another method matched the path, instead of 404.
    """
    text = str(limit)
    # [0-9], not \d: in a str pattern \d matches any script's digits, and int("٣") is 3.
    shorter = [rf"[0-9]{{1,{len(text) - 1}}}"] if len(text) > 1 else []
    same_length = [
        rf"{text[:i]}[0-{int(digit) - 1}][0-9]{{{len(text) - i - 1}}}"
        for i, digit in enumerate(text)
        if digit != "0"
    ]
    return "0*(?:" + "|".join([*shorter, *same_length, text]) + ")"


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` limited to 0..MAX_ID: a bigger number matches no route (404)."""

    regex = digits_up_to(MAX_ID)

    def __init__(
        self,
        map: Map,
        fixed_digits: int = 0,
        min: int | None = 0,
        max: int | None = MAX_ID,
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def install(app: Flask) -> None:
    """Register the converter (before any blueprint adds a rule) and the response headers."""
    app.url_map.converters["int"] = BoundedIntConverter
    hsts = app.config.get("APP_ENV") == "production"

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if hsts:
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response


def bounded_int_arg(value: Any, default: int, high: int = MAX_ID) -> int:
    """A query-string integer clamped to 1..high (``?page=10**20`` is the last page, not a 500);
    anything but ASCII digits is the default."""
    text = value.strip() if isinstance(value, str) else ""
    if not (text.isascii() and text.isdigit()):
        return default
    return max(1, min(int(text) if len(text) <= 20 else high, high))
