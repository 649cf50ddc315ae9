"""``POST /webhooks/quickbooks``: Intuit's signature, both payload shapes, then a batch read."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from connector import db
from connector.models import Delivery, Job
from tests.providers.qbo_fixtures import CONFIG, REALM, FakeQbo, connect_store
from tests.status_sync.conftest import (
    QBO_TOKEN,
    add_draft,
    draft,
    intuit_signature,
    provider_event,
)


@pytest.fixture
def fake(rsps: Any) -> FakeQbo:
    return FakeQbo(rsps)


@pytest.fixture
def qbo_ws(app: Any, workspace: Any, fake: FakeQbo) -> Any:
    app.config.update(CONFIG, QBO_WEBHOOK_VERIFIER_TOKEN=QBO_TOKEN)
    connect_store(workspace.id, app)
    return workspace


def add_invoice(fake: FakeQbo, id_: str, **fields: Any) -> None:
    fake.invoices[id_] = {
        "Id": id_,
        "SyncToken": "0",
        "DocNumber": f"10{id_}",
        "TotalAmt": 925.0,
        "Balance": 925.0,
        "EmailStatus": "NotSet",
        "PrivateNote": "Generated draft ...\ntsi-key: k",
        **fields,
    }


def post(client: Any, doc: Any, *, signature: str | None = None) -> Any:
    body = json.dumps(doc).encode()
    return client.post(
        "/webhooks/quickbooks",
        data=body,
        headers={"intuit-signature": signature or intuit_signature(body)},
        content_type="application/json",
    )


def count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_update_notification_reads_the_invoice_and_records_it_sent(
    client: Any, qbo_ws: Any, fake: FakeQbo
) -> None:
    add_invoice(fake, "301", EmailStatus="EmailSent")
    draft_id = add_draft(qbo_ws.id, "quickbooks", "301")

    res = post(client, provider_event("quickbooks", "invoice_update"))

    assert res.status_code == 200 and res.json["status"] == "accepted"
    assert draft(draft_id).provider_status == "sent"
    stored = db.session.scalars(select(Delivery)).one()
    assert stored.source == "quickbooks" and stored.event_type == "Invoice.Update"
    assert stored.status == "processed"
    assert fake.queries == ["SELECT * FROM Invoice WHERE Id IN ('301') MAXRESULTS 100"]


def test_cloudevents_shape_is_accepted_too(client: Any, qbo_ws: Any, fake: FakeQbo) -> None:
    add_invoice(fake, "301", Balance=425.0)  # a payment of 500 arrived
    draft_id = add_draft(qbo_ws.id, "quickbooks", "301")
    res = post(client, provider_event("quickbooks", "invoice_update__cloudevents"))
    assert res.json["status"] == "accepted"
    assert draft(draft_id).provider_status == "partially_paid"


@pytest.mark.parametrize(
    ("name", "invoice", "expected"),
    [
        # void_invoice.yml: every amount zeroed, "Voided" in the PrivateNote
        ("invoice_void", {"TotalAmt": 0, "Balance": 0, "PrivateNote": "Voided"}, "voided"),
        ("invoice_delete", None, "deleted"),
        ("invoice_emailed", {"EmailStatus": "EmailSent"}, "sent"),
        ("invoice_update", {"Balance": 0}, "paid"),
    ],
)
def test_each_operation_records_what_quickbooks_says_now(
    client: Any, qbo_ws: Any, fake: FakeQbo, name: str, invoice: Any, expected: str
) -> None:
    if invoice is not None:
        add_invoice(fake, "301", **invoice)
    draft_id = add_draft(qbo_ws.id, "quickbooks", "301")
    assert post(client, provider_event("quickbooks", name)).json["status"] == "accepted"
    assert draft(draft_id).provider_status == expected


@pytest.mark.parametrize("signature", ["AAAA", "not base64!", intuit_signature(b"{}")])
def test_forged_notifications_are_refused_and_nothing_is_stored(
    client: Any, qbo_ws: Any, fake: FakeQbo, signature: str
) -> None:
    add_draft(qbo_ws.id, "quickbooks", "301")
    res = post(client, provider_event("quickbooks", "invoice_update"), signature=signature)
    assert res.status_code == 401 and res.mimetype == "application/problem+json"
    assert count(Delivery) == 0 and count(Job) == 0 and fake.queries == []


def test_missing_signature_or_token_is_refused(app: Any, client: Any, qbo_ws: Any) -> None:
    body = json.dumps(provider_event("quickbooks", "invoice_update")).encode()
    assert client.post("/webhooks/quickbooks", data=body).status_code == 401
    app.config["QBO_WEBHOOK_VERIFIER_TOKEN"] = ""
    res = post(client, provider_event("quickbooks", "invoice_update"))
    assert res.status_code == 401 and "QBO_WEBHOOK_VERIFIER_TOKEN" in res.json["detail"]


def test_a_redelivered_notification_is_processed_once(
    client: Any, qbo_ws: Any, fake: FakeQbo
) -> None:
    add_invoice(fake, "301")
    add_draft(qbo_ws.id, "quickbooks", "301")
    doc = provider_event("quickbooks", "invoice_update")
    assert [post(client, doc).json["status"] for _ in range(2)] == ["accepted", "duplicate"]
    assert count(Delivery) == 1 and count(Job) == 1 and len(fake.queries) == 1


def test_notifications_without_invoices_are_acknowledged_and_ignored(
    client: Any, qbo_ws: Any, fake: FakeQbo
) -> None:
    res = post(client, provider_event("quickbooks", "customer_create__unsupported"))
    assert res.status_code == 200 and res.json["status"] == "ignored"
    assert count(Delivery) == 0


def test_a_company_nobody_connected_is_ignored(client: Any, qbo_ws: Any) -> None:
    doc = provider_event("quickbooks", "invoice_update")
    doc["eventNotifications"][0]["realmId"] = "4620816365999999999"
    res = post(client, doc)
    assert res.status_code == 200 and res.json["status"] == "ignored"
    assert count(Delivery) == 0


def test_an_invoice_that_is_not_ours_costs_no_read(client: Any, qbo_ws: Any, fake: FakeQbo) -> None:
    res = post(client, provider_event("quickbooks", "invoice_update"))  # invoice 301: no draft
    assert res.json["status"] == "accepted"
    assert fake.queries == []
    assert db.session.scalars(select(Delivery.error)).one() == (
        "no draft of this workspace is concerned"
    )


def test_authentic_garbage_is_a_400(client: Any, qbo_ws: Any) -> None:
    res = post(client, {"hello": "world"})
    assert res.status_code == 400 and res.mimetype == "application/problem+json"


def test_realm_of_the_notification_must_be_the_workspaces_company(
    client: Any, qbo_ws: Any, fake: FakeQbo
) -> None:
    # One notification may name several companies: each workspace reads only its own.
    add_invoice(fake, "301", EmailStatus="EmailSent")
    draft_id = add_draft(qbo_ws.id, "quickbooks", "301")
    doc = provider_event("quickbooks", "invoice_update")
    other = json.loads(json.dumps(doc["eventNotifications"][0]))
    other["realmId"] = "123"
    other["dataChangeEvent"]["entities"][0]["id"] = "999"
    doc["eventNotifications"].append(other)
    assert post(client, doc).json["status"] == "accepted"
    assert draft(draft_id).provider_status == "sent"
    assert fake.queries == ["SELECT * FROM Invoice WHERE Id IN ('301') MAXRESULTS 100"]
    assert REALM in fake.calls("GET", "query")[0].request.url
