"""Retry-After read one way everywhere: seconds or an HTTP date, anything else ignored."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from connector.retry_after import MAX_SECONDS, parse_retry_after, retry_after

NOW = 1_800_000_000.0


def clock() -> float:
    return NOW


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 5 ", 5.0),
        ("1.5", 1.5),
        (formatdate(NOW + 90, usegmt=True), 90.0),  # IMF-fixdate
        (formatdate(NOW - 90, usegmt=True), 0.0),  # already past: go now
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 0.0),  # RFC 850, obsolete but allowed
        ("999999999", MAX_SECONDS),
        ("-1", None),
        ("soon", None),
        ("²", None),
        ("nan", None),
        ("inf", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=clock) == seconds


def test_header_lookup_is_case_insensitive() -> None:
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"Retry-After": "4"}) == 4.0
    assert retry_after({}) is None and retry_after(None) is None
