"""Standard Webhooks verification over the raw body, with secret rotation.

The signature scheme and its encoding come from the ``standardwebhooks`` package
(``Webhook.sign``). Its ``verify`` is not used directly because it checks one secret at a time,
fixes the tolerance at 5 minutes, and raises ValueError/UnicodeDecodeError on some malformed
headers and bodies; here every failure is one ``SignatureError``, so a sender gets 401, never 500.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


class SignatureError(Exception):
    """Forged, unsigned or stale: the request is rejected and nothing is stored."""


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value a sender puts on ``body`` (``v1,<base64>``)."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return Webhook(secret).sign(msg_id=msg_id, timestamp=when, data=body.decode("utf-8"))


def verify(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> str:
    """Check the request; returns the ``webhook-id``. Raises SignatureError otherwise."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id", "").strip()
    raw_ts = lowered.get("webhook-timestamp", "").strip()
    raw_sigs = lowered.get("webhook-signature", "").strip()
    if not (msg_id and raw_ts and raw_sigs):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if len(msg_id) > 255:
        raise SignatureError("webhook-id is longer than 255 characters")
    try:
        timestamp = int(raw_ts)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a Unix timestamp") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureError("webhook-timestamp is outside the allowed tolerance")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureError("body is not UTF-8, so it cannot carry a valid signature") from None

    offered = []
    for item in raw_sigs.split():
        version, _, value = item.partition(",")
        if version != "v1" or not value:
            continue
        try:
            offered.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not offered:
        raise SignatureError("no v1 signature in webhook-signature")

    when = datetime.fromtimestamp(timestamp, tz=UTC)
    for secret in secrets:
        try:
            expected_text = Webhook(secret).sign(msg_id=msg_id, timestamp=when, data=text)
        except (ValueError, binascii.Error):
            continue  # a corrupt stored secret must not hide a valid one
        expected = base64.b64decode(expected_text.split(",", 1)[1])
        # Compare against every offered signature without short-circuiting on a match position.
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return msg_id
    raise SignatureError("no signature matches")
