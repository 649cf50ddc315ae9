"""``Retry-After`` read one way for every provider and tracker (RFC 9110, section 10.2.3).

The header is either a number of seconds (``120``) or an HTTP date
(``Wed, 21 Oct 2026 07:28:00 GMT``). Both mean "not before then"; anything else (a negative
number, a word, a date that does not parse) is ignored, so the caller falls back to its own wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime

# Nobody should park a job for days because a proxy sent a silly value: cap what we honour.
MAX_SECONDS = 24 * 3600.0


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from ``value``; None when there is no usable value."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return min(float(text), MAX_SECONDS)
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:  # "1.5": not what RFC 9110 allows, but harmless to honour
        return min(seconds, MAX_SECONDS) if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # asctime and "-0000" dates: HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, when.timestamp() - now()), MAX_SECONDS)


def retry_after(headers: Mapping[str, str] | None, **kwargs: Callable[[], float]) -> float | None:
    """``parse_retry_after`` of a response's headers (any mapping; case-insensitive lookup)."""
    if not headers:
        return None
    value = headers.get("Retry-After")
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    return parse_retry_after(value, **kwargs)
