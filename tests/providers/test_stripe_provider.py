"""The Stripe provider against mocked HTTP (``responses``): bodies, headers, call counts, and
every way a draft could be lost or created twice."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses
import stripe

from connector.connections.store import DbCredentialStore, secret_box
from connector.draft_records import draft_records
from connector.models import Connection, ConnectionStatus
from connector.providers import stripe as stripe_provider
from connector.providers.base import (
    CurrencyMismatch,
    DraftInvoice,
    DraftLine,
    DraftState,
    NewCustomer,
    ReconnectNeeded,
    Rejected,
    RemovalOutcome,
    RetryLater,
)
from connector.providers.stripe import STRIPE_API_VERSION
from tests.app_fixtures import load_fixture

API = "https://api.stripe.com"
KEY = "ti-aaaabbbbccccddddeeeeffffgggghhhhiiiijjjj"  # the draft key used in the fixtures
API_KEY = "rk_test_51TestKeyForTheConnectorabcd"
INVOICE = "in_1QTest"


def fx(name: str) -> dict[str, Any]:
    return load_fixture("stripe", f"{name}.json")


class RecordingLimiter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[tuple[int, float], ...]]] = []
        self.pauses: list[tuple[str, float]] = []

    def acquire(self, bucket: str, limits: tuple[tuple[int, float], ...]) -> None:
        self.calls.append((bucket, limits))

    def pause(self, bucket: str, seconds: float) -> None:
        self.pauses.append((bucket, seconds))


def line(i: int = 0, amount: str = "22.92", **kw: Any) -> DraftLine:
    return DraftLine(
        description=f"Ada Lovelace — Website — 2026-03-02 to 2026-03-06 — 50 min #{i}",
        quantity=Decimal("0.8333"),
        unit_price=Decimal("27.50"),
        amount=Decimal(amount),
        period_start=date(2026, 3, 2),
        period_end=date(2026, 3, 6),
        **kw,
    )


def make_draft(n_lines: int = 2, currency: str = "USD", **kw: Any) -> DraftInvoice:
    lines = kw.pop("lines", None) or tuple(line(i) for i in range(n_lines))
    values: dict[str, Any] = {
        "key": KEY,
        "customer_id": "cus_A",
        "customer_name": "Globex Corporation",
        "currency": currency,
        "lines": lines,
        "total": sum((ln.amount for ln in lines), Decimal(0)),
        "memo": "Timesheet of Ada Lovelace, 2026-03-02 to 2026-03-08",
        "private_note": "Generated draft for timesheet ts-991 (revision rev1-abc).",
        "period_start": date(2026, 3, 2),
        "period_end": date(2026, 3, 8),
        "issue_date": date(2026, 3, 9),
        "metadata": {"timesheet_id": "ts-991", "revision": "rev1-abc"},
    }
    values.update(kw)
    return DraftInvoice(**values)


def form(call: Any) -> dict[str, str]:
    """A recorded request's form body as a flat dict (``lines[0][amount]`` -> ``2292``)."""
    body = call.request.body or ""
    if isinstance(body, bytes):
        body = body.decode()
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def posts(rsps: responses.RequestsMock, path: str) -> list[Any]:
    return [c for c in rsps.calls if c.request.method == "POST" and c.request.url == f"{API}{path}"]


@pytest.fixture
def store(app: Any, workspace: Any) -> DbCredentialStore:
    s = DbCredentialStore(workspace.id, "stripe", secret_box(app.config))
    # The mapping screen's get_customer cached cus_A's locked currency.
    s.connect(
        {"method": "api_key", "api_key": API_KEY},
        account_id="acct_1Test",
        environment="test",
        meta={"customer_currencies": {"cus_A": "usd"}},
    )
    return s


@pytest.fixture
def limiter() -> RecordingLimiter:
    return RecordingLimiter()


@pytest.fixture
def provider(app: Any, workspace: Any, store: DbCredentialStore, limiter: RecordingLimiter) -> Any:
    # As build_provider makes it: find_draft's hints come from the recorded draft rows.
    p = stripe_provider.create(
        workspace.id, store, app.config, draft_records=draft_records(workspace.id)
    )
    p._limiter = limiter
    return p


def add_create(rsps: Any, **kw: Any) -> None:
    rsps.add(responses.POST, f"{API}/v1/invoices", json=fx("invoice__draft_created"), **kw)


def add_lines(rsps: Any, fixture: str = "invoice__draft_with_lines", **kw: Any) -> None:
    rsps.add(responses.POST, f"{API}/v1/invoices/{INVOICE}/add_lines", json=fx(fixture), **kw)


# --- the happy path ----------------------------------------------------------------------------
def test_api_version_is_pinned_once_and_matches_the_sdk() -> None:
    assert STRIPE_API_VERSION == stripe._api_version._ApiVersion.CURRENT


def test_module_imports_the_real_sdk() -> None:
    from connector.providers.stripe import provider

    assert provider.stripe is stripe
    assert hasattr(provider.stripe, "StripeClient")


def test_create_draft_costs_exactly_two_calls(provider: Any, rsps: Any, limiter: Any) -> None:
    add_create(rsps)
    add_lines(rsps)

    created = provider.create_draft(make_draft())

    assert len(rsps.calls) == 2
    create, lines = rsps.calls
    assert create.request.url == f"{API}/v1/invoices"
    body = form(create)
    assert body["customer"] == "cus_A"
    assert body["auto_advance"] == "false"
    assert body["collection_method"] == "send_invoice"
    assert body["days_until_due"] == "30"  # no terms given: the documented default
    assert body["pending_invoice_items_behavior"] == "exclude"
    assert body["currency"] == "usd"
    assert body["description"] == "Timesheet of Ada Lovelace, 2026-03-02 to 2026-03-08"
    assert body["metadata[draft_key]"] == KEY
    assert body["metadata[timesheet_id]"] == "ts-991"
    assert body["metadata[customer_id]"] == "cus_A"
    assert body["metadata[line_count]"] == "2"
    assert body["metadata[workspace_id]"] == str(provider.workspace_id)
    assert "lines[0][amount]" not in body  # invoice create has no lines parameter
    assert create.request.headers["Idempotency-Key"] == f"{KEY}:create"
    assert create.request.headers["Stripe-Version"] == STRIPE_API_VERSION
    assert "Stripe-Account" not in create.request.headers
    assert create.request.headers["Authorization"] == f"Bearer {API_KEY}"

    assert lines.request.url == f"{API}/v1/invoices/{INVOICE}/add_lines"
    body = form(lines)
    assert body["lines[0][amount]"] == "2292"
    assert body["lines[1][amount]"] == "2292"
    assert body["lines[0][description]"].endswith("— 50 min #0 x 27.50 USD/h")
    assert body["lines[0][period][start]"] == "1772452800"  # 2026-03-02 12:00 UTC
    assert body["lines[0][period][end]"] == "1772798400"  # 2026-03-06 12:00 UTC
    assert body["lines[0][metadata][draft_key]"] == KEY
    assert body["lines[1][metadata][line]"] == "1"
    assert lines.request.headers["Idempotency-Key"] == f"{KEY}:lines:0"
    assert lines.request.headers["Stripe-Version"] == STRIPE_API_VERSION

    assert created.provider_id == INVOICE
    assert created.state is DraftState.DRAFT
    assert created.total == Decimal("45.84")
    assert created.link == f"https://dashboard.stripe.com/test/invoices/{INVOICE}"
    assert limiter.calls == [("stripe:acct_1Test", ((20, 1.0),))] * 2
    assert provider.store.meta().get("pending_drafts") == {}


def test_payment_terms_and_long_memo(provider: Any, rsps: Any) -> None:
    add_create(rsps)
    add_lines(rsps)
    provider.create_draft(make_draft(payment_terms_days=14, memo="x" * 2000))
    body = form(rsps.calls[0])
    assert body["days_until_due"] == "14"
    assert len(body["description"]) == 1500


def test_zero_decimal_currency_is_sent_in_whole_units(provider: Any, rsps: Any) -> None:
    provider.store.update_meta(customer_currencies={"cus_A": "jpy"})
    add_create(rsps)
    add_lines(rsps)
    draft = make_draft(currency="JPY", lines=(line(0, "833"),))
    provider.create_draft(draft)
    body = form(rsps.calls[1])
    assert body["lines[0][amount]"] == "833"
    assert body["lines[0][description]"].endswith("x 28 JPY/h")
    assert form(rsps.calls[0])["currency"] == "jpy"


def test_many_lines_are_chunked_with_one_key_per_chunk(provider: Any, rsps: Any) -> None:
    add_create(rsps)
    add_lines(rsps)
    provider.create_draft(make_draft(n_lines=120))
    chunks = posts(rsps, f"/v1/invoices/{INVOICE}/add_lines")
    assert len(rsps.calls) == 4
    assert [c.request.headers["Idempotency-Key"] for c in chunks] == [
        f"{KEY}:lines:0",
        f"{KEY}:lines:1",
        f"{KEY}:lines:2",
    ]
    assert "lines[49][amount]" in form(chunks[0]) and "lines[50][amount]" not in form(chunks[0])
    assert form(chunks[2])["lines[19][metadata][line]"] == "119"


def test_a_draft_over_stripes_line_limit_is_rejected_before_any_call(
    provider: Any, rsps: Any
) -> None:
    with pytest.raises(Rejected, match="at most 250 lines"):
        provider.create_draft(make_draft(n_lines=251))
    assert len(rsps.calls) == 0


# --- currency ------------------------------------------------------------------------------------
def test_cached_currency_mismatch_holds_the_draft_without_any_call(
    provider: Any, rsps: Any
) -> None:
    provider.store.update_meta(customer_currencies={"cus_A": "eur"})
    with pytest.raises(CurrencyMismatch) as err:
        provider.create_draft(make_draft(currency="USD"))
    assert (err.value.customer_currency, err.value.draft_currency) == ("EUR", "USD")
    assert len(rsps.calls) == 0


def test_unknown_customer_currency_costs_one_get_first(provider: Any, rsps: Any) -> None:
    provider.store.update_meta(customer_currencies={})
    rsps.add(responses.GET, f"{API}/v1/customers/cus_A", json=fx("customer__eur"))
    with pytest.raises(CurrencyMismatch, match="billed in EUR"):
        provider.create_draft(make_draft(currency="USD"))
    assert len(rsps.calls) == 1  # checked FIRST: nothing was created

    rsps.replace(responses.GET, f"{API}/v1/customers/cus_A", json=fx("customer__usd"))
    provider.store.update_meta(customer_currencies={})
    add_create(rsps)
    add_lines(rsps)
    provider.create_draft(make_draft(currency="USD"))
    assert [c.request.method for c in rsps.calls[1:]] == ["GET", "POST", "POST"]
    # ... and the next draft for that customer is back to two calls.
    assert provider.store.meta()["customer_currencies"] == {"cus_A": "usd"}


def test_stripes_own_currency_error_becomes_currency_mismatch(provider: Any, rsps: Any) -> None:
    rsps.add(responses.POST, f"{API}/v1/invoices", json=fx("error__currency_mismatch"), status=400)
    with pytest.raises(CurrencyMismatch) as err:
        provider.create_draft(make_draft())
    assert err.value.customer_currency == "EUR"


# --- transient failures and exactly once ---------------------------------------------------------
def test_429_is_retry_later_and_not_retried_by_the_sdk(provider: Any, rsps: Any) -> None:
    rsps.add(
        responses.POST,
        f"{API}/v1/invoices",
        json=fx("error__rate_limit"),
        status=429,
        headers={"Retry-After": "3"},
    )
    with pytest.raises(RetryLater) as err:
        provider.create_draft(make_draft())
    assert err.value.retry_after == 3.0
    assert err.value.outcome_unknown is False
    assert len(rsps.calls) == 1


def test_429_without_header_waits_a_default(provider: Any, rsps: Any) -> None:
    rsps.add(responses.GET, f"{API}/v1/customers/cus_Z", json=fx("error__rate_limit"), status=429)
    with pytest.raises(RetryLater) as err:
        provider.get_customer("cus_Z")
    assert 1.0 <= err.value.retry_after <= 2.0


def test_500_then_success_reuses_the_same_key(provider: Any, rsps: Any) -> None:
    rsps.add(responses.POST, f"{API}/v1/invoices", json=fx("error__api_500"), status=500)
    add_create(rsps)
    add_lines(rsps)

    with pytest.raises(RetryLater) as err:
        provider.create_draft(make_draft())
    assert err.value.outcome_unknown is True
    created = provider.create_draft(make_draft())

    creates = posts(rsps, "/v1/invoices")
    assert len(creates) == 2
    assert {c.request.headers["Idempotency-Key"] for c in creates} == {f"{KEY}:create"}
    assert created.provider_id == INVOICE


def test_timeout_after_create_reconciles_without_a_duplicate(provider: Any, rsps: Any) -> None:
    # The create reached Stripe, but the answer was lost.
    rsps.add(responses.POST, f"{API}/v1/invoices", body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(RetryLater) as err:
        provider.create_draft(make_draft())
    assert err.value.outcome_unknown is True

    # The caller looks before it creates: search finds the invoice, but it has no lines yet, so
    # it is not reported as done; it is remembered for create_draft to complete.
    rsps.add(responses.GET, f"{API}/v1/invoices/search", json=fx("invoice_search__incomplete"))
    assert provider.find_draft(KEY) is None
    search = next(c for c in rsps.calls if "/search" in c.request.url)
    assert "metadata%5B%27draft_key%27%5D" in search.request.url

    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}", json=fx("invoice__draft_created"))
    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}/lines", json=fx("invoice_lines__empty"))
    add_lines(rsps)
    created = provider.create_draft(make_draft())

    assert created.provider_id == INVOICE
    assert len(posts(rsps, "/v1/invoices")) == 1  # only the timed-out one: no duplicate
    (lines_call,) = posts(rsps, f"/v1/invoices/{INVOICE}/add_lines")
    assert lines_call.request.headers["Idempotency-Key"] == f"{KEY}:lines:0"
    assert provider.store.meta()["pending_drafts"] == {}


def test_resume_after_a_crash_between_the_two_calls(provider: Any, rsps: Any) -> None:
    add_create(rsps)
    rsps.add(
        responses.POST,
        f"{API}/v1/invoices/{INVOICE}/add_lines",
        body=requests.exceptions.ConnectionError("worker lost its network"),
    )
    with pytest.raises(RetryLater) as err:
        provider.create_draft(make_draft())
    assert err.value.outcome_unknown is True
    assert provider.store.meta()["pending_drafts"][KEY]["invoice"] == INVOICE

    # Days later (keys pruned): the first line did land, the second did not.
    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}", json=fx("invoice__draft_created"))
    rsps.add(
        responses.GET,
        f"{API}/v1/invoices/{INVOICE}/lines",
        json=fx("invoice_lines__first_only"),
    )
    rsps.replace(
        responses.POST,
        f"{API}/v1/invoices/{INVOICE}/add_lines",
        json=fx("invoice__draft_with_lines"),
    )
    created = provider.create_draft(make_draft())

    assert len(posts(rsps, "/v1/invoices")) == 1  # never a second invoice
    resumed = posts(rsps, f"/v1/invoices/{INVOICE}/add_lines")[-1]
    body = form(resumed)
    assert body["lines[0][metadata][line]"] == "1" and "lines[1][amount]" not in body
    assert resumed.request.headers["Idempotency-Key"] == f"{KEY}:lines:0:rest-1"
    assert created.total == Decimal("45.84")
    assert provider.store.meta()["pending_drafts"] == {}


def test_abandoning_a_half_built_draft_deletes_its_invoice(provider: Any, rsps: Any) -> None:
    """An approval withdrawn between the two calls must not leave an empty draft in Stripe."""
    add_create(rsps)
    rsps.add(
        responses.POST,
        f"{API}/v1/invoices/{INVOICE}/add_lines",
        body=requests.exceptions.ConnectionError("worker lost its network"),
    )
    with pytest.raises(RetryLater):
        provider.create_draft(make_draft())
    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}", json=fx("invoice__draft_created"))
    rsps.add(
        responses.DELETE, f"{API}/v1/invoices/{INVOICE}", json={"id": INVOICE, "deleted": True}
    )

    assert provider.abandon_draft(KEY) == RemovalOutcome.DELETED
    assert [c.request.method for c in rsps.calls if c.request.method == "DELETE"] == ["DELETE"]
    assert provider.store.meta()["pending_drafts"] == {}
    assert provider.abandon_draft(KEY) == RemovalOutcome.ALREADY_GONE  # nothing left to do


def test_resume_with_every_line_missing_reuses_the_original_chunk_key(
    provider: Any, rsps: Any
) -> None:
    provider.store.update_meta(
        pending_drafts={KEY: {"invoice": INVOICE, "customer": "cus_A", "at": 0}}
    )
    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}", json=fx("invoice__draft_created"))
    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}/lines", json=fx("invoice_lines__empty"))
    add_lines(rsps)
    provider.create_draft(make_draft())
    (call,) = posts(rsps, f"/v1/invoices/{INVOICE}/add_lines")
    assert call.request.headers["Idempotency-Key"] == f"{KEY}:lines:0"
    assert posts(rsps, "/v1/invoices") == []


def test_pending_invoice_deleted_meanwhile_is_rejected_not_recreated(
    provider: Any, rsps: Any
) -> None:
    provider.store.update_meta(
        pending_drafts={KEY: {"invoice": INVOICE, "customer": "cus_A", "at": 0}}
    )
    rsps.add(
        responses.GET,
        f"{API}/v1/invoices/{INVOICE}",
        json=fx("error__missing_invoice"),
        status=404,
    )
    with pytest.raises(Rejected, match="deleted"):
        provider.create_draft(make_draft())
    assert posts(rsps, "/v1/invoices") == []


def test_idempotency_error_reconciles_to_the_existing_invoice(provider: Any, rsps: Any) -> None:
    rsps.add(responses.POST, f"{API}/v1/invoices", json=fx("error__idempotency"), status=400)
    rsps.add(responses.GET, f"{API}/v1/invoices", json=fx("invoice_list__customer"))
    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}/lines", json=fx("invoice_lines__all"))

    created = provider.create_draft(make_draft())

    assert created.provider_id == INVOICE
    listing = next(c for c in rsps.calls if c.request.method == "GET")
    assert "customer=cus_A" in listing.request.url and "limit=100" in listing.request.url
    assert len(posts(rsps, "/v1/invoices")) == 1
    assert posts(rsps, f"/v1/invoices/{INVOICE}/add_lines") == []  # lines already there


def test_idempotency_error_without_an_invoice_never_creates_another(
    provider: Any, rsps: Any
) -> None:
    rsps.add(responses.POST, f"{API}/v1/invoices", json=fx("error__idempotency"), status=400)
    rsps.add(responses.GET, f"{API}/v1/invoices", json=fx("invoice_list__empty"))
    with pytest.raises(Rejected) as err:
        provider.create_draft(make_draft())
    assert err.value.code == "idempotency_error"
    assert len(posts(rsps, "/v1/invoices")) == 1


def test_lines_key_conflict_adds_only_what_the_line_metadata_says_is_missing(
    provider: Any, rsps: Any
) -> None:
    add_create(rsps)
    rsps.add(
        responses.POST,
        f"{API}/v1/invoices/{INVOICE}/add_lines",
        json=fx("error__idempotency"),
        status=400,
    )
    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}", json=fx("invoice__draft_created"))
    rsps.add(
        responses.GET,
        f"{API}/v1/invoices/{INVOICE}/lines",
        json=fx("invoice_lines__first_only"),
    )
    add_lines(rsps)

    created = provider.create_draft(make_draft())

    first, second = posts(rsps, f"/v1/invoices/{INVOICE}/add_lines")
    assert first.request.headers["Idempotency-Key"] == f"{KEY}:lines:0"
    assert second.request.headers["Idempotency-Key"] == f"{KEY}:lines:0:rest-1"
    assert form(second)["lines[0][metadata][line]"] == "1"
    assert len(posts(rsps, "/v1/invoices")) == 1
    assert created.provider_id == INVOICE


def test_replayed_500_looks_then_creates_under_a_fresh_key(provider: Any, rsps: Any) -> None:
    rsps.add(
        responses.POST,
        f"{API}/v1/invoices",
        json=fx("error__api_500"),
        status=500,
        headers={"Idempotent-Replayed": "true"},
    )
    rsps.add(responses.GET, f"{API}/v1/invoices", json=fx("invoice_list__empty"))
    add_create(rsps)
    add_lines(rsps)

    created = provider.create_draft(make_draft())

    first, second = posts(rsps, "/v1/invoices")
    assert first.request.headers["Idempotency-Key"] == f"{KEY}:create"
    assert second.request.headers["Idempotency-Key"].startswith(f"{KEY}:create:")
    assert created.provider_id == INVOICE


def test_find_draft_reports_a_complete_invoice(provider: Any, rsps: Any) -> None:
    provider.store.update_meta(
        pending_drafts={KEY: {"invoice": INVOICE, "customer": "cus_A", "at": 0}}
    )
    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}", json=fx("invoice__draft_with_lines"))
    found = provider.find_draft(KEY)
    assert found is not None and found.provider_id == INVOICE and found.total == Decimal("45.84")
    assert provider.store.meta()["pending_drafts"] == {}


def test_find_draft_lists_the_customer_when_the_pending_record_names_it(
    provider: Any, rsps: Any
) -> None:
    provider.store.update_meta(
        pending_drafts={KEY: {"invoice": "in_Gone", "customer": "cus_A", "at": 0}}
    )
    rsps.add(
        responses.GET, f"{API}/v1/invoices/in_Gone", json=fx("error__missing_invoice"), status=404
    )
    rsps.add(responses.GET, f"{API}/v1/invoices", json=fx("invoice_list__customer"))
    found = provider.find_draft(KEY)
    assert found is not None and found.provider_id == INVOICE
    assert not any("/search" in c.request.url for c in rsps.calls)


def test_find_draft_uses_the_customer_the_pipeline_recorded(
    provider: Any, workspace: Any, rsps: Any
) -> None:
    from connector import db
    from connector.models import Draft, Timesheet

    with db.session_scope() as s:
        ts = Timesheet(workspace_id=workspace.id, source="webwork", timesheet_id="ts-991",
                       status="approved")  # fmt: skip
        s.add(ts)
        s.flush()
        s.add(Draft(workspace_id=workspace.id, timesheet_pk=ts.id, revision="rev1-abc",
                    subject_key="customer:cus_A", key=KEY, customer_id="cus_A"))  # fmt: skip
    rsps.add(responses.GET, f"{API}/v1/invoices", json=fx("invoice_list__customer"))
    found = provider.find_draft(KEY)
    assert found is not None and found.provider_id == INVOICE
    assert "customer=cus_A" in rsps.calls[0].request.url
    assert len(rsps.calls) == 1  # strongly consistent list: no search needed

    rsps.replace(responses.GET, f"{API}/v1/invoices", json=fx("invoice_list__empty"))
    assert provider.find_draft(KEY) is None
    assert not any("/search" in c.request.url for c in rsps.calls)


def test_find_draft_nothing_anywhere(provider: Any, rsps: Any) -> None:
    rsps.add(
        responses.GET,
        f"{API}/v1/invoices/search",
        json={"object": "search_result", "data": [], "has_more": False, "next_page": None},
    )
    assert provider.find_draft(KEY) is None


# --- credentials ---------------------------------------------------------------------------------
def test_revoked_key_marks_the_connection_and_asks_for_reconnect(
    app: Any, workspace: Any, provider: Any, rsps: Any
) -> None:
    rsps.add(responses.POST, f"{API}/v1/invoices", json=fx("error__invalid_api_key"), status=401)
    with pytest.raises(ReconnectNeeded):
        provider.create_draft(make_draft())
    row = provider.store.connection()
    assert row.status == ConnectionStatus.RECONNECT_NEEDED
    assert "reconnect" in row.last_error.lower()
    # Jobs built afterwards wait instead of hammering Stripe with a dead key.
    with pytest.raises(ReconnectNeeded):
        stripe_provider.create(workspace.id, provider.store, app.config)


def test_missing_permission_asks_for_reconnect(provider: Any, rsps: Any) -> None:
    rsps.add(responses.POST, f"{API}/v1/invoices", json=fx("error__permission"), status=403)
    with pytest.raises(ReconnectNeeded, match="permission"):
        provider.create_draft(make_draft())


@pytest.fixture
def connect_provider(app: Any, workspace: Any, limiter: RecordingLimiter) -> Any:
    s = DbCredentialStore(workspace.id, "stripe", secret_box(app.config))
    s.connect(
        {"method": "oauth", "stripe_user_id": "acct_1Conn"},
        account_id="acct_1Conn",
        environment="live",
        meta={"customer_currencies": {"cus_A": "usd"}},
    )
    config = dict(app.config, STRIPE_PLATFORM_SECRET_KEY="sk_live_platformKey1234wxyz")
    p = stripe_provider.create(workspace.id, s, config)
    p._limiter = limiter
    return p


def test_connect_calls_carry_stripe_account_and_use_live_limits(
    connect_provider: Any, rsps: Any, limiter: Any
) -> None:
    add_create(rsps)
    add_lines(rsps)
    created = connect_provider.create_draft(make_draft())
    for call in rsps.calls:
        assert call.request.headers["Stripe-Account"] == "acct_1Conn"
        assert call.request.headers["Authorization"] == "Bearer sk_live_platformKey1234wxyz"
    assert limiter.calls[0] == ("stripe:acct_1Conn", ((80, 1.0),))
    assert created.link == f"https://dashboard.stripe.com/acct_1Conn/invoices/{INVOICE}"


def test_deauthorized_account_is_reconnect_needed(connect_provider: Any, rsps: Any) -> None:
    rsps.add(responses.POST, f"{API}/v1/invoices", json=fx("error__account_invalid"), status=403)
    with pytest.raises(ReconnectNeeded):
        connect_provider.create_draft(make_draft())
    assert connect_provider.store.connection().status == ConnectionStatus.RECONNECT_NEEDED


def test_not_connected_is_reconnect_needed(app: Any, workspace: Any) -> None:
    s = DbCredentialStore(workspace.id, "stripe", secret_box(app.config))
    with pytest.raises(ReconnectNeeded):
        stripe_provider.create(workspace.id, s, app.config)


def test_invalid_request_is_rejected_with_stripes_words(provider: Any, rsps: Any) -> None:
    rsps.add(responses.POST, f"{API}/v1/invoices", json=fx("error__param"), status=400)
    with pytest.raises(Rejected) as err:
        provider.create_draft(make_draft())
    assert err.value.message == "Invalid integer: 12.5"
    assert err.value.detail == "parameter days_until_due"


def test_connection_error_on_a_read_is_retry_later_with_known_outcome(
    provider: Any, rsps: Any
) -> None:
    rsps.add(responses.GET, f"{API}/v1/customers/cus_A", body=requests.exceptions.ConnectTimeout())
    with pytest.raises(RetryLater) as err:
        provider.get_customer("cus_A")
    assert err.value.outcome_unknown is False
    assert not isinstance(err.value, stripe.StripeError)


# --- removal and links ---------------------------------------------------------------------------
def test_remove_a_draft_deletes_it(provider: Any, rsps: Any) -> None:
    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}", json=fx("invoice__draft_with_lines"))
    rsps.add(responses.DELETE, f"{API}/v1/invoices/{INVOICE}", json=fx("invoice__deleted"))
    assert provider.remove_draft(INVOICE) is RemovalOutcome.DELETED
    assert [c.request.method for c in rsps.calls] == ["GET", "DELETE"]


@pytest.mark.parametrize(
    ("fixture", "status", "outcome"),
    [
        ("invoice__open", 200, RemovalOutcome.NOT_A_DRAFT),
        ("invoice__void", 200, RemovalOutcome.ALREADY_GONE),
        ("error__missing_invoice", 404, RemovalOutcome.ALREADY_GONE),
    ],
)
def test_remove_leaves_non_drafts_alone(
    provider: Any, rsps: Any, fixture: str, status: int, outcome: RemovalOutcome
) -> None:
    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}", json=fx(fixture), status=status)
    assert provider.remove_draft(INVOICE) is outcome
    assert all(c.request.method == "GET" for c in rsps.calls)


def test_draft_links(provider: Any) -> None:
    assert provider.draft_link("in_9") == "https://dashboard.stripe.com/test/invoices/in_9"
    provider.environment = "live"
    assert provider.draft_link("in_9") == "https://dashboard.stripe.com/invoices/in_9"
    provider.method, provider.environment = "oauth", "test"
    provider.account_id = "acct_1Conn"
    assert (
        provider.draft_link("in_9") == "https://dashboard.stripe.com/acct_1Conn/test/invoices/in_9"
    )


# --- customers -----------------------------------------------------------------------------------
def test_list_customers_pages_with_starting_after(provider: Any, rsps: Any) -> None:
    rsps.add(responses.GET, f"{API}/v1/customers", json=fx("customer_list__page1"))
    rsps.add(responses.GET, f"{API}/v1/customers", json=fx("customer_list__page2"))
    customers = list(provider.iter_customers())
    assert [c.id for c in customers] == ["cus_A", "cus_B", "cus_C"]
    assert [c.currency for c in customers] == ["USD", None, "EUR"]
    assert "starting_after=cus_B" in rsps.calls[1].request.url
    # Locked currencies seen while listing spare a GET at draft time.
    assert provider.store.meta()["customer_currencies"] == {"cus_A": "usd", "cus_C": "eur"}


def test_list_customers_searches_by_name_or_email(provider: Any, rsps: Any) -> None:
    rsps.add(responses.GET, f"{API}/v1/customers/search", json=fx("customer_search__globex"))
    page = provider.list_customers(query='Glo"bex')
    assert [c.name for c in page.customers] == ["Globex Corporation"]
    assert page.next_cursor == "s:WzE3NzAwMDAwMDAsImN1c19BIl0="
    query = parse_qs(rsps.calls[0].request.url.split("?", 1)[1])["query"][0]
    assert query == 'name~"Glo\\"bex" OR email~"Glo\\"bex"'


def test_search_unavailable_falls_back_to_listing(provider: Any, rsps: Any) -> None:
    rsps.add(
        responses.GET,
        f"{API}/v1/customers/search",
        json=fx("error__search_unavailable"),
        status=400,
    )
    rsps.add(responses.GET, f"{API}/v1/customers", json=fx("customer_list__page1"))
    page = provider.list_customers(query="hooli")
    assert [c.id for c in page.customers] == ["cus_B"]
    assert page.next_cursor == "l:cus_B"


def test_get_customer(provider: Any, rsps: Any) -> None:
    rsps.add(responses.GET, f"{API}/v1/customers/cus_New", json=fx("customer__unlocked"))
    rsps.add(responses.GET, f"{API}/v1/customers/cus_Gone", json=fx("customer__deleted"))
    rsps.add(
        responses.GET,
        f"{API}/v1/customers/cus_None",
        status=404,
        json={"error": {"type": "invalid_request_error", "code": "resource_missing",
                        "message": "No such customer: 'cus_None'", "param": "id"}},
    )  # fmt: skip
    unlocked = provider.get_customer("cus_New")
    assert unlocked is not None and unlocked.currency is None and unlocked.name == "Initech"
    assert provider.get_customer("cus_Gone") is None
    assert provider.get_customer("cus_None") is None


def test_create_customer_with_tracker_metadata_and_a_stable_key(provider: Any, rsps: Any) -> None:
    rsps.add(responses.POST, f"{API}/v1/customers", json=fx("customer__unlocked"))
    new = NewCustomer(name=" Initech ", email="ap@initech.example", tracker_id="client-7")
    created = provider.create_customer(new)
    provider.create_customer(new)
    first, second = rsps.calls
    body = form(first)
    assert body == {
        "name": "Initech",
        "email": "ap@initech.example",
        "metadata[tracker_client_id]": "client-7",
        "metadata[workspace_id]": str(provider.workspace_id),
    }
    assert first.request.headers["Idempotency-Key"] == second.request.headers["Idempotency-Key"]
    assert created.id == "cus_New" and created.currency is None


def test_credentials_are_encrypted_at_rest(app: Any, store: DbCredentialStore) -> None:
    from sqlalchemy import select

    from connector import db

    with db.new_session() as s:
        raw = s.scalars(select(Connection.credentials_encrypted)).one()
    assert API_KEY not in raw and "rk_test" not in raw
    assert store.load()["api_key"] == API_KEY
    assert json.dumps(store.meta()).find(API_KEY) == -1


def test_replayed_500_on_add_lines_looks_at_the_lines_then_adds_under_a_fresh_key(
    provider: Any, rsps: Any
) -> None:
    """Stripe stores a 500 under the ``:lines:0`` key and replays it: the same key never helps."""
    add_create(rsps)
    replayed = {"status": 500, "headers": {"Idempotent-Replayed": "true"}}
    rsps.add(
        responses.POST,
        f"{API}/v1/invoices/{INVOICE}/add_lines",
        json=fx("error__api_500"),
        **replayed,
    )
    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}/lines", json=fx("invoice_lines__empty"))
    add_lines(rsps)

    created = provider.create_draft(make_draft())

    first, second = posts(rsps, f"/v1/invoices/{INVOICE}/add_lines")
    assert first.request.headers["Idempotency-Key"] == f"{KEY}:lines:0"
    assert second.request.headers["Idempotency-Key"].startswith(f"{KEY}:lines:0:")
    assert second.request.headers["Idempotency-Key"] != f"{KEY}:lines:0"
    assert form(second)["lines[1][metadata][line]"] == "1"
    assert len(posts(rsps, "/v1/invoices")) == 1
    assert created.provider_id == INVOICE and created.total == Decimal("45.84")
    assert provider.store.meta()["pending_drafts"] == {}


def test_replayed_500_on_add_lines_when_resuming_uses_a_fresh_key_too(
    provider: Any, rsps: Any
) -> None:
    provider.store.update_meta(
        pending_drafts={KEY: {"invoice": INVOICE, "customer": "cus_A", "at": 0}}
    )
    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}", json=fx("invoice__draft_created"))
    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}/lines", json=fx("invoice_lines__empty"))
    rsps.add(
        responses.POST,
        f"{API}/v1/invoices/{INVOICE}/add_lines",
        json=fx("error__api_500"),
        status=500,
        headers={"Idempotent-Replayed": "true"},
    )
    add_lines(rsps)

    created = provider.create_draft(make_draft())

    keys = [
        c.request.headers["Idempotency-Key"]
        for c in posts(rsps, f"/v1/invoices/{INVOICE}/add_lines")
    ]
    assert keys[0] == f"{KEY}:lines:0" and len(keys) == 2 and keys[1] != keys[0]
    assert created.provider_id == INVOICE


def test_replayed_500_on_add_lines_with_the_lines_already_there_adds_nothing(
    provider: Any, rsps: Any
) -> None:
    add_create(rsps)
    rsps.add(
        responses.POST,
        f"{API}/v1/invoices/{INVOICE}/add_lines",
        json=fx("error__api_500"),
        status=500,
        headers={"Idempotent-Replayed": "true"},
    )
    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}/lines", json=fx("invoice_lines__all"))
    rsps.add(responses.GET, f"{API}/v1/invoices/{INVOICE}", json=fx("invoice__draft_with_lines"))

    created = provider.create_draft(make_draft())

    assert len(posts(rsps, f"/v1/invoices/{INVOICE}/add_lines")) == 1
    assert created.provider_id == INVOICE and created.total == Decimal("45.84")
