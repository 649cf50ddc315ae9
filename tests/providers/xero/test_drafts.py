"""Drafts at the wire, through the pipeline: a three-customer approval makes three DRAFT sales
invoices right to the cent, one call each; a timeout after Xero committed never makes a second
invoice; an archived contact, a currency the organisation lacks and a validation error are held
in plain words; a revoked grant waits for a reconnect and loses nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from connector import db, pipeline, worker
from connector.models import Draft, DraftStatus, Job, JobState, utcnow
from connector.providers.base import CurrencyMismatch, NewCustomer
from tests.helpers import THREE_CUSTOMERS, event
from tests.providers.xero.conftest import connect_store, map_client
from tests.providers.xero.fake_xero import FakeXero

EXPECTED = {"Globex Corporation": "265.84", "Initech": "856.58", "Umbrella Ltd": "202.00"}


def run_due_jobs() -> None:
    """The worker's next pass: every waiting job made due and run (no sleeping out backoffs)."""
    with db.session_scope() as s:
        due = list(s.scalars(select(Job).where(Job.state == JobState.PENDING)))
        for job in due:
            job.next_attempt_at = utcnow()
        ids = [job.id for job in due]
    for job_id in ids:
        worker.run_job(job_id)


def drafts() -> list[Draft]:
    db.session.expire_all()
    return list(db.session.scalars(select(Draft).order_by(Draft.customer_name)))


def map_three(workspace: Any, fake: FakeXero, currency: str = "USD") -> dict[str, str]:
    ids = {}
    for client_id, (name, email) in THREE_CUSTOMERS.items():
        ids[name] = fake.add_contact(name, currency=currency, email=email)
        map_client(workspace.id, client_id, ids[name], name, currency)
    return ids


def approve_three(workspace: Any, post_event: Any) -> None:
    response = post_event(
        workspace, event("timesheet_approved__three_customers", workspace_id="4242")
    )
    assert response.status_code == 202, response.get_json()


def test_three_customers_make_three_draft_invoices_right_to_the_cent(
    workspace: Any, post_event: Any, connected: Any, fake: FakeXero
):
    ids = map_three(workspace, fake)
    approve_three(workspace, post_event)

    invoices = {row["Contact"]["Name"]: row for row in fake.invoices_of()}
    assert {
        name: str(Decimal(str(inv["Total"])).quantize(Decimal("0.01")))
        for name, inv in invoices.items()
    } == EXPECTED
    for name, invoice in invoices.items():
        assert invoice["Type"] == "ACCREC" and invoice["Status"] == "DRAFT"
        assert invoice["Contact"]["ContactID"] == ids[name]
        assert invoice["CurrencyCode"] == "USD"
        assert invoice["Reference"].startswith("Timesheet ts_8f3a2c9e1b [tsi ")
        for line in invoice["LineItems"]:
            assert line["AccountCode"] == "200"
    rows = drafts()
    assert [r.status for r in rows] == [DraftStatus.DRAFTED] * 3
    for row in rows:
        invoice = invoices[row.customer_name]
        assert row.provider_id == invoice["InvoiceID"]
        assert Decimal(str(invoice["Total"])) == row.total
        assert row.provider_status == "draft"
        assert row.link and "InvoiceID=" + invoice["InvoiceID"] in row.link
    # Every create carried an Idempotency-Key derived from its draft key.
    creates = [h for m, p, h in fake.calls if m == "PUT" and p == "Invoices"]
    assert len(creates) == 3
    assert {h["idempotency-key"].split(":")[1] for h in creates} == {r.key for r in rows}


def test_one_call_per_draft_once_the_contacts_are_known(
    workspace: Any, post_event: Any, connected: Any, fake: FakeXero, xero_app: Any
):
    map_three(workspace, fake)
    approve_three(workspace, post_event)
    first = len(fake.calls)
    assert first == 3 + 1 + 3  # 3 contacts and the currencies, read once; 3 invoices

    second = event("timesheet_approved__three_customers", workspace_id="4242")
    second["data"]["timesheet"]["id"] = "ts_second"
    post_event(workspace, second)
    assert len(fake.calls) - first == 3  # the reads are cached: one PUT per draft


def test_a_timeout_after_xero_committed_never_makes_a_second_invoice(
    workspace: Any, post_event: Any, connected: Any, fake: FakeXero, xero_app: Any
):
    map_three(workspace, fake)
    fake.fail_next("PUT", "Invoices", "timeout-after-commit")
    approve_three(workspace, post_event)  # one create lost its answer: the job will retry
    assert len(fake.invoices_of()) == 3  # ... though Xero made the invoice
    assert [r.status for r in drafts()].count(DraftStatus.PENDING) == 1

    run_due_jobs()

    assert len(fake.invoices_of()) == 3
    rows = drafts()
    assert [r.status for r in rows] == [DraftStatus.DRAFTED] * 3
    # The lost one was looked up (by its Reference marker) before any second create.
    searches = [p for m, p, h in fake.calls if m == "GET" and p == "Invoices"]
    assert searches, "the unknown outcome was looked up"
    assert len([1 for m, p, _ in fake.calls if m == "PUT" and p == "Invoices"]) == 3


def test_an_archived_contact_is_held_in_plain_words(
    workspace: Any, post_event: Any, connected: Any, fake: FakeXero
):
    ids = map_three(workspace, fake)
    fake.contacts[ids["Initech"]]["ContactStatus"] = "ARCHIVED"
    approve_three(workspace, post_event)

    held = {r.customer_name: r for r in drafts()}["Initech"]
    assert held.status == DraftStatus.FAILED
    assert "Xero contact Initech is archived" in held.error
    assert "Restore it in Xero" in held.error
    assert len(fake.invoices_of()) == 2  # the others went through


def test_a_contact_archived_after_it_was_cached_is_read_again(
    workspace: Any, post_event: Any, connected: Any, fake: FakeXero
):
    ids = map_three(workspace, fake)
    approve_three(workspace, post_event)
    fake.contacts[ids["Umbrella Ltd"]]["ContactStatus"] = "ARCHIVED"  # in Xero, meanwhile

    second = event("timesheet_approved__three_customers", workspace_id="4242")
    second["data"]["timesheet"]["id"] = "ts_second"
    post_event(workspace, second)

    latest = [r for r in drafts() if r.customer_name == "Umbrella Ltd"][-1]
    assert latest.status == DraftStatus.FAILED
    assert "archived" in latest.error


def test_a_currency_the_organisation_lacks_is_held_in_plain_words(
    workspace: Any, post_event: Any, connected: Any, fake: FakeXero
):
    map_three(workspace, fake, currency="EUR")  # contacts without EUR in the organisation
    for row in fake.contacts.values():
        row.pop("DefaultCurrency")
    with db.session_scope() as s:
        from connector.models import Workspace

        ws = s.get(Workspace, workspace.id)
        ws.settings = {**(ws.settings or {}), "default_currency": "EUR"}
    event_doc = event("timesheet_approved__three_customers", workspace_id="4242")
    for rows in event_doc["data"]["timesheet"]["daily_breakdown"].values():
        for row in rows:
            if row.get("rate"):
                row["rate"]["currency"] = "EUR"
    post_event(workspace, event_doc)

    rows = drafts()
    assert {r.status for r in rows} == {DraftStatus.FAILED}
    assert "does not use EUR" in rows[0].error
    assert "Currencies" in rows[0].error
    assert fake.invoices_of() == []


def test_a_contact_locked_to_another_currency_is_a_currency_mismatch(provider: Any, fake: FakeXero):
    from datetime import date

    from connector.providers.base import DraftInvoice, DraftLine

    contact = fake.add_contact("Globex Corporation", currency="AUD")
    draft = DraftInvoice(
        key="ti-x",
        customer_id=contact,
        customer_name="Globex Corporation",
        currency="USD",
        lines=(DraftLine("x", Decimal(1), Decimal(10), Decimal(10)),),
        total=Decimal(10),
        memo="",
        private_note="",
        period_start=date(2026, 5, 4),
        period_end=date(2026, 5, 10),
        issue_date=date(2026, 5, 11),
    )
    try:
        provider.create_draft(draft)
    except CurrencyMismatch as exc:
        assert exc.customer_currency == "AUD"
    else:
        raise AssertionError("expected a currency mismatch")


def test_a_validation_error_is_held_in_plain_words(
    workspace: Any, post_event: Any, xero_app: Any, fake: FakeXero
):
    connect_store(workspace.id, xero_app, fake, account_code="999")  # no such account
    with db.session_scope() as s:
        from connector.models import Workspace

        s.get(Workspace, workspace.id).provider = "xero"
    map_three(workspace, fake)
    approve_three(workspace, post_event)
    rows = drafts()
    assert {r.status for r in rows} == {DraftStatus.FAILED}
    assert "Account code '999' is not a valid code" in rows[0].error


def test_a_revoked_grant_waits_for_a_reconnect_and_loses_nothing(
    workspace: Any, post_event: Any, connected: Any, fake: FakeXero, xero_app: Any
):
    map_three(workspace, fake)
    fake.expire_access_tokens()
    fake.revoke_refresh_tokens()
    approve_three(workspace, post_event)
    # The first draft met the refusal; the others wait behind it (nothing sent, nothing lost).
    assert {r.status for r in drafts()} <= {DraftStatus.RECONNECT_NEEDED, DraftStatus.PENDING}
    assert fake.invoices_of() == []

    connect_store(workspace.id, xero_app, fake)  # the admin reconnected
    pipeline.on_connection_restored(workspace.id)

    assert [r.status for r in drafts()] == [DraftStatus.DRAFTED] * 3
    assert len(fake.invoices_of()) == 3


def test_customers_are_listed_searched_and_created_with_their_currency(
    provider: Any, fake: FakeXero
):
    fake.add_contact("Globex Corporation", currency="USD", email="ap@globex.example")
    fake.add_contact("Old Client", status="ARCHIVED")
    fake.add_contact("Initech")
    page = provider.list_customers()
    assert [c.name for c in page.customers] == ["Globex Corporation", "Initech"]
    assert provider.list_customers(query="glob").customers[0].currency == "USD"

    created = provider.create_customer(
        NewCustomer("Umbrella Ltd", "finance@umbrella.example", "AUD", tracker_id="cl-umbrella")
    )
    assert created.currency == "AUD"
    row = fake.contacts[created.id]
    assert row["DefaultCurrency"] == "AUD" and row["ContactNumber"] == "tsi-cl-umbrella"


def test_creating_a_contact_that_exists_offers_to_link_it(provider: Any, fake: FakeXero):
    from connector.providers.base import DuplicateCustomer

    existing = fake.add_contact("Initech")
    try:
        provider.create_customer(NewCustomer("Initech"))
    except DuplicateCustomer as exc:
        assert exc.existing is not None and exc.existing.id == existing
    else:
        raise AssertionError("expected a duplicate")


def test_creating_a_contact_in_a_currency_the_organisation_lacks_says_so(
    provider: Any, fake: FakeXero
):
    from connector.providers.base import Rejected

    try:
        provider.create_customer(NewCustomer("Initech", currency="EUR"))
    except Rejected as exc:
        assert "does not use EUR" in exc.message
    else:
        raise AssertionError("expected a refusal")
    assert fake.contacts == {}


def test_an_organisation_disconnected_in_xero_waits_for_a_reconnect(
    workspace: Any, post_event: Any, connected: Any, fake: FakeXero, xero_app: Any
):
    map_three(workspace, fake)
    fake.disconnect_org()  # removed under Settings > Connected apps in Xero
    approve_three(workspace, post_event)
    assert {r.status for r in drafts()} <= {DraftStatus.RECONNECT_NEEDED, DraftStatus.PENDING}
    assert "Connected apps" in (connected.connection().last_error or "")
    assert fake.invoices_of() == []

    connect_store(workspace.id, xero_app, fake)  # connected again from the console
    pipeline.on_connection_restored(workspace.id)
    assert [r.status for r in drafts()] == [DraftStatus.DRAFTED] * 3


def test_an_access_token_expiring_mid_run_is_refreshed_once(
    workspace: Any, post_event: Any, connected: Any, fake: FakeXero
):
    map_three(workspace, fake)
    approve_three(workspace, post_event)
    fake.expire_access_tokens()  # the 30 minutes ran out between two approvals

    second = event("timesheet_approved__three_customers", workspace_id="4242")
    second["data"]["timesheet"]["id"] = "ts_second"
    post_event(workspace, second)

    assert fake.refreshes == 1
    assert len(fake.invoices_of()) == 6
