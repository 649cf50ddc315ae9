"""``POST /webhooks/stripe``: verified with the SDK, stored first, synced by a job, never twice."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from connector import db
from connector.connections.store import DbCredentialStore, secret_box
from connector.models import Delivery, Job
from tests.app_fixtures import load_fixture
from tests.status_sync.conftest import (
    STRIPE_SECRET,
    add_draft,
    draft,
    provider_event,
    stripe_signature,
)

API = "https://api.stripe.com"
INVOICE = "in_1QTest"
ACCOUNT = "acct_1Connected"


@pytest.fixture
def stripe_ws(app: Any, workspace: Any) -> Any:
    app.config["STRIPE_WEBHOOK_SECRET"] = STRIPE_SECRET
    app.config["STRIPE_PLATFORM_SECRET_KEY"] = "sk_test_platformKeyForTests1234"
    store = DbCredentialStore(workspace.id, "stripe", secret_box(app.config))
    # Connect: the platform key acts on the connected account.
    store.connect(
        {"method": "oauth", "stripe_user_id": ACCOUNT},
        account_id=ACCOUNT,
        environment="test",
    )
    return workspace


def invoice(status: str, **changes: Any) -> dict[str, Any]:
    body = load_fixture("stripe", "invoice__open.json")
    body.update(status=status, **changes)
    return body


def post(client: Any, doc: dict[str, Any], **kw: Any) -> Any:
    body = json.dumps(doc).encode()
    headers = {"Stripe-Signature": kw.pop("signature", None) or stripe_signature(body)}
    return client.post(
        "/webhooks/stripe", data=body, headers=headers, content_type="application/json"
    )


def count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def retrieves(rsps: Any) -> list[Any]:
    return [c for c in rsps.calls if c.request.url.startswith(f"{API}/v1/invoices/{INVOICE}")]


def test_signed_connect_event_is_stored_then_the_invoice_read_and_recorded(
    client: Any, stripe_ws: Any, rsps: Any
) -> None:
    draft_id = add_draft(stripe_ws.id, "stripe", INVOICE)
    rsps.get(f"{API}/v1/invoices/{INVOICE}", json=invoice("paid", amount_paid=4584))

    res = post(client, provider_event("stripe", "invoice_paid__connect"))

    assert res.status_code == 200, res.json
    assert res.json["status"] == "accepted"
    stored = db.session.scalars(select(Delivery)).one()
    assert (stored.source, stored.webhook_id, stored.event_type) == (
        "stripe",
        "evt_1QPaidConnect",
        "invoice.paid",
    )
    assert stored.status == "processed"
    row = draft(draft_id)
    assert row.provider_status == "paid" and row.provider_status_at is not None
    assert row.status == "drafted"  # our own lifecycle is not the provider's
    # The job read the invoice on the connected account, not on the platform.
    assert retrieves(rsps)[0].request.headers["Stripe-Account"] == ACCOUNT


@pytest.mark.parametrize(
    ("name", "stripe_invoice", "expected"),
    [
        ("invoice_finalized", invoice("open"), "sent"),
        ("invoice_sent", invoice("open", amount_paid=1000), "partially_paid"),
        ("invoice_voided", invoice("void"), "voided"),
        ("invoice_marked_uncollectible", invoice("uncollectible"), "uncollectible"),
    ],
)
def test_each_invoice_event_records_what_stripe_says_now(
    client: Any, stripe_ws: Any, rsps: Any, name: str, stripe_invoice: Any, expected: str
) -> None:
    draft_id = add_draft(stripe_ws.id, "stripe", INVOICE)
    rsps.get(f"{API}/v1/invoices/{INVOICE}", json=stripe_invoice)
    doc = provider_event("stripe", name) | {"account": ACCOUNT}
    assert post(client, doc).json["status"] == "accepted"
    assert draft(draft_id).provider_status == expected


def test_deleted_draft_is_recorded_as_deleted(client: Any, stripe_ws: Any, rsps: Any) -> None:
    draft_id = add_draft(stripe_ws.id, "stripe", INVOICE)
    rsps.get(
        f"{API}/v1/invoices/{INVOICE}",
        status=404,
        json=load_fixture("stripe", "error__missing_invoice.json"),
    )
    doc = provider_event("stripe", "invoice_deleted") | {"account": ACCOUNT}
    assert post(client, doc).json["status"] == "accepted"
    assert draft(draft_id).provider_status == "deleted"


def test_an_event_read_late_never_overwrites_a_newer_read(
    client: Any, stripe_ws: Any, rsps: Any
) -> None:
    # Events arrive out of order (finalized after paid): the job reads the invoice, so the
    # recorded state is Stripe's current one whatever the event's type.
    draft_id = add_draft(stripe_ws.id, "stripe", INVOICE)
    rsps.get(f"{API}/v1/invoices/{INVOICE}", json=invoice("paid"))
    post(client, provider_event("stripe", "invoice_paid") | {"account": ACCOUNT})
    post(client, provider_event("stripe", "invoice_finalized") | {"account": ACCOUNT})
    assert draft(draft_id).provider_status == "paid"


@pytest.mark.parametrize(
    "signature",
    [
        "t=1,v1=deadbeef",  # forged
        stripe_signature(b"{}"),  # signed, but for another body
        "garbage",
        "",  # missing
    ],
)
def test_forged_or_unsigned_events_are_refused_and_nothing_is_stored(
    client: Any, stripe_ws: Any, rsps: Any, signature: str
) -> None:
    add_draft(stripe_ws.id, "stripe", INVOICE)
    body = json.dumps(provider_event("stripe", "invoice_paid__connect")).encode()
    res = client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": signature} if signature else {},
        content_type="application/json",
    )
    assert res.status_code == 401
    assert res.mimetype == "application/problem+json"
    assert count(Delivery) == 0 and count(Job) == 0 and len(rsps.calls) == 0


def test_signed_with_another_secret_or_too_old_is_refused(client: Any, stripe_ws: Any) -> None:
    doc = provider_event("stripe", "invoice_paid__connect")
    body = json.dumps(doc).encode()
    other = stripe_signature(body, secret="whsec_someone_else")
    stale = stripe_signature(body, timestamp=int(time.time()) - 3600)
    for signature in (other, stale):
        assert post(client, doc, signature=signature).status_code == 401
    assert count(Delivery) == 0


def test_without_a_configured_secret_nothing_is_accepted(app: Any, client: Any, stripe_ws: Any):
    app.config["STRIPE_WEBHOOK_SECRET"] = None
    res = post(client, provider_event("stripe", "invoice_paid__connect"))
    assert res.status_code == 401
    assert "STRIPE_WEBHOOK_SECRET" in res.json["detail"]


def test_a_rolled_secret_keeps_working_while_both_are_configured(
    app: Any, client: Any, stripe_ws: Any, rsps: Any
) -> None:
    app.config["STRIPE_WEBHOOK_SECRET"] = f"whsec_new_one, {STRIPE_SECRET}"
    add_draft(stripe_ws.id, "stripe", INVOICE)
    rsps.get(f"{API}/v1/invoices/{INVOICE}", json=invoice("paid"))
    assert post(client, provider_event("stripe", "invoice_paid__connect")).status_code == 200


def test_a_redelivered_event_is_acknowledged_and_processed_once(
    client: Any, stripe_ws: Any, rsps: Any
) -> None:
    add_draft(stripe_ws.id, "stripe", INVOICE)
    rsps.get(f"{API}/v1/invoices/{INVOICE}", json=invoice("paid"))
    doc = provider_event("stripe", "invoice_paid__connect")
    first, again = post(client, doc), post(client, doc)
    assert (first.json["status"], again.json["status"]) == ("accepted", "duplicate")
    assert again.status_code == 200
    assert count(Delivery) == 1 and count(Job) == 1
    assert len(retrieves(rsps)) == 1


def test_unknown_event_types_are_acknowledged_and_ignored(
    client: Any, stripe_ws: Any, rsps: Any
) -> None:
    doc = provider_event("stripe", "customer_created__unsupported") | {"account": ACCOUNT}
    res = post(client, doc)
    assert res.status_code == 200 and res.json["status"] == "ignored"
    assert count(Delivery) == 0 and count(Job) == 0 and len(rsps.calls) == 0


def test_events_of_an_account_nobody_connected_are_ignored(client: Any, stripe_ws: Any) -> None:
    doc = provider_event("stripe", "invoice_paid") | {"account": "acct_someone_else"}
    res = post(client, doc)
    assert res.status_code == 200 and res.json["status"] == "ignored"
    assert count(Delivery) == 0


def test_account_selects_every_workspace_connected_to_it(
    app: Any, client: Any, stripe_ws: Any, make_workspace: Any, rsps: Any
) -> None:
    other = make_workspace(tracker_workspace_id="77")
    DbCredentialStore(other.id, "stripe", secret_box(app.config)).connect(
        {"method": "oauth", "stripe_user_id": ACCOUNT}, account_id=ACCOUNT, environment="test"
    )
    mine, theirs = add_draft(stripe_ws.id, "stripe", INVOICE), add_draft(other.id, "stripe", "in_2")
    rsps.get(f"{API}/v1/invoices/{INVOICE}", json=invoice("paid"))
    res = post(client, provider_event("stripe", "invoice_paid__connect"))
    assert len(res.json["delivery_ids"]) == 2  # stored per workspace
    assert draft(mine).provider_status == "paid"
    assert draft(theirs).provider_status == "draft"  # not its invoice: not read, not changed
    assert len(retrieves(rsps)) == 1


def test_event_of_the_deployments_own_account_finds_the_workspace_by_invoice(
    app: Any, client: Any, workspace: Any, rsps: Any
) -> None:
    app.config["STRIPE_WEBHOOK_SECRET"] = STRIPE_SECRET
    DbCredentialStore(workspace.id, "stripe", secret_box(app.config)).connect(
        {"method": "api_key", "api_key": "rk_test_51TestKeyForTheConnectorabcd"},
        account_id=None,
        environment="test",
    )
    draft_id = add_draft(workspace.id, "stripe", INVOICE)
    rsps.get(f"{API}/v1/invoices/{INVOICE}", json=invoice("void"))
    res = post(client, provider_event("stripe", "invoice_voided"))  # no "account"
    assert res.json["status"] == "accepted"
    assert draft(draft_id).provider_status == "voided"


def test_authentic_but_malformed_body_is_a_400(client: Any, stripe_ws: Any) -> None:
    body = b"not json at all"
    res = client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": stripe_signature(body)},
        content_type="application/json",
    )
    assert res.status_code == 400 and res.mimetype == "application/problem+json"
    assert count(Delivery) == 0


def test_non_utf8_body_is_refused_not_a_500(client: Any, stripe_ws: Any) -> None:
    res = client.post(
        "/webhooks/stripe", data=b"\xff\xfe", headers={"Stripe-Signature": "t=1,v1=00"}
    )
    assert res.status_code == 401


def test_replaying_a_stored_event_from_the_console_syncs_again(
    client: Any, stripe_ws: Any, rsps: Any
) -> None:
    from webhooks.inbox import replay_delivery

    draft_id = add_draft(stripe_ws.id, "stripe", INVOICE)
    rsps.get(f"{API}/v1/invoices/{INVOICE}", json=invoice("open"))
    post(client, provider_event("stripe", "invoice_paid__connect"))
    assert draft(draft_id).provider_status == "sent"
    rsps.replace("GET", f"{API}/v1/invoices/{INVOICE}", json=invoice("paid"))
    delivery_id = db.session.scalars(select(Delivery.id)).one()
    assert replay_delivery(stripe_ws.id, delivery_id) is not None
    assert draft(draft_id).provider_status == "paid"
    kinds = set(db.session.scalars(select(Job.kind)))
    assert kinds == {"sync_provider_event"}


# --- a key-connected workspace's own endpoint (secret saved by its admin) -----------------------
WS_SECRET = "whsec_workspaceOwnSecret1234"


@pytest.fixture
def key_ws(app: Any, workspace: Any) -> Any:
    DbCredentialStore(workspace.id, "stripe", secret_box(app.config)).connect(
        {"method": "api_key", "api_key": "rk_test_51TestKeyForTheConnectorabcd"},
        account_id=None,
        environment="test",
        meta={"method": "api_key"},
    )
    return workspace


def save_secret(admin_client: Any, workspace: Any, secret: str) -> Any:
    from tests.app_fixtures import csrf_token

    return admin_client.post(
        f"/workspaces/{workspace.id}/connections/stripe/webhook-secret",
        data={"csrf_token": csrf_token(admin_client), "webhook_secret": secret},
    )


def test_admin_saves_the_secret_and_the_workspace_endpoint_accepts_its_events(
    admin_client: Any, client: Any, key_ws: Any, rsps: Any
) -> None:
    page = admin_client.get(f"/workspaces/{key_ws.id}/connections").data.decode()
    url = f"http://invoicer.test/webhooks/stripe/{key_ws.endpoint_token}"
    assert url in page and "Save signing secret" in page

    draft_id = add_draft(key_ws.id, "stripe", INVOICE)
    rsps.get(f"{API}/v1/invoices/{INVOICE}", json=invoice("paid"))
    body = json.dumps(provider_event("stripe", "invoice_paid")).encode()
    path = f"/webhooks/stripe/{key_ws.endpoint_token}"

    def send(secret: str) -> Any:
        sig = stripe_signature(body, secret=secret)
        return client.post(path, data=body, headers={"Stripe-Signature": sig})

    assert send(WS_SECRET).status_code == 401  # nothing saved yet
    assert save_secret(admin_client, key_ws, "sk_test_not_a_secret").status_code == 302
    assert save_secret(admin_client, key_ws, WS_SECRET).status_code == 302
    page = admin_client.get(f"/workspaces/{key_ws.id}/connections").data.decode()
    assert "whsec_…1234" in page and WS_SECRET not in page

    assert send(STRIPE_SECRET).status_code == 401  # the app's secret is not this endpoint's
    res = send(WS_SECRET)
    assert res.status_code == 200 and res.json["status"] == "accepted"
    assert draft(draft_id).provider_status == "paid"
    meta = DbCredentialStore(key_ws.id, "stripe", secret_box(client.application.config)).meta()
    assert WS_SECRET not in json.dumps(meta)  # encrypted at rest


def test_unknown_workspace_endpoint_is_a_404(client: Any) -> None:
    res = client.post("/webhooks/stripe/nope", data=b"{}", headers={"Stripe-Signature": "t=1"})
    assert res.status_code == 404


def test_webwork_receiver_is_not_shadowed_by_the_stripe_route(
    client: Any, workspace: Any, post_event: Any
) -> None:
    from tests.helpers import event

    assert post_event(workspace, event("timesheet_approved__three_customers")).status_code == 202


def test_key_rotation_reencrypts_the_saved_webhook_secret(
    app: Any, client: Any, key_ws: Any, rsps: Any
) -> None:
    from cryptography.fernet import Fernet

    from connector.providers.stripe.connect import META_WEBHOOK_SECRET

    store = DbCredentialStore(key_ws.id, "stripe", secret_box(app.config))
    store.update_meta(**{META_WEBHOOK_SECRET: secret_box(app.config).encrypt_json(WS_SECRET)})
    new_key = Fernet.generate_key().decode()
    app.config["TOKEN_ENCRYPTION_KEYS"] = [new_key, *app.config["TOKEN_ENCRYPTION_KEYS"]]
    res = app.test_cli_runner().invoke(args=["secrets", "reencrypt"])
    assert res.exit_code == 0, res.output
    app.config["TOKEN_ENCRYPTION_KEYS"] = [new_key]  # the old key is gone now

    add_draft(key_ws.id, "stripe", INVOICE)
    rsps.get(f"{API}/v1/invoices/{INVOICE}", json=invoice("paid"))
    body = json.dumps(provider_event("stripe", "invoice_paid")).encode()
    res = client.post(
        f"/webhooks/stripe/{key_ws.endpoint_token}",
        data=body,
        headers={"Stripe-Signature": stripe_signature(body, secret=WS_SECRET)},
    )
    assert res.status_code == 200, res.json


def test_an_oversized_body_is_refused_before_anything_is_stored(
    app: Any, client: Any, stripe_ws: Any
) -> None:
    body = b'{"id": "evt_big", "pad": "' + b"x" * app.config["WEBHOOK_MAX_BODY_BYTES"] + b'"}'
    res = client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": stripe_signature(body)},
        content_type="application/json",
    )
    assert res.status_code == 413 and res.mimetype == "application/problem+json"
    assert count(Delivery) == 0
