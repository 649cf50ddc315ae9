"""Connecting Xero through the console: consent with the scopes, the callback, the organisation
picker when the consent covers several, the posting codes, and disconnect (the connection removed
at Xero, the grant revoked). Refusals are clear 400 pages, never 500s."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from connector import db
from connector.models import Connection, ConnectionStatus, Workspace
from tests.app_fixtures import csrf_token
from tests.providers.xero.fake_xero import FakeXero

CALLBACK = "/connections/xero/callback"


@pytest.fixture
def restored(monkeypatch: Any) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr("connector.pipeline.on_connection_restored", calls.append)
    return calls


def connection(workspace_id: int) -> Connection | None:
    with db.new_session() as s:
        return s.scalars(
            select(Connection).where(
                Connection.workspace_id == workspace_id, Connection.provider == "xero"
            )
        ).one_or_none()


def start(client: Any, workspace_id: int) -> dict[str, str]:
    response = client.get(f"/workspaces/{workspace_id}/connections/xero/connect")
    assert response.status_code == 302
    location = urlparse(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        "https://login.xero.com/identity/connect/authorize"
    )
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def test_connect_asks_for_invoices_contacts_and_offline_access(
    xero_app: Any, admin_client: Any, workspace: Any
):
    query = start(admin_client, workspace.id)
    assert query["client_id"] == "XEROCLIENTID0001"
    assert query["response_type"] == "code"
    assert set(query["scope"].split()) >= {
        "offline_access",
        "accounting.invoices",
        "accounting.contacts",
    }
    assert query["redirect_uri"] == "http://invoicer.test/connections/xero/callback"
    assert len(query["state"]) >= 32


def test_one_organisation_connects_at_once(
    xero_app: Any, admin_client: Any, workspace: Any, fake: FakeXero, restored: list[int]
):
    state = start(admin_client, workspace.id)["state"]
    code = fake.grant()

    response = admin_client.get(CALLBACK, query_string={"code": code, "state": state})

    assert response.status_code == 302
    row = connection(workspace.id)
    assert row is not None and row.status == ConnectionStatus.CONNECTED
    assert row.account_id == fake.tenant and row.account_name == "Tsi Demo (NZ)"
    assert "xrt-" not in str(row.credentials_encrypted)  # encrypted at rest
    assert row.meta["short_code"] == "!tsiFk" and row.meta["base_currency"] == "NZD"
    assert row.meta["account_code"] == "200" and row.meta["connection_id"]
    with db.new_session() as s:
        assert s.get(Workspace, workspace.id).provider == "xero"
    assert restored == [workspace.id]


def test_several_organisations_are_offered_on_the_picker(
    xero_app: Any, admin_client: Any, workspace: Any, fake: FakeXero, restored: list[int]
):
    other = fake.add_org(
        "b4d3c2e1-9f7a-4b2c-8d3e-1f2a3b4c5d6e", "Tsi Demo (UK)", base_currency="GBP"
    )
    state = start(admin_client, workspace.id)["state"]
    code = fake.grant((fake.tenant, other.tenant_id))

    response = admin_client.get(CALLBACK, query_string={"code": code, "state": state})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/connections/xero/organisation")
    assert connection(workspace.id) is None  # nothing connected before the choice
    with admin_client.session_transaction() as sess:
        assert "xat-" not in str(sess["xero_pending"])  # tokens kept encrypted meanwhile

    page = admin_client.get(f"/workspaces/{workspace.id}/connections/xero/organisation")
    assert page.status_code == 200
    assert b"Tsi Demo (NZ)" in page.data and b"Tsi Demo (UK)" in page.data

    wrong = admin_client.post(
        f"/workspaces/{workspace.id}/connections/xero/organisation",
        data={"tenant_id": "not-offered", "csrf_token": csrf_token(admin_client)},
    )
    assert wrong.status_code == 400 and b"Choose one of the organisations" in wrong.data

    chosen = admin_client.post(
        f"/workspaces/{workspace.id}/connections/xero/organisation",
        data={"tenant_id": other.tenant_id, "csrf_token": csrf_token(admin_client)},
    )
    assert chosen.status_code == 302
    row = connection(workspace.id)
    assert row.account_id == other.tenant_id and row.account_name == "Tsi Demo (UK)"
    assert row.meta["base_currency"] == "GBP"
    again = admin_client.get(f"/workspaces/{workspace.id}/connections/xero/organisation")
    assert again.status_code == 400  # the choice is used up


def test_refusals_are_clear_pages(xero_app: Any, admin_client: Any, workspace: Any, fake: FakeXero):
    state = start(admin_client, workspace.id)["state"]
    declined = admin_client.get(CALLBACK, query_string={"error": "access_denied", "state": state})
    assert declined.status_code == 400 and b"You declined access in Xero" in declined.data

    forged = admin_client.get(CALLBACK, query_string={"code": "x", "state": "forged"})
    assert forged.status_code == 400 and b"does not belong" in forged.data

    state = start(admin_client, workspace.id)["state"]
    spent = admin_client.get(CALLBACK, query_string={"code": "never-issued", "state": state})
    assert spent.status_code == 400 and b"invalid_grant" in spent.data
    assert connection(workspace.id) is None


def test_an_unconfigured_deployment_says_which_settings(
    app: Any, admin_client: Any, workspace: Any
):
    app.config["XERO_CLIENT_ID"] = None
    response = admin_client.get(f"/workspaces/{workspace.id}/connections/xero/connect")
    assert response.status_code == 400
    assert b"XERO_CLIENT_ID" in response.data and b"server setting" in response.data


def test_the_connections_page_shows_the_xero_card(
    admin_client: Any, workspace: Any, connected: Any
):
    page = admin_client.get(f"/workspaces/{workspace.id}/connections")
    assert page.status_code == 200
    assert b"Tsi Demo (NZ)" in page.data
    assert b"DRAFT sales invoice" in page.data
    assert b"/webhooks/xero" in page.data
    assert b"Disconnect Xero" in page.data


def test_posting_codes_are_checked_with_xero(
    admin_client: Any, workspace: Any, connected: Any, fake: FakeXero
):
    url = f"/workspaces/{workspace.id}/connections/xero/posting"
    bad = admin_client.post(
        url, data={"account_code": "090", "csrf_token": csrf_token(admin_client)}
    )
    assert bad.status_code == 302
    page = admin_client.get(f"/workspaces/{workspace.id}/connections")
    assert b"not a revenue account" in page.data
    # A store keeps its row for a moment (one job's reads); read the row as saved now.
    assert connected.connection().meta["account_code"] == "200"

    good = admin_client.post(
        url,
        data={"account_code": "260", "item_code": "HOURS", "csrf_token": csrf_token(admin_client)},
    )
    assert good.status_code == 302
    saved = connected.connection().meta
    assert saved["account_code"] == "260" and saved["item_code"] == "HOURS"


def test_disconnect_removes_the_connection_at_xero(
    admin_client: Any, workspace: Any, connected: Any, fake: FakeXero
):
    connected.update_meta(
        connection_id=next(iter(fake.access.values()))["connections"][fake.tenant]
    )
    url = f"/workspaces/{workspace.id}/connections/xero/disconnect"
    confirm = admin_client.post(url, data={"csrf_token": csrf_token(admin_client)})
    assert confirm.status_code == 200 and b"Disconnect Xero?" in confirm.data

    done = admin_client.post(url, data={"csrf_token": csrf_token(admin_client), "confirmed": "yes"})
    assert done.status_code == 302
    assert connection(workspace.id).status == ConnectionStatus.DISCONNECTED
    assert all(fake.tenant not in g["tenants"] for g in fake.access.values())  # removed at Xero
    assert fake.refresh == {}  # and the grant revoked
