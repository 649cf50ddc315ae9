"""QuickBooks drafts: the invoice we send (XSD-valid, no empty fields), exactly-once creation,
reconciling unknown outcomes, error classification and removal."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import requests

from connector.providers import quickbooks
from connector.providers.base import (
    CurrencyMismatch,
    DraftInvoice,
    DraftLine,
    DraftState,
    Rejected,
    RemovalOutcome,
    RetryLater,
)
from tests.providers.qbo_fixtures import (
    API,
    CONFIG,
    FAULT_6070,
    REALM,
    THROTTLE_XML,
    FakeQbo,
    NoLimiter,
    connect_store,
    sent_json,
    timeout_after,
    validate_entity,
)


def make_draft(key: str = "ts-77-r1-c1", **kw: Any) -> DraftInvoice:
    lines = (
        DraftLine(
            description="Design review - Ada Lovelace",
            quantity=Decimal("7.5"),
            unit_price=Decimal("120.00"),
            amount=Decimal("900.00"),
            service_date=date(2024, 4, 29),
        ),
        DraftLine(
            description="Support (no date)",
            quantity=Decimal("0.25"),
            unit_price=Decimal("99.99"),
            amount=Decimal("25.00"),
        ),
    )
    values: dict[str, Any] = {
        "key": key,
        "customer_id": "1",
        "customer_name": "Amy's Bird Sanctuary",
        "currency": "USD",
        "lines": lines,
        "total": Decimal("925.00"),
        "memo": "Hours for 29 Apr - 5 May 2024",
        "private_note": (
            "Generated draft from WebWork timesheet 77 (revision 1): review before sending."
        ),
        "period_start": date(2024, 4, 29),
        "period_end": date(2024, 5, 5),
        "issue_date": date(2024, 5, 6),
        "payment_terms_days": 14,
    }
    values.update(kw)
    return DraftInvoice(**values)


@pytest.fixture
def limiter() -> NoLimiter:
    return NoLimiter()


@pytest.fixture
def provider(app: Any, workspace: Any, fake: FakeQbo, limiter: NoLimiter) -> Any:
    store = connect_store(workspace.id, app)
    return quickbooks.create(workspace.id, store, CONFIG, limiter=limiter)


def test_create_draft_sends_a_clean_unsent_invoice(provider: Any, fake: FakeQbo, limiter: Any):
    created = provider.create_draft(make_draft())

    assert created.state is DraftState.DRAFT
    assert created.total == Decimal("925.00")
    assert created.number == f"10{created.provider_id}"
    assert created.link == (
        f"https://app.sandbox.qbo.intuit.com/app/invoice?txnId={created.provider_id}"
    )
    (call,) = fake.calls("POST", "/invoice")
    assert "requestid=ts-77-r1-c1" in call.request.url
    assert "minorversion=75" in call.request.url
    body = sent_json(call)
    validate_entity("Invoice", body)

    assert body["EmailStatus"] == "NotSet"
    assert body["CustomerRef"] == {"value": "1"}
    assert body["CurrencyRef"] == {"value": "USD"}
    assert body["TxnDate"] == "2024-05-06"
    assert body["DueDate"] == "2024-05-20"  # the draft's 14 days win over the customer's Net 30
    assert body["CustomerMemo"] == {"value": "Hours for 29 Apr - 5 May 2024"}
    assert body["PrivateNote"].endswith("\ntsi-key: ts-77-r1-c1")
    assert "timesheet 77" in body["PrivateNote"]
    first, second = body["Line"]
    assert first["Amount"] == Decimal("900.0")
    assert first["SalesItemLineDetail"]["Qty"] == Decimal("7.5")
    assert first["SalesItemLineDetail"]["UnitPrice"] == Decimal("120.0")
    assert first["SalesItemLineDetail"]["ServiceDate"] == "2024-04-29"
    assert first["SalesItemLineDetail"]["TaxCodeRef"] == {"value": "NON"}  # US default
    assert "ServiceDate" not in second["SalesItemLineDetail"]  # never "" (12/31/9999)
    for line in body["Line"]:
        assert "LineNum" not in line and "Id" not in line
        detail = line["SalesItemLineDetail"]
        assert Decimal(str(detail["Qty"])) * Decimal(str(detail["UnitPrice"])) == pytest.approx(
            line["Amount"], abs=Decimal("0.005")
        )

    def no_empty(value: Any) -> None:
        assert value not in ("", None, {}, [])
        if isinstance(value, dict):
            for v in value.values():
                no_empty(v)
        if isinstance(value, list):
            for v in value:
                no_empty(v)

    no_empty(body)
    # Every request waited on the shared limiter of this company, just under 10/s and 500/min.
    assert limiter.buckets
    assert {b for b, _ in limiter.buckets} == {f"quickbooks:{REALM}"}
    assert {lim for _, lim in limiter.buckets} == {((10, 1.0), (490, 60.0))}


def test_service_item_is_created_once_with_an_income_account(provider: Any, fake: FakeQbo):
    provider.create_draft(make_draft("k-1"))
    provider.create_draft(make_draft("k-2"))

    (item,) = fake.created_bodies["item"]
    validate_entity("Item", item)
    assert item == {"Name": "Hours", "Type": "Service", "IncomeAccountRef": {"value": "1"}}
    assert provider.store.meta()["service_item_id"] == next(iter(fake.items))
    bodies = fake.created_bodies["invoice"]
    assert {b["Line"][0]["SalesItemLineDetail"]["ItemRef"]["value"] for b in bodies} == set(
        fake.items
    )
    assert len([q for q in fake.queries if "FROM Item" in q]) == 1  # cached afterwards


def test_existing_service_item_and_configured_name_are_used(provider: Any, fake: FakeQbo):
    fake.items["5"] = {"Id": "5", "Name": "Consulting", "Type": "Service", "Active": True}
    provider.store.update_meta(service_item_name="Consulting")

    provider.create_draft(make_draft())

    assert "item" not in fake.created_bodies
    body = fake.created_bodies["invoice"][0]
    assert body["Line"][0]["SalesItemLineDetail"]["ItemRef"] == {"value": "5"}


def test_customer_terms_used_when_draft_has_none(provider: Any, fake: FakeQbo):
    provider.create_draft(make_draft(payment_terms_days=None))
    assert fake.created_bodies["invoice"][0]["DueDate"] == "2024-06-05"  # Net 30


def test_long_texts_are_clipped_but_the_marker_survives(provider: Any, fake: FakeQbo):
    provider.create_draft(make_draft(memo="m" * 1500, private_note="p" * 5000))
    body = fake.created_bodies["invoice"][0]
    validate_entity("Invoice", body)
    assert len(body["CustomerMemo"]["value"]) == 1000
    assert len(body["PrivateNote"]) <= 4000
    assert body["PrivateNote"].endswith("\ntsi-key: ts-77-r1-c1")


def test_currency_mismatch_is_refused_before_sending(provider: Any, fake: FakeQbo):
    with pytest.raises(CurrencyMismatch) as info:
        provider.create_draft(make_draft(customer_id="58", customer_name="Kensington Ltd"))
    assert info.value.customer_currency == "GBP"
    assert info.value.draft_currency == "USD"
    assert not fake.calls("POST", "/invoice")


def test_missing_customer_is_rejected(provider: Any, fake: FakeQbo):
    with pytest.raises(Rejected, match="does not exist"):
        provider.create_draft(make_draft(customer_id="999"))


def test_non_us_company_needs_a_tax_code(provider: Any, fake: FakeQbo):
    fake.country = "GB"
    with pytest.raises(Rejected, match="tax code"):
        provider.create_draft(make_draft())
    assert not fake.calls("POST", "/invoice")

    provider.create_draft(make_draft(tax_code="20"))
    body = fake.created_bodies["invoice"][0]
    assert {line["SalesItemLineDetail"]["TaxCodeRef"]["value"] for line in body["Line"]} == {"20"}


# --- exactly once ---------------------------------------------------------------------------------
def test_timeout_after_commit_then_retry_with_same_requestid_gives_one_invoice(
    provider: Any, fake: FakeQbo
):
    draft = make_draft()
    fake.inject("POST", "invoice", timeout_after(fake))

    with pytest.raises(RetryLater) as info:
        provider.create_draft(draft)
    assert info.value.outcome_unknown is True
    assert len(fake.invoices) == 1  # QuickBooks did create it

    again = provider.create_draft(draft)

    assert len(fake.invoices) == 1
    assert again.provider_id == next(iter(fake.invoices))
    posts = fake.calls("POST", "/invoice")
    assert len(posts) == 2
    assert all("requestid=ts-77-r1-c1" in c.request.url for c in posts)


def test_lookup_before_recreate_finds_the_invoice_by_its_key(provider: Any, fake: FakeQbo):
    draft = make_draft()
    fake.inject("POST", "invoice", timeout_after(fake))
    with pytest.raises(RetryLater):
        provider.create_draft(draft)
    provider.create_draft(make_draft("ts-77-r1-c12", memo="another"))  # a neighbour key

    # What the pipeline does after an unknown outcome: look first, create only if absent.
    found = provider.find_draft(draft.key)

    assert found is not None
    assert fake.invoices[found.provider_id]["PrivateNote"].endswith("tsi-key: ts-77-r1-c1")
    assert found.state is DraftState.DRAFT
    assert found.total == Decimal("925.00")
    assert provider.find_draft("ts-never-created") is None
    assert len(fake.calls("POST", "/invoice")) == 2  # nothing re-created
    assert any("MetaData.CreateTime >=" in q for q in fake.queries)


def test_find_draft_pages_through_recent_invoices(provider: Any, fake: FakeQbo, monkeypatch):
    monkeypatch.setattr(quickbooks.provider, "FIND_PAGE_SIZE", 2)
    for n in range(5):
        provider.create_draft(make_draft(f"key-{n}"))
    found = provider.find_draft("key-0")  # the oldest: on the last page (newest first)
    assert found is not None
    assert len([q for q in fake.queries if "FROM Invoice" in q]) == 3


def test_connection_dropped_before_sending_is_not_an_unknown_outcome(provider: Any, fake: FakeQbo):
    provider.service_item_id()  # warm the caches so the next POST is the invoice
    fake.inject("POST", "invoice", lambda r: requests.ConnectTimeout("no route"))
    with pytest.raises(RetryLater) as info:
        provider.create_draft(make_draft())
    assert info.value.outcome_unknown is False


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_on_create_are_unknown_outcomes(provider: Any, fake: FakeQbo, status: int):
    fake.inject("POST", "invoice", lambda r: (status, {"Content-Type": "text/html"}, "<html/>"))
    with pytest.raises(RetryLater) as info:
        provider.create_draft(make_draft())
    assert info.value.outcome_unknown is True


# --- errors ---------------------------------------------------------------------------------------
def test_throttled_with_an_xml_body_waits(provider: Any, fake: FakeQbo):
    fake.inject(
        "GET", "customer/1", lambda r: (429, {"Content-Type": "application/xml"}, THROTTLE_XML)
    )
    with pytest.raises(RetryLater) as info:
        provider.create_draft(make_draft())
    assert info.value.retry_after == 60
    assert info.value.outcome_unknown is False


def test_throttle_honours_retry_after(provider: Any, fake: FakeQbo):
    fake.inject("GET", "customer/1", lambda r: (429, {"Retry-After": "7"}, ""))
    with pytest.raises(RetryLater) as info:
        provider.get_customer("1")
    assert info.value.retry_after == 7


def test_validation_fault_6070_is_rejected_with_intuits_words(provider: Any, fake: FakeQbo):
    import json

    fake.inject(
        "POST",
        "invoice",
        lambda r: (400, {"Content-Type": "application/json"}, json.dumps(FAULT_6070)),
    )
    with pytest.raises(Rejected) as info:
        provider.create_draft(make_draft())
    assert type(info.value) is Rejected
    assert info.value.code == "6070"
    assert info.value.message == "Unit Price * Qty does not equal Amount"
    assert "UnitPrice = 33.33" in (info.value.detail or "")
    assert "6070" in str(info.value)


def test_no_vendor_exception_escapes(provider: Any, fake: FakeQbo):
    fake.inject("GET", "customer/1", lambda r: requests.ConnectionError("reset by peer"))
    with pytest.raises(RetryLater):
        provider.get_customer("1")
    fake.inject("GET", "customer/1", lambda r: (200, {}, "not json"))
    with pytest.raises(RetryLater):
        provider.get_customer("1")


# --- removal and links ----------------------------------------------------------------------------
def test_remove_unsent_draft_deletes_it(provider: Any, fake: FakeQbo):
    created = provider.create_draft(make_draft())
    assert provider.remove_draft(created.provider_id) is RemovalOutcome.DELETED
    assert created.provider_id not in fake.invoices
    (delete,) = [c for c in fake.calls("POST", "/invoice") if "operation=delete" in c.request.url]
    assert sent_json(delete) == {"Id": created.provider_id, "SyncToken": "0"}
    assert provider.remove_draft(created.provider_id) is RemovalOutcome.ALREADY_GONE


def test_remove_leaves_sent_or_paid_invoices_alone(provider: Any, fake: FakeQbo):
    sent = provider.create_draft(make_draft("k-sent"))
    paid = provider.create_draft(make_draft("k-paid"))
    fake.invoices[sent.provider_id]["EmailStatus"] = "EmailSent"
    fake.invoices[paid.provider_id]["Balance"] = 25.0

    assert provider.remove_draft(sent.provider_id) is RemovalOutcome.NOT_A_DRAFT
    assert provider.remove_draft(paid.provider_id) is RemovalOutcome.NOT_A_DRAFT
    assert set(fake.invoices) == {sent.provider_id, paid.provider_id}
    assert provider.find_draft("k-sent").state is DraftState.SENT


def test_remove_rereads_after_a_concurrent_edit(provider: Any, fake: FakeQbo):
    created = provider.create_draft(make_draft())

    def edited_meanwhile(request: Any) -> Any:
        fake.invoices[created.provider_id]["SyncToken"] = "1"
        return None  # then QuickBooks answers 5010 Stale Object, as it would

    fake.inject("POST", "invoice", edited_meanwhile)
    assert provider.remove_draft(created.provider_id) is RemovalOutcome.DELETED


def test_links_follow_the_app_base_url_override(app: Any, workspace: Any, rsps: Any):
    store = connect_store(workspace.id, app)
    config = {
        **CONFIG,
        "QUICKBOOKS_API_BASE_URL": "https://qbo.example.test/",
        "QUICKBOOKS_APP_BASE_URL": "https://books.example.test",
    }
    fake = FakeQbo(rsps, api="https://qbo.example.test")
    provider = quickbooks.create(workspace.id, store, config, limiter=NoLimiter())
    assert provider.draft_link("266") == "https://books.example.test/app/invoice?txnId=266"
    assert provider.get_customer("1").name == "Amy's Bird Sanctuary"
    assert fake.calls("GET", "/customer/1")
    assert API not in fake.calls("GET", "/customer/1")[0].request.url
