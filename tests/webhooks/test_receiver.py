"""Every row of the receiver contract (docs/events.md), one test per outcome."""

from __future__ import annotations

import json
import logging
import time

from sqlalchemy import func, select

from connector import db
from connector.models import Delivery, Job
from tests.app_fixtures import signed_headers
from tests.helpers import event

APPROVED = "timesheet_approved__three_customers"


def count(model) -> int:  # type: ignore[no-untyped-def]
    return db.session.scalar(select(func.count()).select_from(model))


def test_authentic_and_new_stores_delivery_and_job_then_202(workspace, post_event) -> None:
    res = post_event(workspace, event(APPROVED))
    assert res.status_code == 202
    assert res.json["status"] == "accepted"
    assert count(Delivery) == 1 and count(Job) == 1
    delivery = db.session.get(Delivery, res.json["delivery_id"])
    assert delivery.body == json.dumps(event(APPROVED)).encode()  # raw bytes kept
    assert delivery.event_type == "timesheet.approved"
    assert delivery.timesheet_id == "ts_8f3a2c9e1b"


def test_forged_signature_is_401_and_stores_nothing(workspace, client) -> None:
    body = json.dumps(event(APPROVED)).encode()
    headers = signed_headers("whsec_" + "Zm9yZ2VkLXNlY3JldC1mb3JnZWQtc2VjcmV0", body)
    res = client.post(workspace.webhook_path, data=body, headers=headers)
    assert res.status_code == 401
    assert res.mimetype == "application/problem+json"
    assert count(Delivery) == 0 and count(Job) == 0


def test_unsigned_is_401(workspace, client) -> None:
    res = client.post(workspace.webhook_path, json=event(APPROVED))
    assert res.status_code == 401
    assert count(Delivery) == 0


def test_stale_timestamp_is_401(workspace, client) -> None:
    body = json.dumps(event(APPROVED)).encode()
    headers = signed_headers(workspace.signing_secret, body, timestamp=int(time.time()) - 301)
    assert client.post(workspace.webhook_path, data=body, headers=headers).status_code == 401
    assert count(Delivery) == 0


def test_body_tampered_after_signing_is_401(workspace, client) -> None:
    body = json.dumps(event(APPROVED)).encode()
    headers = signed_headers(workspace.signing_secret, body)
    tampered = body.replace(b"27.50", b"99.50")
    assert client.post(workspace.webhook_path, data=tampered, headers=headers).status_code == 401


def test_duplicate_webhook_id_is_200_without_second_job(workspace, post_event) -> None:
    first = post_event(workspace, event(APPROVED), msg_id="msg_same")
    again = post_event(workspace, event(APPROVED), msg_id="msg_same")
    assert first.status_code == 202
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    assert count(Delivery) == 1 and count(Job) == 1


def test_not_json_is_400_problem_and_raw_delivery_kept(workspace, post_event) -> None:
    res = post_event(workspace, b"{not json")
    assert res.status_code == 400
    assert res.mimetype == "application/problem+json"
    delivery = db.session.get(Delivery, res.json["delivery_id"])
    assert delivery.status == "invalid" and delivery.body == b"{not json"
    assert count(Job) == 0


def test_schema_violation_is_422_naming_the_field(workspace, post_event) -> None:
    doc = event(APPROVED)
    doc["data"]["timesheet"]["daily_breakdown"]["2026-11-17"][1]["total_minutes"] = -5
    res = post_event(workspace, doc)
    assert res.status_code == 422
    assert res.json["field"] == "/data/timesheet/daily_breakdown/2026-11-17/1/total_minutes"
    assert db.session.get(Delivery, res.json["delivery_id"]).status == "invalid"
    assert count(Job) == 0


def test_missing_required_field_is_named(workspace, post_event) -> None:
    doc = event(APPROVED)
    del doc["data"]["timesheet"]["daily_breakdown"]["2026-11-16"][0]["project_id"]
    res = post_event(workspace, doc)
    assert res.status_code == 422
    assert res.json["field"] == "/data/timesheet/daily_breakdown/2026-11-16/0/project_id"


def test_row_outside_the_period_is_422(workspace, post_event) -> None:
    doc = event(APPROVED)
    rows = doc["data"]["timesheet"]["daily_breakdown"].pop("2026-11-20")
    doc["data"]["timesheet"]["daily_breakdown"]["2026-12-20"] = rows
    res = post_event(workspace, doc)
    assert res.status_code == 422
    assert res.json["field"] == "/data/timesheet/daily_breakdown/2026-12-20"
    assert count(Job) == 0


def test_period_ending_before_it_starts_is_422(workspace, post_event) -> None:
    doc = event(APPROVED)
    doc["data"]["timesheet"]["date_to"] = "2026-11-01"
    res = post_event(workspace, doc)
    assert res.status_code == 422 and res.json["field"] == "/data/timesheet/date_to"


def test_other_workspace_id_is_422(workspace, post_event) -> None:
    res = post_event(workspace, event(APPROVED, workspace_id="9999"))
    assert res.status_code == 422
    assert res.json["field"] == "/data/workspace_id"
    assert count(Job) == 0 and count(Delivery) == 1


def test_unsupported_type_is_200_and_logged(workspace, post_event, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="webhooks.receiver"):
        res = post_event(workspace, event("timesheet_submitted__unsupported"))
    assert res.status_code == 200 and res.json["status"] == "ignored"
    assert db.session.get(Delivery, res.json["delivery_id"]).status == "ignored"
    assert count(Job) == 0
    logged = [r.getMessage() for r in caplog.records if r.name == "webhooks.receiver"]
    assert any(
        "ignored unsupported event type 'timesheet.submitted'" in line
        and f"(workspace {workspace.id})" in line
        for line in logged
    ), logged


def test_auto_invoicing_off_is_accepted_but_skipped(make_workspace, post_event) -> None:
    ws = make_workspace(auto_invoicing=False)
    res = post_event(ws, event(APPROVED))
    assert res.status_code == 202 and res.json["status"] == "skipped"
    assert db.session.get(Delivery, res.json["delivery_id"]).status == "skipped"
    assert count(Job) == 0


def test_unknown_endpoint_is_404_and_unknown_source_too(workspace, client) -> None:
    assert client.post("/webhooks/webwork/nope", data=b"{}").status_code == 404
    res = client.post(f"/webhooks/nosuchtracker/{workspace.endpoint_token}", data=b"{}")
    assert res.status_code == 404
    assert count(Delivery) == 0


def test_body_over_the_cap_is_413(app, workspace, client) -> None:
    app.config["MAX_CONTENT_LENGTH"] = app.config["WEBHOOK_MAX_BODY_BYTES"] = 1000
    body = b'{"pad": "' + b"x" * 2000 + b'"}'
    headers = signed_headers(workspace.signing_secret, body)
    res = client.post(workspace.webhook_path, data=body, headers=headers)
    assert res.status_code == 413
    assert count(Delivery) == 0


def test_rotated_secret_still_verifies_until_retired(app, workspace, post_event) -> None:
    from connector.connections.store import secret_box
    from connector.models import Workspace
    from connector.workspaces import rotate_signing_secret

    with db.session_scope() as s:
        ws = s.get(Workspace, workspace.id)
        new_secret = rotate_signing_secret(s, secret_box(app.config), ws)
    old_secret = workspace.signing_secret
    assert post_event(workspace, event(APPROVED)).status_code == 202  # old secret
    workspace.signing_secret = new_secret
    assert post_event(workspace, event(APPROVED)).status_code == 202  # new secret
    with db.session_scope() as s:
        from connector.workspaces import retire_old_signing_secrets

        retire_old_signing_secrets(s, secret_box(app.config), s.get(Workspace, workspace.id))
    workspace.signing_secret = old_secret
    assert post_event(workspace, event(APPROVED)).status_code == 401  # retired


def test_garbage_headers_never_500(workspace, client) -> None:
    for sig in ["", "v1", "v1,", ",,,", "v1,=" * 50, "\u00ff"]:
        res = client.post(
            workspace.webhook_path,
            data=b"{}",
            headers={"webhook-id": "m", "webhook-timestamp": "1", "webhook-signature": sig},
        )
        assert res.status_code == 401
