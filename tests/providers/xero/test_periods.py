"""per_period at the Xero wire: one DRAFT invoice per customer and week, each approval's lines
appended (tagged with its marker) and a withdrawn approval's lines removed; a withdrawn
approval's unsent draft deleted; an approved (AUTHORISED) one left alone and flagged."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from connector import db
from connector.models import DraftStatus, Workspace
from connector.providers.xero import payloads
from tests.consolidation.helpers import (
    approval,
    draft_rows,
    period_invoices,
    set_consolidation,
    withdrawal,
)
from tests.providers.xero import fake_xero_api
from tests.providers.xero.conftest import map_client
from tests.providers.xero.fake_xero import FakeXero


def day(n: int) -> date:
    return date(2026, 11, 23 + n)


@pytest.fixture
def acme(workspace: Any, connected: Any, fake: FakeXero) -> str:
    contact = fake.add_contact("Acme Corp", currency="USD")
    map_client(workspace.id, "cl-acme", contact, "Acme Corp", "USD")
    return contact


def amounts(invoice: dict[str, Any]) -> list[Decimal]:
    return [Decimal(str(line["LineAmount"])) for line in invoice["LineItems"]]


def test_a_week_of_three_approvals_is_one_draft_invoice(
    workspace: Any, post_event: Any, acme: str, fake: FakeXero
):
    set_consolidation(workspace.id)
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60, day(1): 120}))
    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))
    post_event(workspace, approval("ts-3", "u-ada", {day(3): 90}, rate="30.00"))

    (invoice,) = fake.invoices_of()
    assert invoice["Status"] == "DRAFT"
    assert amounts(invoice) == [Decimal("82.5"), Decimal("13.75"), Decimal("45")]
    assert Decimal(str(invoice["Total"])) == Decimal("141.25")
    assert invoice["Reference"].startswith("Hours worked 2026-11-23 to 2026-11-29 [tsi ")
    rows = draft_rows()
    assert [r.status for r in rows] == ["drafted"] * 3
    assert {r.provider_id for r in rows} == {invoice["InvoiceID"]}
    for row, line in zip(rows, invoice["LineItems"], strict=True):
        assert payloads.has_marker(line["Description"], row.key)
    assert "Bob Babbage" in invoice["LineItems"][1]["Description"]
    # Appends sent the earlier lines back by LineItemID (Xero deletes lines left out).
    updates = [h for m, p, h in fake.calls if m == "POST" and p.startswith("Invoices/")]
    assert len(updates) == 2 and all(h.get("idempotency-key") for h in updates)


def test_a_withdrawn_approval_takes_only_its_lines_off(
    workspace: Any, post_event: Any, acme: str, fake: FakeXero
):
    set_consolidation(workspace.id)
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))
    post_event(workspace, approval("ts-3", "u-ada", {day(3): 90}))

    post_event(workspace, withdrawal("ts-2"))

    (invoice,) = fake.invoices_of()
    assert amounts(invoice) == [Decimal("27.5"), Decimal("41.25")]
    assert [r.status for r in draft_rows()] == ["drafted", "voided", "drafted"]

    post_event(workspace, withdrawal("ts-1"))
    post_event(workspace, withdrawal("ts-3"))
    assert fake.invoices_of() == []  # the last lines withdrawn: the unsent draft is deleted
    assert [p.status for p in period_invoices()] == ["voided"]


def test_a_withdrawn_approvals_unsent_draft_is_deleted(
    workspace: Any, post_event: Any, acme: str, fake: FakeXero
):
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    (invoice,) = fake.invoices_of()
    post_event(workspace, withdrawal("ts-1"))
    assert fake.invoices[invoice["InvoiceID"]]["Status"] == "DELETED"
    (row,) = draft_rows()
    assert row.status == DraftStatus.VOIDED and row.provider_status == "deleted"


def test_an_approved_invoice_is_left_alone_and_flagged(
    workspace: Any, post_event: Any, acme: str, fake: FakeXero
):
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    (invoice,) = fake.invoices_of()
    fake_xero_api.approve(fake, invoice["InvoiceID"])  # finance approved it in Xero

    post_event(workspace, withdrawal("ts-1"))

    assert fake.invoices[invoice["InvoiceID"]]["Status"] == "AUTHORISED"  # untouched
    (row,) = draft_rows()
    assert row.status == DraftStatus.NEEDS_ATTENTION
    assert "left alone" in row.hold_message


def test_an_approved_period_invoice_opens_a_new_one_for_the_rest_of_the_week(
    workspace: Any, post_event: Any, acme: str, fake: FakeXero
):
    set_consolidation(workspace.id)
    post_event(workspace, approval("ts-1", "u-ada", {day(0): 60}))
    (first,) = fake.invoices_of()
    fake_xero_api.approve(fake, first["InvoiceID"])

    post_event(workspace, approval("ts-2", "u-bob", {day(2): 30}))

    assert len(fake.invoices_of()) == 2
    assert amounts(fake.invoices[first["InvoiceID"]]) == [Decimal("27.5")]  # never appended to
    with db.session_scope() as s:
        assert s.get(Workspace, workspace.id).provider == "xero"
