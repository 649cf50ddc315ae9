"""Standard Webhooks verification over the raw body, with secret rotation.

HMAC-SHA256 over ``{webhook-id}.{webhook-timestamp}.{raw body bytes}`` keyed with the base64
part of ``whsec_...``; signatures ``v1,<base64>``, several allowed. The ``standardwebhooks``
package's ``verify`` is not used: it checks one secret at a time, fixes the tolerance at 5
minutes, decodes the body as text (so an authentic but non-UTF-8 body could not even be
stored as "malformed"), and raises ValueError/UnicodeDecodeError on some malformed headers. Here
every failure is one ``SignatureError`` (401), and the tests check interoperability with the
package's ``sign`` and the specification's known-answer vector.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping, Sequence

from connector.trackers import Signature, SignatureRejected, SignedDelivery
from connector.validation import is_ascii_digits


class SignatureError(SignatureRejected):
    """Forged, unsigned or stale: the request is rejected and nothing is stored."""


def _key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    # Some senders drop the base64 padding; decoding is strict otherwise.
    return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value a sender puts on ``body`` (``v1,<base64>``)."""
    return "v1," + base64.b64encode(_signature(_key(secret), msg_id, timestamp, body)).decode()


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
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in msg_id):
        # Stored as the dedupe key: a NUL could not be (PostgreSQL), and no id needs one.
        raise SignatureError("webhook-id contains control characters")
    if not is_ascii_digits(raw_ts) or len(raw_ts) > 12:  # int() takes "1_7" and other digits
        raise SignatureError("webhook-timestamp is not a Unix timestamp")
    timestamp = int(raw_ts)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureError("webhook-timestamp is outside the allowed tolerance")
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

    for secret in secrets:
        try:
            expected = _signature(_key(secret), msg_id, timestamp, body)
        except (ValueError, binascii.Error):
            continue  # a corrupt stored secret must not hide a valid one
        # Compare against every offered signature in constant time.
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return msg_id
    raise SignatureError("no signature matches")


def verify_delivery(delivery: SignedDelivery) -> str:
    """A source's :class:`~connector.trackers.Signature` check with the workspace's secrets."""
    return verify(
        delivery.signing_secrets,
        delivery.headers,
        delivery.body,
        tolerance_seconds=delivery.tolerance_seconds,
    )


def signed_headers(secret: str, body: bytes, *, msg_id: str | None = None) -> dict[str, str]:
    """The headers a Standard Webhooks sender puts on ``body`` (a fresh id, now)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


# For a source whose sender signs with the workspace's secrets (Standard Webhooks).
STANDARD_WEBHOOKS = Signature(verify=verify_delivery, sign=signed_headers)
