"""QuickBooks at scale: one request per draft in steady state (customer and service item read
once, reused), the cache dropped when QuickBooks says something changed, and a lookup before a
re-create that costs the same however many invoices the company has."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from connector.draft_records import draft_records
from connector.providers import quickbooks
from connector.providers.base import Rejected
from tests.providers.qbo_fixtures import (
    API,
    CONFIG,
    FAULT_610,
    FAULT_6070,
    FakeQbo,
    NoLimiter,
    connect_store,
    fault,
    sent_json,
)
from tests.providers.test_quickbooks_drafts import make_draft


def api_calls(fake: FakeQbo) -> list[Any]:
    """Every request sent to the Accounting API (token calls are Intuit's OAuth server)."""
    return [c for c in fake.rsps.calls if c.request.url.startswith(API)]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 9, 0).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(app: Any, workspace: Any, fake: FakeQbo) -> Any:
    return connect_store(workspace.id, app)


def provider_for(workspace: Any, store: Any, **kw: Any) -> Any:
    """A fresh provider, as each job builds one (build_provider): only the shared cache carries
    over, and find_draft's hints come from the recorded draft rows."""
    provider = quickbooks.create(
        workspace.id,
        store,
        CONFIG,
        limiter=NoLimiter(),
        draft_records=draft_records(workspace.id),
    )
    for name, value in kw.items():
        setattr(provider, name, value)
    return provider


def test_steady_state_costs_one_request_per_draft(workspace: Any, store: Any, fake: FakeQbo):
    first = provider_for(workspace, store)
    first.create_draft(make_draft("warm-1", customer_id="1", payment_terms_days=None))
    warm_up = len(api_calls(fake))
    assert warm_up > 1  # company info, customer, term, item lookup/creation, the invoice

    for n in range(5):
        before = len(api_calls(fake))
        provider_for(workspace, store).create_draft(
            make_draft(f"steady-{n}", customer_id="1", payment_terms_days=None)
        )
        sent = api_calls(fake)[before:]
        assert [
            (c.request.method, urlparse(c.request.url).path.rsplit("/", 1)[-1]) for c in sent
        ] == [("POST", "invoice")]

    # The cached terms still decide the due date: Net 30 from the customer's SalesTermRef.
    body = sent_json(fake.calls("POST", "/invoice")[-1])
    assert body["DueDate"] == "2024-06-05"
    assert body["CurrencyRef"] == {"value": "USD"}


def test_cached_customer_is_read_again_after_the_cache_period(
    workspace: Any, store: Any, fake: FakeQbo, clock: Clock
):
    provider = provider_for(workspace, store, _clock=clock)
    provider.create_draft(make_draft("k-1", payment_terms_days=None))
    fake.terms["4"] = {"Id": "4", "Name": "Net 15", "DueDays": 15, "Active": True}
    fake.customers["1"]["SalesTermRef"] = {"value": "4"}  # finance changed the terms

    clock.now += quickbooks.DEFAULT_CACHE_SECONDS - 1
    provider_for(workspace, store, _clock=clock).create_draft(
        make_draft("k-2", payment_terms_days=None)
    )
    assert sent_json(fake.calls("POST", "/invoice")[-1])["DueDate"] == "2024-06-05"  # cached

    clock.now += 2  # the documented refresh: QUICKBOOKS_CACHE_SECONDS after the read
    before = len(fake.calls("GET", "/customer/1"))
    provider_for(workspace, store, _clock=clock).create_draft(
        make_draft("k-3", payment_terms_days=None)
    )
    assert len(fake.calls("GET", "/customer/1")) == before + 1
    assert sent_json(fake.calls("POST", "/invoice")[-1])["DueDate"] == "2024-05-21"  # Net 15


def test_cache_seconds_is_configurable(workspace: Any, store: Any, fake: FakeQbo):
    provider = quickbooks.create(
        workspace.id, store, {**CONFIG, "QUICKBOOKS_CACHE_SECONDS": "0"}, limiter=NoLimiter()
    )
    provider.create_draft(make_draft("k-1"))
    provider.create_draft(make_draft("k-2"))
    assert len(fake.calls("GET", "/customer/1")) == 2  # 0: never reused


def test_a_6xxx_refusal_drops_the_cache_and_sends_once_more_with_fresh_data(
    workspace: Any, store: Any, fake: FakeQbo
):
    provider_for(workspace, store).create_draft(make_draft("k-1"))
    (old_item,) = fake.items
    assert store.cache_get(f"{fake_realm(store)}:customer:1") is not None

    # In QuickBooks someone deletes the service item; the next create is refused with 6000.
    del fake.items[old_item]  # (QuickBooks still remembers the requestid that created it)
    refusal = fault("6000", "A business validation error has occurred", "Item is inactive")
    fake.inject(
        "POST",
        "invoice",
        lambda r: (400, {"Content-Type": "application/json"}, json.dumps(refusal)),
    )
    customer_reads = len(fake.calls("GET", "/customer/1"))

    created = provider_for(workspace, store).create_draft(make_draft("k-2"))

    assert len(fake.calls("GET", "/customer/1")) == customer_reads + 1  # read again: dropped
    (new_item,) = fake.items
    assert new_item != old_item
    assert store.meta()["service_item_id"] == new_item
    refused, resent = fake.calls("POST", "/invoice")[-2:]
    assert sent_json(refused)["Line"][0]["SalesItemLineDetail"]["ItemRef"] == {"value": old_item}
    assert sent_json(resent)["Line"][0]["SalesItemLineDetail"]["ItemRef"] == {"value": new_item}
    rid = parse_qs(urlparse(resent.request.url).query)["requestid"][0]
    assert rid != "k-2"  # the refused request created nothing; a fresh id is safe
    assert fake.invoices[created.provider_id]["PrivateNote"].endswith("tsi-key: k-2")
    assert sum(1 for i in fake.invoices.values() if i["PrivateNote"].endswith("k-2")) == 1


@pytest.mark.parametrize("refusal", [FAULT_6070, FAULT_610])
def test_a_refusal_that_fresh_data_does_not_change_fails_with_intuits_words(
    workspace: Any, store: Any, fake: FakeQbo, refusal: dict[str, Any]
):
    provider_for(workspace, store).create_draft(make_draft("k-1"))
    fake.inject(
        "POST",
        "invoice",
        lambda r: (400, {"Content-Type": "application/json"}, json.dumps(refusal)),
    )
    posts = len(fake.calls("POST", "/invoice"))
    customer_reads = len(fake.calls("GET", "/customer/1"))

    with pytest.raises(Rejected) as info:
        provider_for(workspace, store).create_draft(make_draft("k-2"))

    assert info.value.code == refusal["Fault"]["Error"][0]["code"]
    assert len(fake.calls("POST", "/invoice")) == posts + 1  # not resent: nothing changed
    assert len(fake.calls("GET", "/customer/1")) == customer_reads + 1  # but the cache was dropped


def test_a_refusal_outside_6xxx_keeps_the_cache(workspace: Any, store: Any, fake: FakeQbo):
    provider_for(workspace, store).create_draft(make_draft("k-1"))
    refusal = fault("2020", "Required param missing, need to supply the required value", "x")
    fake.inject(
        "POST",
        "invoice",
        lambda r: (400, {"Content-Type": "application/json"}, json.dumps(refusal)),
    )
    customer_reads = len(fake.calls("GET", "/customer/1"))
    with pytest.raises(Rejected):
        provider_for(workspace, store).create_draft(make_draft("k-2"))
    assert len(fake.calls("GET", "/customer/1")) == customer_reads


def test_reconnecting_another_company_never_reads_the_previous_ones_cache(
    workspace: Any, store: Any, fake: FakeQbo
):
    provider_for(workspace, store).create_draft(make_draft("k-1"))
    other = quickbooks.QuickBooksProvider(
        workspace.id,
        store,
        provider_for(workspace, store).settings,
        "other-realm",
        limiter=NoLimiter(),
    )
    assert store.cache_get("other-realm:customer:1") is None
    assert other._cache_name("customer", "1") == "other-realm:customer:1"


def fake_realm(store: Any) -> str:
    return str(store.account_id)


# --- the lookup before a re-create ----------------------------------------------------------------
def test_find_draft_asks_for_the_customers_invoices_of_that_day_only(
    workspace: Any, store: Any, fake: FakeQbo, monkeypatch: Any
):
    monkeypatch.setattr(quickbooks.provider, "FIND_PAGE_SIZE", 2)
    provider = provider_for(workspace, store)
    # A big company: many invoices on other days and for other customers, two the same day.
    for n in range(12):
        provider.create_draft(
            make_draft(f"other-{n}", issue_date=date(2024, 5, 6) - timedelta(n + 1))
        )
    fake.customers["7"] = dict(fake.customers["1"], Id="7", DisplayName="Other")
    for n in range(6):
        provider.create_draft(make_draft(f"neighbour-{n}", customer_id="7"))
    provider.create_draft(make_draft("same-day", memo="another"))
    target = provider.create_draft(make_draft("ts-77-r1-c1"))
    provider.draft_hint = lambda key: ("1", date(2024, 5, 6))
    fake.queries.clear()

    found = provider.find_draft("ts-77-r1-c1")

    assert found is not None and found.provider_id == target.provider_id
    assert fake.queries == [
        "SELECT * FROM Invoice WHERE CustomerRef = '1' AND TxnDate = '2024-05-06' "
        "ORDERBY MetaData.CreateTime DESC STARTPOSITION 1 MAXRESULTS 2"
    ]
    fake.queries.clear()
    assert provider.find_draft("ts-never-created") is None
    assert len(fake.queries) == 2  # two invoices that day: one full page, then an empty one


def test_find_draft_takes_its_hint_from_the_pipelines_draft_row(
    app: Any, workspace: Any, store: Any, fake: FakeQbo
):
    from connector import db
    from connector.models import Draft, Timesheet

    with db.session_scope() as s:
        ts = Timesheet(
            workspace_id=workspace.id, source="webwork", timesheet_id="ts-1", status="approved"
        )
        s.add(ts)
        s.flush()
        s.add(
            Draft(
                workspace_id=workspace.id,
                timesheet_pk=ts.id,
                revision="r1",
                subject_key="customer:58",
                key="ts-1-r1-c58",
                customer_id="58",
                created_at=datetime(2026, 11, 30, 23, 30, tzinfo=UTC),
            )
        )
    provider = provider_for(workspace, store)
    fake.queries.clear()
    assert provider.find_draft("ts-1-r1-c58") is None
    (statement,) = fake.queries
    assert "CustomerRef = '58'" in statement
    assert "TxnDate = '2026-11-30'" in statement
    assert "MetaData.CreateTime >=" not in statement


class RacingStore:
    """The credential store as worker A sees it: the first time A asks for a lock, worker B
    (same company, its own provider) runs ``race`` first, as if both had started at once."""

    def __init__(self, store: Any, race: Any) -> None:
        self._store = store
        self._race = race
        self.locks: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def lock(self, name: str, timeout: float = 30.0) -> Any:
        self.locks.append(name)
        race, self._race = self._race, None
        if race is not None:
            race()
        return self._store.lock(name, timeout)


def test_workers_starting_at_once_read_the_customer_and_item_once(
    workspace: Any, store: Any, fake: FakeQbo
):
    """A burst: a worker that misses the cache while another fills it waits for that fill and
    reuses it, instead of spending the company's requests on the same reads again."""
    other_worker = provider_for(workspace, store)
    racing = RacingStore(
        store,
        lambda: other_worker.create_draft(make_draft("b-1", payment_terms_days=None)),
    )
    worker = quickbooks.create(workspace.id, racing, CONFIG, limiter=NoLimiter())
    before_b = len(api_calls(fake))

    worker.create_draft(make_draft("a-1", payment_terms_days=None))

    assert racing.locks and "customer:1" in racing.locks[0]  # it waited for the customer's fill
    paths = [
        (c.request.method, urlparse(c.request.url).path.rsplit("/", 1)[-1])
        for c in api_calls(fake)[before_b:]
    ]
    # B's warm-up, then the two invoices: the customer and the item were read once.
    assert paths.count(("GET", "1")) == 1  # GET customer/1
    assert paths.count(("POST", "invoice")) == 2
    assert paths[-1] == ("POST", "invoice")
    assert len(fake.items) == 1
