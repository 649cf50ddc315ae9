"""The admin console: sign-in, CSRF, isolation between workspaces, and each page's job."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from connector import db
from connector.models import ApiToken, Delivery, DraftStatus, Job, Workspace
from tests.admin.events import add_local_customer, approval, live_drafts
from tests.app_fixtures import csrf_token


def test_login_logout_and_next(app: Any, workspace: Any, make_admin: Any) -> None:
    make_admin(workspace, email="ada@example.com", password="correct horse")
    client = app.test_client()
    page = client.get(f"/workspaces/{workspace.id}/approvals")
    assert page.status_code == 302 and "/login" in page.headers["Location"]

    token = csrf_token(client)
    bad = client.post(
        "/login", data={"email": "ada@example.com", "password": "nope", "csrf_token": token}
    )
    assert bad.status_code == 401
    assert b"do not match" in bad.data
    unknown = client.post(
        "/login", data={"email": "who@example.com", "password": "x", "csrf_token": token}
    )
    assert unknown.status_code == 401

    nxt = f"/workspaces/{workspace.id}/approvals"
    ok = client.post(
        f"/login?next={nxt}",
        data={"email": "ADA@example.com ", "password": "correct horse", "csrf_token": token},
    )
    assert ok.status_code == 302 and ok.headers["Location"].endswith(nxt)
    assert client.get(nxt).status_code == 200

    client.post("/logout", data={"csrf_token": csrf_token(client)})
    signed_out = client.get(nxt)
    assert signed_out.status_code == 302 and urlsplit(signed_out.location).path == "/login"


def test_login_never_redirects_off_site(app: Any, workspace: Any, make_admin: Any) -> None:
    make_admin(workspace, email="ada@example.com", password="correct horse")
    client = app.test_client()
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = client.post(
            "/login",
            query_string={"next": target},
            data={
                "email": "ada@example.com",
                "password": "correct horse",
                "csrf_token": csrf_token(client),
            },
        )
        assert response.status_code == 302
        assert "evil" not in response.headers["Location"]
        client.post("/logout", data={"csrf_token": csrf_token(client)})


def test_form_post_without_csrf_token_is_refused(admin_client: Any, workspace: Any) -> None:
    url = f"/workspaces/{workspace.id}/tokens"
    assert admin_client.post(url, data={"name": "x"}).status_code == 400
    assert admin_client.post("/login", data={"email": "a@b.c", "password": "x"}).status_code == 400
    ok = admin_client.post(url, data={"name": "x", "csrf_token": csrf_token(admin_client)})
    assert ok.status_code == 303  # created, then shown by a GET (post/redirect/get)


def test_admin_of_a_gets_404_on_every_page_of_b(
    app: Any, admin_client: Any, workspace: Any, make_workspace: Any
) -> None:
    other = make_workspace(tracker_workspace_id="9999")
    token = csrf_token(admin_client)
    checked = 0
    for rule in app.url_map.iter_rules():
        if "workspace_id" not in rule.arguments or rule.rule.startswith("/api/"):
            continue
        values = {a: (other.id if a == "workspace_id" else 1) for a in rule.arguments}
        values.update({k: "x" for k in ("kind", "tracker_id") if k in rule.arguments})
        if "kind" in values:
            values["kind"] = "project"
        adapter = app.url_map.bind("localhost")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = adapter.build(rule.endpoint, values, method=method)
            response = admin_client.open(url, method=method, data={"csrf_token": token})
            assert response.status_code == 404, (method, url, response.status_code)
            checked += 1
    assert checked > 20
    # And B's data is absent from A's pages.
    assert admin_client.get(f"/workspaces/{workspace.id}").status_code == 200
    listing = admin_client.get("/workspaces").data.decode()
    assert "Acme 9999" not in listing


def test_settings_save_and_name_the_bad_field(admin_client: Any, workspace: Any) -> None:
    url = f"/workspaces/{workspace.id}/settings"
    assert admin_client.get(url).status_code == 200
    form = {
        "csrf_token": csrf_token(admin_client),
        "grouping": "project_day",
        "billing_increment": "15",
        "payment_terms_days": "14",
        "default_currency": "eur",
        "tax_code": "",
        "provider": "local",
    }
    assert admin_client.post(url, data=form).status_code == 302
    ws = db.session.get(Workspace, workspace.id)
    db.session.refresh(ws)
    assert ws.settings["grouping"] == "project_day"
    assert ws.settings["default_currency"] == "EUR"
    assert ws.auto_invoicing is False  # the unchecked box turns it off

    bad = admin_client.post(url, data=form | {"payment_terms_days": "900"})
    assert bad.status_code == 422
    assert b"payment_terms_days-error" in bad.data
    assert b"between 0 and 365" in bad.data


def test_api_token_shown_once_then_revoked(admin_client: Any, workspace: Any, client: Any) -> None:
    url = f"/workspaces/{workspace.id}/tokens"
    page = admin_client.post(
        url,
        data={"name": "reporting", "csrf_token": csrf_token(admin_client)},
        follow_redirects=True,
    )
    assert page.headers["Cache-Control"] == "no-store"
    token = re.search(r'id="new-token">(tsi_[^<]+)<', page.data.decode()).group(1)
    assert (
        client.get("/api/v1/settings", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    assert token not in admin_client.get(url).data.decode()

    row = db.session.scalars(select(ApiToken).where(ApiToken.name == "reporting")).one()
    ask = admin_client.post(f"{url}/{row.id}/revoke", data={"csrf_token": csrf_token(admin_client)})
    assert ask.status_code == 200 and "gets 401 from now on" in ask.get_data(as_text=True)
    assert (  # asking changed nothing
        client.get("/api/v1/settings", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    admin_client.post(
        f"{url}/{row.id}/revoke",
        data={"csrf_token": csrf_token(admin_client), "confirmed": "yes"},
    )
    assert (
        client.get("/api/v1/settings", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )


def test_signing_secret_rotates_and_shows_once(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    url = f"/workspaces/{workspace.id}/signing-secret"
    assert "whsec_" not in admin_client.get(url).data.decode()
    page = admin_client.post(
        url,
        data={"action": "rotate", "csrf_token": csrf_token(admin_client)},
        follow_redirects=True,
    )
    secret = re.search(r'id="new-secret">(whsec_[^<]+)<', page.data.decode()).group(1)
    assert secret != workspace.signing_secret
    assert "whsec_" not in admin_client.get(url).data.decode()
    # Both the old and the new secret verify until the old one is retired.
    assert post_event(workspace, approval("ts-old")).status_code == 202
    workspace.signing_secret = secret
    assert post_event(workspace, approval("ts-new")).status_code == 202


def test_holds_release_themselves_after_mapping(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    assert post_event(workspace, approval()).status_code == 202
    [held] = live_drafts(workspace.id)
    assert held.status == DraftStatus.NEEDS_MAPPING

    page = admin_client.get(f"/workspaces/{workspace.id}/approvals?status=held").data.decode()
    assert "not mapped to a customer" in page
    assert f"/workspaces/{workspace.id}/mappings/project/p1" in page  # the fix button
    assert f"/workspaces/{workspace.id}/mappings/client/cl1" in page

    customer_id = add_local_customer(workspace.id, "Globex Corporation", "billing@globex.example")
    mappings_page = admin_client.get(f"/workspaces/{workspace.id}/mappings").data.decode()
    assert "Use Globex Corporation" in mappings_page  # suggested for client Globex

    response = admin_client.post(
        f"/workspaces/{workspace.id}/mappings",
        data={
            "csrf_token": csrf_token(admin_client),
            "kind": "client",
            "tracker_id": "cl1",
            "customer_id": customer_id,
        },
    )
    assert response.status_code == 302
    drafts = live_drafts(workspace.id)
    assert [d.status for d in drafts] == [DraftStatus.DRAFTED]
    assert drafts[0].customer_name == "Globex Corporation"
    assert drafts[0].total is not None and str(drafts[0].total) == "55.00"
    assert drafts[0].link.endswith(f"/workspaces/{workspace.id}/ledger/{drafts[0].provider_id}")

    page = admin_client.get(f"/workspaces/{workspace.id}/approvals").data.decode()
    assert "drafted" in page and "Open draft" in page
    ledger = admin_client.get(f"/workspaces/{workspace.id}/ledger/{drafts[0].provider_id}")
    assert ledger.status_code == 200 and b"55.00" in ledger.data


def test_accept_all_confident_suggestions(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    post_event(workspace, approval())
    add_local_customer(workspace.id, "Globex, Inc.", "ap@globex.example")
    add_local_customer(workspace.id, "Initech")
    response = admin_client.post(
        f"/workspaces/{workspace.id}/mappings/accept-confident",
        data={"csrf_token": csrf_token(admin_client)},
    )
    assert response.status_code == 302
    assert [d.status for d in live_drafts(workspace.id)] == [DraftStatus.DRAFTED]


def test_create_customer_and_duplicate_offer(
    admin_client: Any, workspace: Any, post_event: Any, monkeypatch: Any
) -> None:
    post_event(workspace, approval())
    form = {
        "csrf_token": csrf_token(admin_client),
        "kind": "project",
        "tracker_id": "p1",
        "name": "Website Co",
        "email": "",
        "currency": "USD",
    }
    url = f"/workspaces/{workspace.id}/mappings/create-customer"
    assert admin_client.post(url, data=form).status_code == 302
    assert [d.status for d in live_drafts(workspace.id)] == [DraftStatus.DRAFTED]

    from connector.providers.base import AccountingCustomer, DuplicateCustomer
    from connector.providers.local import LocalProvider

    def duplicate(self: Any, new: Any) -> Any:
        raise DuplicateCustomer(
            "The name supplied already exists.",
            existing=AccountingCustomer(id="77", name="Website Co"),
        )

    monkeypatch.setattr(LocalProvider, "create_customer", duplicate)
    page = admin_client.post(url, data=form)
    assert page.status_code == 409
    body = page.data.decode()
    assert "already has this customer" in body
    assert 'name="customer_id" value="77"' in body


def test_failed_draft_offers_retry(admin_client: Any, workspace: Any, post_event: Any) -> None:
    post_event(workspace, approval())
    [held] = live_drafts(workspace.id)
    with db.session_scope() as s:
        draft = s.get(type(held), held.id)
        draft.status = DraftStatus.FAILED
        draft.error = "Business validation error"
    page = admin_client.get(f"/workspaces/{workspace.id}/approvals?status=failed").data.decode()
    assert "Business validation error" in page and ">Retry<" in page
    response = admin_client.post(
        f"/workspaces/{workspace.id}/approvals/{held.timesheet_pk}/retry",
        data={"csrf_token": csrf_token(admin_client)},
    )
    assert response.status_code == 302
    assert db.session.scalars(select(Job).where(Job.kind == "bill_timesheet")).first() is not None


def test_period_filter(admin_client: Any, workspace: Any, post_event: Any) -> None:
    post_event(workspace, approval())
    url = f"/workspaces/{workspace.id}/approvals"
    assert b"ts-1001" in admin_client.get(url, query_string={"from": "2026-11-20"}).data
    assert b"ts-1001" not in admin_client.get(url, query_string={"from": "2026-12-01"}).data
    assert b"ts-1001" not in admin_client.get(url, query_string={"to": "2026-11-01"}).data
    assert b"ts-1001" not in admin_client.get(url, query_string={"status": "drafted"}).data


def test_deliveries_log_shows_raw_event_and_replays(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    post_event(workspace, approval())
    delivery = db.session.scalars(select(Delivery)).one()
    page = admin_client.get(f"/workspaces/{workspace.id}/deliveries/{delivery.id}").data.decode()
    assert "timesheet.approved" in page and "Globex" in page
    response = admin_client.post(
        f"/workspaces/{workspace.id}/deliveries/{delivery.id}/replay",
        data={"csrf_token": csrf_token(admin_client)},
    )
    assert response.status_code == 303
    assert db.session.scalar(
        select(Job).where(Job.delivery_id == delivery.id).order_by(Job.id.desc())
    ).payload.get("replay")


def test_connections_page_shows_reconnect_banner(admin_client: Any, workspace: Any) -> None:
    from connector.models import Connection

    with db.session_scope() as s:
        s.add(
            Connection(
                workspace_id=workspace.id,
                provider="quickbooks",
                status="reconnect_needed",
                environment="sandbox",
                last_error="refresh token expired",
                meta={},
            )
        )
        s.add(
            Connection(
                workspace_id=workspace.id,
                provider="stripe",
                status="connected",
                environment="test",
                meta={"masked_key": "rk_test_…x9Zq"},
            )
        )
    page = admin_client.get(f"/workspaces/{workspace.id}/connections").data.decode()
    assert 'role="alert"' in page and "needs to be reconnected" in page
    assert f"/workspaces/{workspace.id}/connections/quickbooks/connect" in page
    assert "Sandbox" in page and "Test mode" in page and "rk_test_…x9Zq" in page
    assert f"/workspaces/{workspace.id}/connections/stripe/disconnect" in page


def test_every_page_renders(admin_client: Any, workspace: Any, post_event: Any) -> None:
    post_event(workspace, approval())
    base = f"/workspaces/{workspace.id}"
    # The home page sends an admin with one workspace straight to it, not to the sign-in page.
    home = admin_client.get("/")
    assert home.status_code == 302 and home.headers["Location"] == base
    for path in (
        "/workspaces",
        base,
        f"{base}/approvals",
        f"{base}/mappings",
        f"{base}/mappings/project/p1",
        f"{base}/mappings/project/p1?q=glob",
        f"{base}/rates",
        f"{base}/rates?member_id=u7&project_id=p1&currency=USD",
        f"{base}/connections",
        f"{base}/deliveries",
        f"{base}/settings",
        f"{base}/tokens",
        f"{base}/signing-secret",
    ):
        # Not followed: a page that bounced to the sign-in page would "render" the login form.
        response = admin_client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.location)
        assert b'<main id="main">' in response.data, path
        assert b'name="password"' not in response.data, path  # not the sign-in form
