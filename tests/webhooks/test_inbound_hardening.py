"""Issue #20 items 2-5 at the receivers: rates in ASCII digits only, JSON nested without limit,
chunked bodies over the cap at the provider receivers, and Stripe signatures from the future."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from connector import db
from connector.models import Delivery, Draft, Job
from tests.helpers import event
from tests.status_sync.conftest import QBO_TOKEN, STRIPE_SECRET, intuit_signature, stripe_signature

ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))
# "34.50" in Arabic-Indic digits and "27.50" in full-width ones
OTHER_SCRIPT_RATES = ("\u0663\u0664.\u0665\u0660", "\uff12\uff17.\uff15\uff10")
APPROVED = "timesheet_approved__three_customers"
DEEP = 100_000


def count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def receivers(app: Any) -> Any:
    app.config.update(STRIPE_WEBHOOK_SECRET=STRIPE_SECRET, QBO_WEBHOOK_VERIFIER_TOKEN=QBO_TOKEN)
    return app


def _provider_post(client: Any, path: str, body: bytes, **kw: Any) -> Any:
    signature = (
        {"Stripe-Signature": stripe_signature(body, **kw)}
        if path == "/webhooks/stripe"
        else {"intuit-signature": intuit_signature(body)}
    )
    return client.post(path, data=body, headers=signature, content_type="application/json")


# --- item 2: the documented rate format is ASCII "27.50" ----------------------------------------
@pytest.mark.parametrize("amount", [*OTHER_SCRIPT_RATES, "2\u0667.50"])
def test_a_rate_in_another_scripts_digits_is_refused_naming_the_field(
    workspace: Any, post_event: Any, amount: str
) -> None:
    doc = event(APPROVED, workspace_id="4242")
    day = next(iter(doc["data"]["timesheet"]["daily_breakdown"]))
    doc["data"]["timesheet"]["daily_breakdown"][day][0]["rate"]["amount"] = amount
    response = post_event(workspace, doc)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.json["field"].endswith("/rate/amount")
    assert count(Job) == 0 and count(Draft) == 0


@pytest.mark.parametrize("day", ["\u0662\u0660\u0662\u0666-11-16", "2026-11-1\uff16"])
def test_dates_in_another_scripts_digits_are_refused(
    workspace: Any, post_event: Any, day: str
) -> None:
    doc = event(APPROVED, workspace_id="4242")
    doc["data"]["timesheet"]["date_from"] = day
    response = post_event(workspace, doc)
    assert response.status_code == 422
    assert response.json["field"] == "/data/timesheet/date_from"


def test_no_pattern_in_the_event_schema_uses_a_unicode_digit_class() -> None:
    from webhooks.webwork.events import SCHEMA_PATH

    assert "\\d" not in SCHEMA_PATH.read_text()


# --- item 3: JSON nested 100,000 deep is a 400, wherever it arrives -------------------------
@pytest.mark.parametrize("path", ["/webhooks/stripe", "/webhooks/quickbooks"])
def test_signed_events_nested_deeply_are_a_400_at_the_provider_receivers(
    receivers: Any, client: Any, path: str
) -> None:
    body = b'{"id": "evt_1", "type": "invoice.paid", "data": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    response = _provider_post(client, path, body)
    assert response.status_code == 400, response.status_code
    assert response.mimetype == "application/problem+json"
    assert count(Delivery) == 0


def test_a_deep_event_at_the_tracker_receiver_is_a_400(workspace: Any, post_event: Any) -> None:
    response = post_event(workspace, b"[" * DEEP + b"]" * DEEP)
    assert response.status_code == 400


def test_a_deep_api_body_is_a_400(client: Any, workspace: Any) -> None:
    body = '{"name": ' + "[" * DEEP + "]" * DEEP + "}"
    response = client.post(
        "/api/v1/tokens", data=body, headers=workspace.auth, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json["type"].endswith("malformed-body")


def test_a_stored_deep_delivery_shows_as_text_in_the_console(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    post_event(workspace, b"[" * DEEP + b"]" * DEEP)  # kept as an invalid delivery
    delivery_id = db.session.scalar(select(Delivery.id))
    page = admin_client.get(f"/workspaces/{workspace.id}/deliveries/{delivery_id}")
    assert page.status_code == 200


# --- item 4: chunked bodies over the cap get 413 at the provider receivers too ----------------
@pytest.mark.parametrize("path", ["/webhooks/stripe", "/webhooks/quickbooks"])
def test_oversized_chunked_bodies_are_413_not_401_at_the_provider_receivers(
    receivers: Any, client: Any, path: str
) -> None:
    receivers.config["MAX_CONTENT_LENGTH"] = receivers.config["WEBHOOK_MAX_BODY_BYTES"] = 1000
    body = b'{"id": "evt_1", "pad": "' + b"x" * 5000 + b'"}'
    headers = (
        {"Stripe-Signature": stripe_signature(body)}
        if path == "/webhooks/stripe"
        else {"intuit-signature": intuit_signature(body)}
    )
    response = client.post(
        path,
        input_stream=io.BytesIO(body),
        headers={**headers, "Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413, response.status_code
    assert response.mimetype == "application/problem+json"
    assert count(Delivery) == 0


def test_chunked_bodies_under_the_cap_still_arrive_whole(receivers: Any, client: Any) -> None:
    body = json.dumps({"eventNotifications": []}).encode()
    response = client.post(
        "/webhooks/quickbooks",
        input_stream=io.BytesIO(body),
        headers={
            "intuit-signature": intuit_signature(body),
            "Transfer-Encoding": "chunked",
            "Content-Type": "application/json",
        },
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 200, response.get_data(as_text=True)


# --- item 5: Stripe's tolerance holds both ways ---------------------------------------------
@pytest.mark.parametrize("ahead", [301, 600, 365 * 24 * 3600])
def test_stripe_signatures_dated_in_the_future_are_refused(
    receivers: Any, client: Any, ahead: int
) -> None:
    body = json.dumps({"id": "evt_future", "type": "customer.created"}).encode()
    response = _provider_post(client, "/webhooks/stripe", body, timestamp=int(time.time()) + ahead)
    assert response.status_code == 401, ahead
    assert "timestamp" in response.json["detail"]


@pytest.mark.parametrize("offset", [-250, 0, 250])
def test_stripe_signatures_within_the_tolerance_pass(
    receivers: Any, client: Any, offset: int
) -> None:
    body = json.dumps({"id": "evt_now", "type": "customer.created"}).encode()
    response = _provider_post(client, "/webhooks/stripe", body, timestamp=int(time.time()) + offset)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["status"] == "ignored"


def test_stripe_timestamps_in_other_digits_are_refused(receivers: Any, client: Any) -> None:
    body = json.dumps({"id": "evt_x", "type": "customer.created"}).encode()
    now = str(int(time.time())).translate(ARABIC_INDIC)
    header = stripe_signature(body).split(",", 1)[1]
    response = client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": f"t={now},{header}"},
        content_type="application/json",
    )
    assert response.status_code == 401
