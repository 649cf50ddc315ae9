"""``PATCH /api/v1/settings`` takes the billing settings flat (as the README shows) or inside
``settings`` (the shape GET returns); errors say which shape is expected (issue 21 item 4)."""

from __future__ import annotations

from typing import Any


def _patch(client: Any, workspace: Any, body: Any) -> Any:
    return client.patch("/api/v1/settings", json=body, headers=workspace.auth)


def test_a_flat_body_changes_the_setting(client: Any, workspace: Any) -> None:
    ok = _patch(client, workspace, {"consolidation": "per_period", "period": "monthly"})
    assert ok.status_code == 200, ok.json
    assert ok.json["settings"]["consolidation"] == "per_period"
    assert ok.json["settings"]["period"] == "monthly"
    assert "approvals_with_created_drafts" in ok.json  # the change notice, as for nested
    again = client.get("/api/v1/settings", headers=workspace.auth).json
    assert again["settings"]["consolidation"] == "per_period"


def test_the_nested_body_still_works_and_both_may_agree(client: Any, workspace: Any) -> None:
    ok = _patch(client, workspace, {"settings": {"grouping": "task"}, "grouping": "task"})
    assert ok.status_code == 200 and ok.json["settings"]["grouping"] == "task"


def test_a_bad_flat_setting_is_named_where_it_was_sent(client: Any, workspace: Any) -> None:
    bad = _patch(client, workspace, {"consolidation": "weekly", "settings": {"grouping": "x"}})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json["errors"]} == {"/consolidation", "/settings/grouping"}


def test_a_setting_sent_twice_with_two_values_is_refused(client: Any, workspace: Any) -> None:
    bad = _patch(client, workspace, {"grouping": "task", "settings": {"grouping": "project"}})
    assert bad.status_code == 422
    assert bad.json["type"].endswith("/setting-sent-twice") and bad.json["field"] == "/grouping"
    assert (
        client.get("/api/v1/settings", headers=workspace.auth).json["settings"]["grouping"]
        == "project"
    )


def test_an_unknown_key_says_what_shape_is_expected(client: Any, workspace: Any) -> None:
    bad = _patch(client, workspace, {"consolidaton": "per_period"})
    assert bad.status_code == 422 and bad.json["field"] == "/consolidaton"
    detail = bad.json["errors"][0]["detail"]
    assert "consolidation" in detail and '"settings"' in detail and "top level" in detail


def test_the_openapi_document_shows_the_flat_shape(client: Any) -> None:
    doc = client.get("/api/v1/openapi.json").json
    body = doc["paths"]["/settings"]["patch"]["requestBody"]["content"]["application/json"]
    assert body["example"] == {"consolidation": "per_period", "period": "monthly"}
    change = doc["components"]["schemas"]["SettingsChange"]["properties"]
    assert {"consolidation", "settings", "auto_invoicing"} <= change.keys()
