"""Status sync from Xero: the webhook (x-xero-signature, intent-to-receive 200/401, stored first,
a job reads the invoice) and the periodic reconcile, into the drafts' provider_status."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connector import db, status_sync
from connector.models import Delivery, Draft
from connector.providers.xero import events
from connector.providers.xero.events import sign
from tests.consolidation.helpers import approval
from tests.providers.xero import fake_xero_api
from tests.providers.xero.conftest import map_client
from tests.providers.xero.fake_xero import CONFIG, FakeXero

FIXTURES = Path(events.__file__).resolve().parent / "fixtures"
KEY = CONFIG["XERO_WEBHOOK_KEY"]


def fixture(name: str, tenant: str, invoice_id: str = "") -> bytes:
    text = (FIXTURES / f"{name}.json").read_text()
    text = text.replace("a3c2b1f0-8d6e-4f1a-9b2c-0d1e2f3a4b5c", tenant)
    return text.replace("INVOICE_ID", invoice_id).encode()


def deliver(client: Any, body: bytes, signature: str | None = None) -> Any:
    return client.post(
        "/webhooks/xero",
        data=body,
        headers={
            "x-xero-signature": sign(KEY, body) if signature is None else signature,
            "content-type": "application/json",
        },
    )


@pytest.fixture
def drafted(workspace: Any, post_event: Any, connected: Any, fake: FakeXero) -> str:
    contact = fake.add_contact("Acme Corp", currency="USD")
    map_client(workspace.id, "cl-acme", contact, "Acme Corp", "USD")
    from datetime import date

    post_event(workspace, approval("ts-1", "u-ada", {date(2026, 11, 23): 120}))
    (invoice,) = fake.invoices_of()
    return str(invoice["InvoiceID"])


def status_of(invoice_id: str) -> str | None:
    db.session.expire_all()
    return db.session.scalar(select(Draft.provider_status).where(Draft.provider_id == invoice_id))


def test_intent_to_receive_is_200_when_signed_and_401_otherwise(client: Any, xero_app: Any):
    body = fixture("intent_to_receive", "x")
    good = deliver(client, body)
    assert good.status_code == 200 and good.data == b""
    bad = deliver(client, body, signature=sign("not-the-key", body))
    assert bad.status_code == 401 and bad.data == b""
    assert deliver(client, body, signature="").status_code == 401
    assert deliver(client, body, signature="%%%not-base64").status_code == 401


def test_without_a_webhook_key_every_delivery_is_refused(client: Any, app: Any):
    app.config["XERO_WEBHOOK_KEY"] = None
    body = fixture("intent_to_receive", "x")
    assert deliver(client, body).status_code == 401


def test_a_signed_invoice_event_updates_the_drafts_provider_status(
    client: Any, drafted: str, fake: FakeXero
):
    fake_xero_api.approve(fake, drafted)
    body = fixture("invoice_update", fake.tenant, drafted)

    response = deliver(client, body)

    assert response.status_code == 200
    assert status_of(drafted) == "sent"
    (delivery,) = db.session.scalars(select(Delivery).where(Delivery.source == "xero"))
    assert delivery.status == "processed"
    assert delivery.headers.get("x-xero-signature")

    fake_xero_api.pay(fake, drafted, Decimal("10"))
    deliver(client, fixture("invoice_create", fake.tenant, drafted))
    assert status_of(drafted) == "partially_paid"


def test_a_redelivered_event_is_stored_once(client: Any, drafted: str, fake: FakeXero):
    body = fixture("invoice_update", fake.tenant, drafted)
    deliver(client, body)
    deliver(client, body)
    assert len(list(db.session.scalars(select(Delivery).where(Delivery.source == "xero")))) == 1


def test_a_forged_event_stores_nothing(client: Any, drafted: str, fake: FakeXero):
    body = fixture("invoice_update", fake.tenant, drafted)
    assert deliver(client, body, signature=sign("wrong", body)).status_code == 401
    assert list(db.session.scalars(select(Delivery).where(Delivery.source == "xero"))) == []


def test_events_of_other_organisations_and_contacts_are_ignored(
    client: Any, drafted: str, fake: FakeXero
):
    assert deliver(client, fixture("invoice_update", "other-tenant", drafted)).status_code == 200
    assert deliver(client, fixture("contact_update", fake.tenant)).status_code == 200
    assert list(db.session.scalars(select(Delivery).where(Delivery.source == "xero"))) == []


def test_an_unreadable_signed_body_is_a_400_problem(client: Any, xero_app: Any):
    body = b"[1, 2"
    response = deliver(client, body)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = json.dumps({"no": "events"}).encode()
    assert deliver(client, body).status_code == 400


def test_the_reconcile_reads_open_drafts_in_one_call(
    workspace: Any, drafted: str, fake: FakeXero, xero_app: Any
):
    fake_xero_api.pay(fake, drafted, Decimal("55"))  # paid in full, no webhook
    calls = len(fake.calls)

    read = status_sync.reconcile_workspace(workspace.id, xero_app.config)

    assert read == {"xero": 1}
    assert status_of(drafted) == "paid"
    (call,) = fake.calls[calls:]
    assert call[0] == "GET" and call[1] == "Invoices"


def test_an_invoice_deleted_in_xero_reads_as_deleted(
    workspace: Any, drafted: str, fake: FakeXero, xero_app: Any
):
    fake.invoices[drafted]["Status"] = "DELETED"
    status_sync.reconcile_workspace(workspace.id, xero_app.config)
    assert status_of(drafted) == "deleted"


def test_a_signed_body_nested_too_deep_is_a_400_and_stores_nothing(client: Any, xero_app: Any):
    body = b'{"events": ' + b"[" * 200 + b"]" * 200 + b"}"
    response = deliver(client, body)
    assert response.status_code == 400
    assert list(db.session.scalars(select(Delivery).where(Delivery.source == "xero"))) == []
