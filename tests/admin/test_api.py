"""The JSON API for mappings, rates, settings, approvals and tokens: problems name the field,
and one workspace's token never sees another's data."""

from __future__ import annotations

from typing import Any

from connector.models import DraftStatus
from tests.admin.events import add_local_customer, approval, live_drafts


def test_rate_problems_name_the_field(client: Any, workspace: Any) -> None:
    for body, field in (
        ({"amount": 27.5, "currency": "USD"}, "/amount"),
        ({"amount": "27.50", "currency": "usdollar"}, "/currency"),
        ({"amount": "27.50", "currency": "USD", "member_id": "m1"}, "/project_id"),
        ({"amount": "27.50", "currency": "USD", "effective_from": "soon"}, "/effective_from"),
    ):
        response = client.post("/api/v1/rates", json=body, headers=workspace.auth)
        assert response.status_code == 422, body
        assert response.mimetype == "application/problem+json"
        assert response.json["field"] == field
    bad_json = client.post("/api/v1/rates", data="nope", headers=workspace.auth)
    assert bad_json.status_code == 400 and bad_json.mimetype == "application/problem+json"


def test_rate_release_holds_via_api(client: Any, workspace: Any, post_event: Any) -> None:
    add_local_customer(workspace.id, "Globex")
    # A row without a tracker rate: mapped, but held for a rate.
    post_event(workspace, approval(rate=None))
    customer_id = add_local_customer(workspace.id, "Globex Corporation")
    put = client.put(
        "/api/v1/mappings/client/cl1", json={"customer_id": customer_id}, headers=workspace.auth
    )
    assert put.status_code == 200
    assert [d.status for d in live_drafts(workspace.id)] == [DraftStatus.NEEDS_RATE]
    created = client.post(
        "/api/v1/rates",
        json={"amount": "100", "currency": "USD", "member_id": "u7", "project_id": "p1"},
        headers=workspace.auth,
    )
    assert created.status_code == 201
    assert created.json["rate"]["scope"] == "member_project"
    assert created.json["released"] == 1
    [draft] = live_drafts(workspace.id)
    assert draft.status == DraftStatus.DRAFTED and str(draft.total) == "200.00"

    listed = client.get("/api/v1/approvals?status=drafted", headers=workspace.auth).json
    assert listed["total"] == 1
    assert listed["approvals"][0]["drafts"][0]["status"] == "drafted"


def test_mapping_problems(client: Any, workspace: Any) -> None:
    missing = client.put("/api/v1/mappings/client/cl1", json={}, headers=workspace.auth)
    assert missing.status_code == 422 and missing.json["field"] == "/customer_id"
    unknown = client.put(
        "/api/v1/mappings/client/cl1", json={"customer_id": "424242"}, headers=workspace.auth
    )
    assert unknown.status_code == 404 and unknown.json["field"] == "/customer_id"
    assert client.put("/api/v1/mappings/team/x", json={}, headers=workspace.auth).status_code == 404
    assert client.delete("/api/v1/mappings/client/cl1", headers=workspace.auth).status_code == 404


def test_suggestions_api(client: Any, workspace: Any, post_event: Any) -> None:
    post_event(workspace, approval())
    globex = add_local_customer(workspace.id, "Globex LLC", "ap@globex.example")
    body = client.get("/api/v1/mappings/suggestions?kind=client", headers=workspace.auth).json
    [entry] = body["suggestions"]
    assert entry["tracker_id"] == "cl1"
    assert entry["confident_customer_id"] == globex
    assert entry["suggestions"][0]["reasons"][0] == "same name"


def test_settings_api(client: Any, workspace: Any) -> None:
    ok = client.patch(
        "/api/v1/settings",
        json={"auto_invoicing": False, "settings": {"grouping": "task"}},
        headers=workspace.auth,
    )
    assert ok.status_code == 200
    assert ok.json["auto_invoicing"] is False and ok.json["settings"]["grouping"] == "task"
    bad = client.patch(
        "/api/v1/settings", json={"settings": {"grouping": "nope"}}, headers=workspace.auth
    )
    assert bad.status_code == 422 and bad.json["field"] == "/settings/grouping"
    assert (
        client.patch("/api/v1/settings", json={"colour": 1}, headers=workspace.auth).json["field"]
        == "/colour"
    )


def test_tokens_api_and_workspace_isolation(
    client: Any, workspace: Any, make_workspace: Any, post_event: Any
) -> None:
    other = make_workspace(tracker_workspace_id="9999")
    post_event(other, approval("ts-b", tracker_workspace_id="9999"))
    b_rate = client.post(
        "/api/v1/rates", json={"amount": "1", "currency": "USD"}, headers=other.auth
    ).json["rate"]["id"]

    # Token of A sees none of B's approvals, rates, mappings or tokens.
    assert client.get("/api/v1/approvals", headers=workspace.auth).json["total"] == 0
    assert client.get("/api/v1/rates", headers=workspace.auth).json["rates"] == []
    assert client.get(f"/api/v1/rates/{b_rate}", headers=workspace.auth).status_code == 404
    assert client.delete(f"/api/v1/rates/{b_rate}", headers=workspace.auth).status_code == 404
    assert client.get("/api/v1/mappings/entities", headers=workspace.auth).json["entities"] == []
    assert client.post("/api/v1/approvals/ts-b/retry", headers=workspace.auth).status_code == 404
    b_tokens = client.get("/api/v1/tokens", headers=other.auth).json["tokens"]
    assert (
        client.delete(f"/api/v1/tokens/{b_tokens[0]['id']}", headers=workspace.auth).status_code
        == 404
    )

    # A new token made with A's token belongs to A.
    created = client.post("/api/v1/tokens", json={"name": "ci"}, headers=workspace.auth)
    assert created.status_code == 201 and created.json["token"].startswith("tsi_")
    new_auth = {"Authorization": f"Bearer {created.json['token']}"}
    assert client.get("/api/v1/approvals", headers=new_auth).json["total"] == 0
    assert (
        client.delete(f"/api/v1/tokens/{created.json['id']}", headers=new_auth).status_code == 204
    )
    assert client.get("/api/v1/approvals", headers=new_auth).status_code == 401
    bad = client.post("/api/v1/tokens", json={"name": ""}, headers=workspace.auth)
    assert bad.status_code == 422 and bad.json["field"] == "/name"


def test_openapi_lists_the_console_routes(client: Any) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in (
        "/mappings",
        "/mappings/{kind}/{tracker_id}",
        "/rates",
        "/rates/{rate_id}",
        "/settings",
        "/approvals",
        "/approvals/{timesheet_id}/retry",
        "/tokens",
        "/tokens/{token_id}",
    ):
        assert path in paths, path
