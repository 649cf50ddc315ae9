"""What Stripe answered, as the client reads it: headers, replays and key conflicts."""

from __future__ import annotations

from collections.abc import Mapping

from connector.providers.base import (
    Rejected,
    RetryLater,
)
from connector.retry_after import retry_after

DEFAULT_RETRY_AFTER = 2.0


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def wait_seconds(headers: Mapping[str, str] | None) -> float:
    wait = retry_after(headers)  # seconds or an HTTP date (connector.retry_after)
    return DEFAULT_RETRY_AFTER if wait is None else wait


class Replayed(RetryLater):
    """A 5xx Stripe replayed from its idempotency cache: retrying the same key cannot help."""


class KeyConflict(Rejected):
    """Stripe's idempotency_error: this key was first used with other parameters."""
