"""The first-run checklist, the Drafts page and its JSON twin, plain words, styled errors."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from connector import db
from connector.models import Connection, ConnectionStatus, Draft, Workspace
from tests.admin.events import add_local_customer, approval, live_drafts
from tests.app_fixtures import csrf_token


def _steps(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-step="(\w+)" data-state="(\w+)"', html))


def _set(workspace_id: int, **values: Any) -> None:
    with db.session_scope() as s:
        ws = s.get(Workspace, workspace_id)
        for key, value in values.items():
            setattr(ws, key, value)


def test_new_workspace_shows_every_step_with_its_state(admin_client: Any, make_workspace: Any):
    page = admin_client.get("/")
    assert page.status_code == 302
    ws_id = int(page.headers["Location"].rsplit("/", 1)[-1])
    _set(ws_id, auto_invoicing=False)
    html = admin_client.get(f"/workspaces/{ws_id}").get_data(as_text=True)
    assert _steps(html) == {
        "tracker": "todo",
        "accounting": "done",  # the built-in ledger needs nothing
        "mapping": "waiting",
        "rates": "todo",
        "auto": "todo",
    }
    assert "/webhooks/webwork/" in html
    assert "Switch automatic invoicing on" in html


def test_checklist_goes_from_new_workspace_to_done(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    ws = f"/workspaces/{workspace.id}"
    _set(workspace.id, auto_invoicing=False)
    token = csrf_token(admin_client)
    r = admin_client.post(f"{ws}/auto-invoicing", data={"csrf_token": token, "enabled": "on"})
    assert r.status_code == 302
    assert post_event(workspace, approval()).status_code == 202
    steps = _steps(admin_client.get(ws).get_data(as_text=True))
    assert steps["tracker"] == "done" and steps["auto"] == "done"
    assert steps["mapping"] == "todo"
    add_local_customer(workspace.id, "Globex", "ap@globex.example")
    r = admin_client.post(
        f"{ws}/mappings",
        data={"csrf_token": token, "kind": "client", "tracker_id": "cl1", "customer_id": "1"},
    )
    assert r.status_code == 302
    html = admin_client.get(ws).get_data(as_text=True)
    assert "Set up this workspace" not in html  # all done: the checklist gives way
    assert [d.status for d in live_drafts(workspace.id)] == ["drafted"]


def test_non_billable_projects_never_nag_as_unmapped(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    assert post_event(workspace, approval(billable=False)).status_code == 202
    steps = _steps(admin_client.get(f"/workspaces/{workspace.id}").get_data(as_text=True))
    assert steps["mapping"] == "done"


def test_quickbooks_never_connected_says_connect_first(admin_client: Any, workspace: Any):
    _set(workspace.id, provider="quickbooks")
    html = admin_client.get(f"/workspaces/{workspace.id}").get_data(as_text=True)
    assert _steps(html)["accounting"] == "todo"
    assert "not connected yet" in html and "reconnect" not in html.lower()
    assert "Keep the built-in ledger instead" in html
    token = csrf_token(admin_client)
    admin_client.post(f"/workspaces/{workspace.id}/use-ledger", data={"csrf_token": token})
    with db.new_session() as s:
        assert s.get(Workspace, workspace.id).provider == "local"


def test_quickbooks_reconnect_only_when_it_was_connected(admin_client: Any, workspace: Any):
    _set(workspace.id, provider="quickbooks")
    with db.session_scope() as s:
        s.add(
            Connection(
                workspace_id=workspace.id,
                provider="quickbooks",
                status=ConnectionStatus.RECONNECT_NEEDED,
            )
        )
    html = admin_client.get(f"/workspaces/{workspace.id}").get_data(as_text=True)
    assert "needs to be reconnected" in html


def test_drafts_page_filters_and_totals(admin_client: Any, workspace: Any, post_event: Any):
    add_local_customer(workspace.id, "Globex", "ap@globex.example")
    token = csrf_token(admin_client)
    admin_client.post(
        f"/workspaces/{workspace.id}/mappings",
        data={"csrf_token": token, "kind": "client", "tracker_id": "cl1", "customer_id": "1"},
    )
    post_event(workspace, approval("ts-1"))
    post_event(workspace, approval("ts-2", total_minutes=60))
    post_event(workspace, approval("ts-3", project_id="p9", client={"id": "cl9", "name": "Hooli"}))
    html = admin_client.get(f"/workspaces/{workspace.id}/drafts").get_data(as_text=True)
    assert "2 invoice(s); 1 approval draft(s) held" in html  # one row per provider document
    assert html.count("data-invoice-id=") == 2
    assert '<dd class="num" data-currency="USD">82.50 USD</dd>' in html  # 55.00 + 27.50
    assert "2 h" in html and "1 h" in html
    held = admin_client.get(f"/workspaces/{workspace.id}/drafts?status=held")
    held_html = held.get_data(as_text=True)
    assert held_html.count("data-draft-id=") == 1 and "data-invoice-id=" not in held_html
    by_customer = admin_client.get(f"/workspaces/{workspace.id}/drafts?customer=1")
    assert by_customer.get_data(as_text=True).count("data-invoice-id=") == 2
    assert "project:" not in html  # no internal keys


def test_drafts_api_lists_pages_and_totals(client: Any, workspace: Any, post_event: Any):
    add_local_customer(workspace.id, "Globex", "ap@globex.example")
    post_event(workspace, approval("ts-1"))
    body = client.get("/api/v1/drafts?status=held", headers=workspace.auth).get_json()
    assert body["total"] == 1 and body["drafts"][0]["status"] == "needs_mapping"
    assert body["drafts"][0]["timesheet"]["id"] == "ts-1"
    assert body["totals"] == {}
    bad = client.get("/api/v1/drafts?status=nope", headers=workspace.auth)
    assert bad.status_code == 422 and bad.get_json()["field"] == "/status"
    bad = client.get("/api/v1/drafts?limit=0", headers=workspace.auth)
    assert bad.status_code == 422 and bad.get_json()["field"] == "/limit"


def test_styled_error_pages(admin_client: Any, workspace: Any) -> None:
    missing = admin_client.get("/workspaces/999999/nothing-here")
    assert missing.status_code == 404 and "Page not found" in missing.get_data(as_text=True)
    assert "admin.css" in missing.get_data(as_text=True)
    long = admin_client.get(f"/workspaces/{workspace.id}/drafts?status=" + "x" * 5000)
    assert long.status_code == 414 and "Address too long" in long.get_data(as_text=True)
    no_csrf = admin_client.post(f"/workspaces/{workspace.id}/auto-invoicing")
    assert no_csrf.status_code == 400 and "admin.css" in no_csrf.get_data(as_text=True)


def test_quickbooks_not_configured_is_a_styled_page_naming_the_settings(
    admin_client: Any, workspace: Any
) -> None:
    page = admin_client.get(f"/workspaces/{workspace.id}/connections/quickbooks/connect")
    html = page.get_data(as_text=True)
    assert page.status_code == 400
    assert "admin.css" in html and "QUICKBOOKS_CLIENT_ID" in html


def test_removing_a_mapping_asks_first_and_says_what_follows(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    add_local_customer(workspace.id, "Globex", "ap@globex.example")
    token = csrf_token(admin_client)
    base = f"/workspaces/{workspace.id}/mappings"
    admin_client.post(
        base, data={"csrf_token": token, "kind": "client", "tracker_id": "cl1", "customer_id": "1"}
    )
    post_event(workspace, approval("ts-1"))
    post_event(workspace, approval("ts-2"))
    fields = {"csrf_token": token, "kind": "client", "tracker_id": "cl1"}
    ask = admin_client.post(f"{base}/remove", data=fields)
    html = ask.get_data(as_text=True)
    assert ask.status_code == 200
    assert "2 draft(s) were created with this mapping; they stay as they are." in html
    assert "Remove the mapping of client Globex to Globex?" in html
    assert 'name="confirmed" value="yes"' in html
    assert "Globex" in admin_client.get(base).get_data(as_text=True)  # still mapped
    done = admin_client.post(f"{base}/remove", data={**fields, "confirmed": "yes"})
    assert done.status_code == 302
    assert [d.status for d in live_drafts(workspace.id)] == ["drafted", "drafted"]
    from mappings.service import get_mapping

    assert get_mapping(db.session, workspace.id, "client", "cl1") is None


def test_settings_show_every_fields_error_at_once_and_check_iso_4217(
    admin_client: Any, workspace: Any
):
    page = admin_client.post(
        f"/workspaces/{workspace.id}/settings",
        data={
            "csrf_token": csrf_token(admin_client),
            "grouping": "customer",
            "billing_increment": "7",
            "payment_terms_days": "30",
            "default_currency": "ABC",  # three letters, not a currency
            "tax_code": "T" * 101,  # the customer tax code's limit applies here too
            "provider": "local",
        },
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    assert 'id="billing_increment-error"' in html
    assert 'id="default_currency-error"' in html and "ABC is not a currency" in html
    assert 'id="tax_code-error"' in html and "at most 100 characters" in html


def test_create_customer_checks_email_and_currency_together(admin_client: Any, workspace: Any):
    page = admin_client.post(
        f"/workspaces/{workspace.id}/mappings/create-customer",
        data={
            "csrf_token": csrf_token(admin_client),
            "kind": "client",
            "tracker_id": "cl1",
            "name": "Globex",
            "email": "billing@",
            "currency": "XYZ",
        },
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    assert 'id="new-email-error"' in html and 'id="new-currency-error"' in html
    from connector.models import LocalCustomer

    assert db.session.query(LocalCustomer).count() == 0


def test_rates_and_mappings_refuse_made_up_currencies(admin_client: Any, workspace: Any):
    page = admin_client.post(
        f"/workspaces/{workspace.id}/rates",
        data={"csrf_token": csrf_token(admin_client), "amount": "50", "currency": "QQQ"},
    )
    assert page.status_code == 422 and "ISO 4217" in page.get_data(as_text=True)
    from mappings.service import MappingError, set_mapping

    with db.session_scope() as s:
        try:
            set_mapping(
                s, workspace.id, kind="client", tracker_id="c", customer_id="1",
                customer_name="x", customer_currency="ZZZ",
            )  # fmt: skip
        except MappingError as exc:
            assert exc.field == "customer_currency"
        else:
            raise AssertionError("ZZZ accepted as a currency")


def test_mapping_page_is_searchable_paginated_and_quiet_about_non_billable(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    for n in range(60):
        post_event(
            workspace,
            approval(
                f"ts-{n}",
                project_id=f"p{n:02d}",
                project_name=f"Project {n:02d}",
                client={"id": f"c{n:02d}", "name": f"Client {n:02d}"},
                billable=n != 7,
            ),
        )
    base = f"/workspaces/{workspace.id}/mappings"
    first = admin_client.get(base).get_data(as_text=True)
    assert "Page 1 of 3" in first and "120 client(s) and project(s)" in first
    found = admin_client.get(f"{base}?q=Project+07").get_data(as_text=True)
    assert found.count('data-tracker-id="p07"') == 1
    assert "Not billable: needs no customer" in found
    unmapped = admin_client.get(f"{base}?show=unmapped").get_data(as_text=True)
    assert "118 client(s) and project(s) match" in unmapped


def test_suggestions_rank_every_customer_fetched_once_per_connection() -> None:
    from connector.providers.base import AccountingCustomer
    from mappings import service

    class PagedProvider:
        calls = 0

        def iter_customers(self) -> Any:
            PagedProvider.calls += 1
            for n in range(5000):
                yield AccountingCustomer(id=str(n), name=f"Customer {n}")

    key = (991, "stripe", 1, "acct", "t0")
    try:
        first = service.fetch_customers(PagedProvider(), cache_key=key)  # type: ignore[arg-type]
        again = service.fetch_customers(PagedProvider(), cache_key=key)  # type: ignore[arg-type]
    finally:
        service.forget_customers(991)
    assert len(first) == 5000 and first[-1].name == "Customer 4999"  # past the old 2,000 cut
    assert again is first and PagedProvider.calls == 1


def test_replay_says_its_outcome(admin_client: Any, workspace: Any, post_event: Any) -> None:
    post_event(workspace, approval("ts-1"))
    response = admin_client.post(
        f"/workspaces/{workspace.id}/deliveries/1/replay",
        data={"csrf_token": csrf_token(admin_client)},
    )
    assert response.status_code == 303  # post/redirect/get: the page shows the replay's state
    assert response.headers["Location"].endswith("/deliveries/1?replay=2")
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="replay-outcome" data-done="yes"' in page
    assert "Replayed delivery #1: the approval now has 0 drafted and 1 held" in page
    assert 'http-equiv="refresh"' not in page  # finished: nothing to wait for


def test_delivery_errors_are_rewritten_with_the_detail_folded() -> None:
    from connector.admin.words import explain_delivery_error

    problem = explain_delivery_error("/data/timesheet/date_to: is before date_from")
    assert problem is not None
    assert problem.summary.startswith("The timesheet's end date is before its start date")
    assert problem.detail == "/data/timesheet/date_to: is before date_from"
    assert explain_delivery_error(None) is None


def test_hours_are_shown_one_way() -> None:
    from connector.admin.words import hours_minutes

    assert [hours_minutes(m) for m in (530, 120, 45, 0)] == ["8 h 50 min", "2 h", "45 min", "0 min"]


def test_overview_links_the_drafts_page_and_shows_no_internal_keys(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    post_event(workspace, approval("ts-1"))
    html = admin_client.get(f"/workspaces/{workspace.id}").get_data(as_text=True)
    assert "1 draft(s): Needs a customer" in html
    assert "needs_mapping</a>" not in html and "needs mapping" not in html
    approval_html = admin_client.get(f"/workspaces/{workspace.id}/approvals/1").get_data(
        as_text=True
    )
    assert "project:p1" not in approval_html
    assert '<td data-label="Hours" class="num">2 h</td>' in approval_html
    assert "No customer yet (project Website)" in approval_html


def test_rate_form_marks_every_bad_field_at_once(admin_client: Any, workspace: Any) -> None:
    page = admin_client.post(
        f"/workspaces/{workspace.id}/rates",
        data={
            "csrf_token": csrf_token(admin_client),
            "amount": "abc",
            "currency": "QQQ",
            "effective_from": "tomorrow",
        },
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    for field in ("amount", "currency", "effective_from"):
        assert f'id="{field}-error"' in html
    assert "3 field(s) need a change" in html


def test_an_unexpected_error_is_a_styled_500(
    admin_client: Any, workspace: Any, monkeypatch: Any
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("simulated")

    monkeypatch.setattr("connector.admin.drafts.invoices_query", boom)
    page = admin_client.get(f"/workspaces/{workspace.id}/drafts")
    html = page.get_data(as_text=True)
    assert page.status_code == 500
    assert "Something went wrong on our side" in html and "admin.css" in html
    assert "simulated" not in html
    assert 'rel="icon"' in html
    assert admin_client.get("/admin/static/favicon.svg").status_code == 200


def test_customer_settings_mark_every_bad_field_and_share_the_tax_code_limit(
    admin_client: Any, workspace: Any
) -> None:
    add_local_customer(workspace.id, "Globex", "ap@globex.example")
    token = csrf_token(admin_client)
    admin_client.post(
        f"/workspaces/{workspace.id}/mappings",
        data={"csrf_token": token, "kind": "client", "tracker_id": "cl1", "customer_id": "1"},
    )
    page = admin_client.post(
        f"/workspaces/{workspace.id}/customers/1/settings",
        data={
            "csrf_token": token,
            "grouping": "",
            "billing_increment": "7",
            "payment_terms_days": "-1",
            "tax_code": "T" * 101,
        },
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    for field in ("billing_increment", "payment_terms_days", "tax_code"):
        assert f'id="{field}-error"' in html, field


def test_holds_mapping_and_create_customer_say_connect_first_when_never_connected(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    _set(workspace.id, provider="quickbooks")
    assert post_event(workspace, approval("ts-1")).status_code == 202
    [draft] = live_drafts(workspace.id)
    ws = f"/workspaces/{workspace.id}"
    html = admin_client.get(f"{ws}/approvals/{draft.timesheet_pk}").get_data(as_text=True)
    assert "Connect QuickBooks Online first" in html
    assert ">Connect QuickBooks Online</a>" in html
    assert "Reconnect" not in html and "not mapped to a customer" not in html
    mapping = admin_client.get(f"{ws}/mappings").get_data(as_text=True)
    assert "Connect QuickBooks Online first" in mapping and "reconnected" not in mapping
    edit = admin_client.get(f"{ws}/mappings/client/cl1").get_data(as_text=True)
    assert "Connect QuickBooks Online first" in edit and "Create and map" not in edit
    created = admin_client.post(
        f"{ws}/mappings/create-customer",
        data={
            "csrf_token": csrf_token(admin_client),
            "kind": "client",
            "tracker_id": "cl1",
            "name": "Globex",
        },
    )
    assert created.status_code == 409
    assert "Connect QuickBooks Online first" in created.get_data(as_text=True)


def test_rebilling_status_json_and_rows(
    admin_client: Any, workspace: Any, make_workspace: Any, post_event: Any
) -> None:
    from webhooks.inbox import new_job

    post_event(workspace, approval("ts-1"))
    [draft] = live_drafts(workspace.id)
    ws = f"/workspaces/{workspace.id}"
    body = admin_client.get(f"{ws}/approvals/status.json?ts={draft.timesheet_pk}").get_json()
    assert body["approvals"][str(draft.timesheet_pk)]["rebilling"] is False
    with db.session_scope() as s:
        s.add(new_job(workspace.id, "bill_timesheet", timesheet_pk=draft.timesheet_pk))
    # Ids nobody has are left out; text that is no id is a 400 naming ts (issue #20).
    assert admin_client.get(f"{ws}/approvals/status.json?ts=1,x").status_code == 400
    body = admin_client.get(f"{ws}/approvals/status.json?ts={draft.timesheet_pk},999").get_json()
    assert body["approvals"] == {
        str(draft.timesheet_pk): {
            "rebilling": True,
            "drafts": [{"id": draft.id, "status": "needs_mapping", "label": "Needs a customer"}],
        }
    }
    html = admin_client.get(f"{ws}/approvals").get_data(as_text=True)
    assert 'data-rebilling="1"' in html and "Re-billing with your change" in html
    assert "not mapped to a customer" not in html  # the stale hold text gives way
    drafts_html = admin_client.get(f"{ws}/drafts").get_data(as_text=True)
    assert "Re-billing…" in drafts_html
    other = make_workspace(tracker_workspace_id="777")
    assert admin_client.get(f"/workspaces/{other.id}/approvals/status.json").status_code == 404


def test_drafts_filter_by_where_the_invoice_stands_in_the_books(
    admin_client: Any, client: Any, workspace: Any, post_event: Any
) -> None:
    """The Drafts page and GET /api/v1/drafts show and filter the provider's state (status sync):
    finance sees at a glance which drafts were sent or paid."""
    add_local_customer(workspace.id, "Globex", "ap@globex.example")
    token = csrf_token(admin_client)
    admin_client.post(
        f"/workspaces/{workspace.id}/mappings",
        data={"csrf_token": token, "kind": "client", "tracker_id": "cl1", "customer_id": "1"},
    )
    post_event(workspace, approval("ts-1"))
    post_event(workspace, approval("ts-2"))
    with db.session_scope() as s:  # what the status sync records: on the invoice and its draft
        first, second = s.scalars(select(Draft).order_by(Draft.id)).all()
        first.provider_status, second.provider_status = "paid", "draft"
        first.invoice.provider_status, second.invoice.provider_status = "paid", "draft"

    body = client.get("/api/v1/drafts?provider_status=paid", headers=workspace.auth).get_json()
    assert [d["timesheet"]["id"] for d in body["drafts"]] == ["ts-1"]
    assert body["drafts"][0]["provider_status"] == "paid"
    bad = client.get("/api/v1/drafts?provider_status=lost", headers=workspace.auth)
    assert bad.status_code == 422 and bad.get_json()["field"] == "/provider_status"

    page = admin_client.get(f"/workspaces/{workspace.id}/drafts?in_books=paid")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "1 invoice(s) match" in html
    assert 'data-provider-status="paid"' in html and 'data-provider-status="draft"' not in html
    everything = admin_client.get(f"/workspaces/{workspace.id}/drafts").get_data(as_text=True)
    assert 'data-provider-status="paid"' in everything
    assert 'data-provider-status="draft"' in everything
