"""Standard Webhooks verification, including the specification's known-answer vector."""

import pytest

from webhooks.signing import SignatureError, sign, verify

KAT_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KAT_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
KAT_TS = 1614265330
KAT_BODY = b'{"test": 2432232314}'
KAT_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(sig: str = KAT_SIG, ts: int = KAT_TS, msg_id: str = KAT_ID) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


def test_known_answer_vector_signs() -> None:
    assert sign(KAT_SECRET, KAT_ID, KAT_TS, KAT_BODY) == KAT_SIG


def test_known_answer_vector_verifies() -> None:
    assert verify([KAT_SECRET], headers(), KAT_BODY, now=KAT_TS + 10) == KAT_ID


def test_any_of_several_signatures_and_secrets_during_rotation() -> None:
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    offered = f"v1,AAAA v1a,zzz {KAT_SIG}"
    assert verify([other, KAT_SECRET], headers(offered), KAT_BODY, now=KAT_TS) == KAT_ID


@pytest.mark.parametrize(
    ("hdrs", "body", "now"),
    [
        (headers(), KAT_BODY + b" ", KAT_TS),  # body changed
        (headers(), KAT_BODY, KAT_TS + 301),  # stale
        (headers(), KAT_BODY, KAT_TS - 301),  # from the future
        (headers(sig="v1,"), KAT_BODY, KAT_TS),
        (headers(sig="nocomma"), KAT_BODY, KAT_TS),  # the library raises ValueError here
        (headers(sig="v1,!!!notbase64"), KAT_BODY, KAT_TS),
        (headers(sig="v2," + KAT_SIG[3:]), KAT_BODY, KAT_TS),  # unknown version only
        (headers(ts="yesterday"), KAT_BODY, KAT_TS),  # type: ignore[arg-type]
        ({}, KAT_BODY, KAT_TS),  # unsigned
        (headers(msg_id="x" * 256), KAT_BODY, KAT_TS),
    ],
)
def test_forged_unsigned_or_stale_is_one_error(hdrs: dict, body: bytes, now: int) -> None:
    with pytest.raises(SignatureError):
        verify([KAT_SECRET], hdrs, body, now=now)


def test_tolerance_is_configurable() -> None:
    assert verify([KAT_SECRET], headers(), KAT_BODY, now=KAT_TS + 500, tolerance_seconds=600)


def test_interoperates_with_the_standardwebhooks_package() -> None:
    from datetime import UTC, datetime

    from standardwebhooks import Webhook

    body = '{"type": "timesheet.approved", "emoji": "\u00e9t\u00e9"}'.encode()
    theirs = Webhook(KAT_SECRET).sign(
        msg_id="msg_1", timestamp=datetime.fromtimestamp(KAT_TS, tz=UTC), data=body.decode()
    )
    assert sign(KAT_SECRET, "msg_1", KAT_TS, body) == theirs
    assert verify([KAT_SECRET], headers(theirs, msg_id="msg_1"), body, now=KAT_TS)


def test_an_authentic_non_utf8_body_verifies_so_it_can_be_kept_as_malformed() -> None:
    body = b"\xff\xfe not json"
    sig = sign(KAT_SECRET, KAT_ID, KAT_TS, body)
    assert verify([KAT_SECRET], headers(sig), body, now=KAT_TS) == KAT_ID
