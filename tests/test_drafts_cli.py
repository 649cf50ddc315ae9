"""``drafts show`` and ``drafts invoices`` print the summaries the README shows, and
``events send-sample`` never takes a secret from argv (issue 21 items 7 and "What to build")."""

from __future__ import annotations

import json
from typing import Any

import responses

from tests.app_fixtures import sign
from tests.helpers import event, map_clients_locally

SAMPLE = "timesheet_approved__three_customers"


def _run(app: Any, *args: str, **kw: Any) -> Any:
    return app.test_cli_runner().invoke(args=list(args), **kw)


def test_drafts_show_prints_one_row_per_customer(app: Any, workspace: Any, post_event: Any):
    map_clients_locally(workspace.id)
    assert post_event(workspace, event(SAMPLE)).status_code == 202
    res = _run(app, "drafts", "show", "ts_8f3a2c9e1b")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert (
        lines[0] == "Ada Lovelace · 2026-11-16 to 2026-11-22 · timesheet ts_8f3a2c9e1b (Approved)"
    )
    assert lines[1].split() == ["Customer", "Status", "Hours", "Amount", "Invoice"]
    globex = lines[2]
    assert globex.startswith("Globex Corporation  Drafted  9 h 40 min  USD 265.84  http")
    assert "/ledger/" in globex
    assert [line.split("  ")[0] for line in lines[2:5]] == [
        "Globex Corporation",
        "Initech",
        "Umbrella Ltd",
    ]
    assert lines[5] == "45 min non-billable left out."


def test_drafts_show_says_why_a_draft_is_held(app: Any, workspace: Any, post_event: Any):
    post_event(workspace, event(SAMPLE))
    res = _run(app, "drafts", "show", "ts_8f3a2c9e1b")
    assert res.exit_code == 0
    assert "(no customer yet)  Needs a customer  8 h 50 min  -       -" in res.stdout
    assert "- Ada Lovelace tracked 8 h 50 min on project Website (p-101)" in res.stdout
    assert max(len(line) for line in res.stdout.splitlines()) <= 100


def test_drafts_show_names_the_workspace_when_two_have_the_timesheet(
    app: Any, make_workspace: Any, post_event: Any
):
    a, b = make_workspace(), make_workspace(tracker_workspace_id="9999")
    post_event(a, event(SAMPLE))
    post_event(b, event(SAMPLE, workspace_id="9999"))
    res = _run(app, "drafts", "show", "ts_8f3a2c9e1b")
    assert res.exit_code != 0 and "--workspace" in res.output
    ok = _run(app, "drafts", "show", "ts_8f3a2c9e1b", "--workspace", str(b.id))
    assert ok.exit_code == 0, ok.output
    assert _run(app, "drafts", "show", "nope").exit_code != 0


def test_drafts_invoices_lists_the_workspace_invoices(app: Any, workspace: Any, post_event: Any):
    assert "no invoices yet" in _run(app, "drafts", "invoices", str(workspace.id)).stdout
    map_clients_locally(workspace.id)
    post_event(workspace, event(SAMPLE))
    res = _run(app, "drafts", "invoices", str(workspace.id), "--limit", "2")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["Id", "Customer", "Period", "Hours", "Amount", "Status", "Invoice"]
    assert "2026-11-16 to 2026-11-22" in lines[1] and "Drafted" in lines[1]
    assert lines[-1] == "2 of 3 shown; --limit shows more."
    assert _run(app, "drafts", "invoices", "999").exit_code != 0


def test_send_sample_refuses_a_secret_in_argv(app: Any, workspace: Any) -> None:
    res = _run(app, "events", "send-sample", "--url", "http://hook.test/x", "--secret",
               workspace.signing_secret, "--tracker-workspace-id", "4242")  # fmt: skip
    assert res.exit_code == 2
    assert "argv" in res.output and "--secret-stdin" in res.output


def _captured_signature_matches(secret: str) -> bool:
    call = responses.calls[-1].request
    body = call.body if isinstance(call.body, bytes) else call.body.encode()
    headers = call.headers
    expected = sign(secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    return headers["webhook-signature"] == expected


@responses.activate
def test_send_sample_signs_with_the_stored_secret_or_one_from_stdin(
    app: Any, workspace: Any
) -> None:
    responses.post("http://hook.test/x", json={"status": "accepted"}, status=202)
    res = _run(app, "events", "send-sample", "--url", "http://hook.test/x",
               "--tracker-workspace-id", "4242")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("202 ")
    assert _captured_signature_matches(workspace.signing_secret)
    sent = json.loads(responses.calls[-1].request.body)
    assert sent["data"]["workspace_id"] == "4242"

    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    res = _run(app, "events", "send-sample", "--url", "http://hook.test/x", "--secret-stdin",
               "--tracker-workspace-id", "4242", input=other + "\n")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert _captured_signature_matches(other)


def test_send_sample_without_any_secret_says_how_to_give_one(app: Any) -> None:
    res = _run(app, "events", "send-sample", "--url", "http://hook.test/x",
               "--tracker-workspace-id", "5555")  # fmt: skip
    assert res.exit_code == 1
    assert "--secret-stdin" in res.output and "TSI_SIGNING_SECRET" in res.output


def test_workspaces_create_says_where_the_webhook_address_comes_from(
    app: Any, monkeypatch: Any
) -> None:
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    res = _run(app, "workspaces", "create", "Acme", "--tracker-workspace-id", "31", "--json")
    assert res.exit_code == 0
    json.loads(res.stdout)  # the note goes to stderr: the JSON stays machine-readable
    assert "PUBLIC_BASE_URL" in res.stderr and ".env" in res.stderr
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://invoicer.example")
    res = _run(app, "workspaces", "create", "Beta", "--tracker-workspace-id", "32", "--json")
    assert res.stderr == ""
