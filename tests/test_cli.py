"""Operator commands, run through Flask's CLI runner."""

from __future__ import annotations

import json

from sqlalchemy import select

from connector import db
from connector.models import Delivery, Job, Workspace
from tests.helpers import event


def test_workspaces_create_json_prints_everything_needed(app) -> None:
    runner = app.test_cli_runner()
    res = runner.invoke(
        args=[
            "workspaces",
            "create",
            "Acme",
            "--tracker-workspace-id",
            "77",
            "--auto-invoicing",
            "--json",
        ]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # a note about PUBLIC_BASE_URL may go to stderr
    assert out["tracker_workspace_id"] == "77"
    assert out["webhook_url"].startswith("http://invoicer.test/webhooks/webwork/")
    assert out["signing_secret"].startswith("whsec_")
    assert out["api_token"].startswith("tsi_")
    ws = db.session.get(Workspace, out["id"])
    assert ws.auto_invoicing is True
    assert out["signing_secret"] not in ws.signing_secrets_encrypted  # encrypted at rest

    again = runner.invoke(args=["workspaces", "create", "Acme", "--tracker-workspace-id", "77"])
    assert again.exit_code != 0 and "already exists" in again.output


def test_auto_invoicing_switch_and_secret_rotation(app, workspace) -> None:
    runner = app.test_cli_runner()
    assert (
        runner.invoke(args=["workspaces", "auto-invoicing", str(workspace.id), "off"]).exit_code
        == 0
    )
    db.session.expire_all()
    assert db.session.get(Workspace, workspace.id).auto_invoicing is False
    res = runner.invoke(args=["workspaces", "rotate-secret", str(workspace.id)])
    assert res.exit_code == 0 and res.output.strip().startswith("whsec_")
    missing = runner.invoke(args=["workspaces", "auto-invoicing", "999", "on"])
    assert missing.exit_code != 0 and "no workspace" in missing.output


def test_replay_and_retry_failed_jobs(app, workspace, post_event, monkeypatch) -> None:
    runner = app.test_cli_runner()
    monkeypatch.setattr("connector.pipeline.handlers.plan_drafts", _boom)
    post_event(workspace, event("timesheet_approved__three_customers"))
    failed = runner.invoke(args=["jobs", "failed"])
    assert "process_delivery" in failed.output and "cannot be billed" in failed.output
    monkeypatch.undo()
    job = db.session.scalars(select(Job)).one()
    assert runner.invoke(args=["jobs", "retry", str(job.id)]).exit_code == 0
    db.session.expire_all()
    assert db.session.get(Job, job.id).state == "done"
    delivery = db.session.scalars(select(Delivery)).one()
    res = runner.invoke(args=["events", "replay", str(delivery.id)])
    assert res.exit_code == 0 and "queued again" in res.output
    assert db.session.scalar(select(Job).order_by(Job.id.desc())).kind == "process_delivery"


def _boom(*args, **kwargs):  # type: ignore[no-untyped-def]
    raise ValueError("two different rates for the same scope and date")


def test_config_prints_every_variable(app) -> None:
    out = app.test_cli_runner().invoke(args=["config"]).output
    for name in (
        "DATABASE_URL",
        "QUEUE_URL",
        "REDIS_URL",
        "SECRET_KEY",
        "TOKEN_ENCRYPTION_KEYS",
        "PUBLIC_BASE_URL",
    ):
        assert f"`{name}`" in out


def test_walkthrough_from_the_terminal(app, workspace, post_event, client) -> None:
    """README's five-minute walkthrough: sample approval -> held -> create customers -> drafts."""
    runner = app.test_cli_runner()
    post_event(workspace, event("timesheet_approved__three_customers"))
    listed = runner.invoke(args=["mappings", "list", str(workspace.id)]).output
    assert "cl-globex" in listed and "unmapped" in listed
    res = runner.invoke(args=["mappings", "create-customers", str(workspace.id)])
    assert res.exit_code == 0, res.output
    assert "3 client(s) mapped" in res.output
    drafts = client.get("/api/v1/timesheets/ts_8f3a2c9e1b/drafts", headers=workspace.auth).json[
        "drafts"
    ]
    assert sorted(d["total"] for d in drafts) == ["202.00", "265.84", "856.58"]
    assert {d["status"] for d in drafts} == {"drafted"}


def test_key_rotation_reencrypts_every_secret(app, workspace, post_event) -> None:
    from cryptography.fernet import Fernet

    old_keys = list(app.config["TOKEN_ENCRYPTION_KEYS"])
    new_key = Fernet.generate_key().decode()
    app.config["TOKEN_ENCRYPTION_KEYS"] = [new_key, *old_keys]
    res = app.test_cli_runner().invoke(args=["secrets", "reencrypt"])
    assert res.exit_code == 0 and "re-encrypted 1" in res.output
    app.config["TOKEN_ENCRYPTION_KEYS"] = [new_key]  # the old key is gone now
    assert post_event(workspace, event("timesheet_submitted__unsupported")).status_code == 200


def test_create_customers_refuses_a_made_up_currency(app, workspace) -> None:
    runner = app.test_cli_runner()
    res = runner.invoke(
        args=["mappings", "create-customers", str(workspace.id), "--currency", "ABC"]
    )
    assert res.exit_code != 0
    assert "ABC is not a currency" in res.output


def test_the_readmes_send_sample_reaches_the_receiver_signed(app, workspace, client) -> None:
    """README step 2 with no tracker account: the default source's sample, Standard Webhooks
    signed with the workspace's secret, accepted at the wire."""
    import responses

    url = f"http://invoicer.test{workspace.webhook_path}"

    def forward(request):  # type: ignore[no-untyped-def]
        res = client.post(request.path_url, data=request.body, headers=dict(request.headers))
        return res.status_code, {}, res.get_data(as_text=True)

    runner = app.test_cli_runner()
    args = ["events", "send-sample", "--url", url, "--tracker-workspace-id", "4242"]
    with responses.RequestsMock() as wire:
        wire.add_callback(responses.POST, url, callback=forward)
        sent = runner.invoke(args=args)  # signed with the workspace's stored secret
        forged = runner.invoke(args=[*args, "--secret-stdin"], input="whsec_" + "A" * 43 + "\n")
    assert sent.exit_code == 0, sent.output
    assert sent.output.startswith("202 ")
    assert forged.exit_code == 1 and forged.output.startswith("401 ")
    stored = db.session.scalars(select(Delivery)).one()
    assert stored.event_type == "timesheet.approved"
    unknown = runner.invoke(args=[*args, "--secret-stdin", "--sample", "nope"], input="x\n")
    assert unknown.exit_code != 0 and "no sample 'nope'" in unknown.output
