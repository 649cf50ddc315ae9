"""Styled error pages for people (the API and webhooks keep problem+json)."""

from __future__ import annotations

import logging
from typing import Any, Final

from flask import render_template

log = logging.getLogger(__name__)

# Longest path + query string a console page accepts; longer ones get the styled 414 page
# (gunicorn refuses request lines over 4094 bytes itself, before the app sees them).
MAX_URL_CHARS: Final = 4000

ERROR_WORDS: Final = {
    400: ("That request could not be understood", "Something in the form or the address was "
          "not what this page expects. Go back and try again; if it keeps happening, sign out "
          "and in again (your session may have expired)."),
    403: ("Not allowed", "Your account may not open this page."),
    404: ("Page not found", "There is nothing at this address, or it belongs to a workspace "
          "you are not an admin of."),
    405: ("Not allowed here", "This address does not accept that kind of request."),
    413: ("Too large", "What was sent is larger than this service accepts."),
    414: ("Address too long", "The address (URL) is longer than this service accepts. Remove "
          "some filters and try again."),
    422: ("Not saved", "Some of what was entered needs a change."),
    429: ("Too many requests", "Wait a minute, then try again."),
    503: ("Briefly unavailable", "The service cannot reach its database or queue right now. "
          "Nothing you sent was saved; try again in a few seconds."),
    500: ("Something went wrong on our side", "Nothing you sent was lost. Please try again in "
          "a moment; if it keeps happening, tell the operator the time it happened."),
}  # fmt: skip


def error_page(status: int, description: str | None = None) -> tuple[Any, int]:
    title, words = ERROR_WORDS.get(status, ("Something went wrong", ""))
    try:
        page = render_template(
            "admin/error.html", status=status, title=title, words=words, description=description
        )
    except Exception:  # the error page itself must never fail
        log.exception("could not render the %s page", status)
        page = f"<!doctype html><title>{status}</title><h1>{title}</h1><p>{words}</p>"
    return page, status
