"""What every tracker's HTTP client shares (``webhooks/<source>/client.py``).

Its errors, in plain words: the only exceptions that leave a client, so the source's poller,
connection and fill code decide by kind (try later, reconnect, refused) whichever tracker
answered. And its manners with the shared limiter (``connector.ratelimit``): wait for the
bucket's next slot, give up as ``Unavailable`` when a pause is longer than the caller may wait,
pause the whole bucket for a 429's ``Retry-After``, back off with jitter between attempts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from connector.providers.base import Throttled
from connector.retry_after import retry_after


class TrackerError(Exception):
    """A tracker call did not give a usable answer; ``message`` is in plain words."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status


class Unavailable(TrackerError):
    """Try again later: throttled (429), server error, timeout or a dropped connection."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ReconnectRequired(TrackerError):
    """The credential is revoked, expired for good or missing: an admin must reconnect."""


class Forbidden(TrackerError):
    """403: the connected user's role may not read what the connector needs."""


class NotFound(TrackerError):
    pass


class BadRequest(TrackerError):
    """4xx other than the above: our request was wrong (or named something since deleted)."""


class BadResponse(TrackerError):
    """A 2xx answer that is not JSON of the tracker's documented shape."""


class Limiter(Protocol):
    """``connector.ratelimit``'s shared limiter: spaces requests, and ``pause`` holds every
    process's requests to a bucket (raising ``Throttled`` from ``acquire`` while it lasts)."""

    def acquire(self, bucket: str, limits: tuple[tuple[int, float], ...]) -> None: ...

    def pause(self, bucket: str, seconds: float) -> None: ...


def default_sleep(seconds: float) -> None:
    """How a client waits between attempts (tests replace it to stay instant)."""
    time.sleep(seconds)


def backoff(attempt: int) -> float:
    """Seconds before retry ``attempt`` (1, 2, ...): doubling from 0.5 s to 30 s, with jitter so
    that the workers a failure met do not come back together."""
    return min(30.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)  # noqa: S311


def wait_for_slot(
    limiter: Limiter,
    bucket: str,
    limits: tuple[tuple[int, float], ...],
    *,
    max_wait_seconds: float,
    sleep: Callable[[float], None],
    throttled_message: str,
) -> None:
    """Wait for the bucket's next slot; a pause longer than we may wait is Unavailable."""
    while True:
        try:
            limiter.acquire(bucket, limits)
            return
        except Throttled as exc:
            wait = float(exc.retry_after or 1.0)
            if wait > max_wait_seconds:
                raise Unavailable(throttled_message, status=429, retry_after=wait) from None
            sleep(wait)


def pause_for_429(
    limiter: Limiter,
    bucket: str,
    headers: Mapping[str, str],
    *,
    default_wait: float,
    throttled_message: str,
) -> Unavailable:
    """A 429: the whole bucket (every process calling for that user or workspace) pauses for
    ``Retry-After`` (seconds or an HTTP date), not only this request."""
    wait = retry_after(headers)
    wait = default_wait if wait is None else wait
    limiter.pause(bucket, wait)
    return Unavailable(throttled_message, status=429, retry_after=wait)
