"""Connecting Clockify with an API key: checked, webhook registered, all of it encrypted; the
delivery token checked in constant time; disconnecting removes the webhook."""

from __future__ import annotations

from typing import Any

import pytest

from connector import db, trackers
from connector.models import Connection, ConnectionStatus
from webhooks.clockify.connection import ConnectError, delivery_authentic, store_for
from webhooks.clockify.tests.conftest import connect, hook_url
from webhooks.clockify.tests.fake import WORKSPACE, FakeClockify, status


def _row(workspace_id: int) -> Connection:
    with db.new_session() as s:
        return s.query(Connection).filter_by(workspace_id=workspace_id, provider="clockify").one()


def test_connect_registers_one_webhook_and_stores_key_and_token_encrypted(
    app: Any, clockify_app: FakeClockify, cf_workspace: Any, connected: str
) -> None:
    [hook] = clockify_app.webhooks.values()
    assert hook["url"] == hook_url(app, cf_workspace)
    assert hook["webhookEvent"] == "APPROVAL_REQUEST_STATUS_UPDATED"
    assert hook["triggerSource"] == [WORKSPACE]
    row = _row(cf_workspace.id)
    assert row.status == ConnectionStatus.CONNECTED and row.account_id == WORKSPACE
    assert connected not in row.credentials_encrypted
    assert hook["authToken"] not in row.credentials_encrypted
    assert connected not in str(row.meta) and hook["authToken"] not in str(row.meta)
    assert row.meta["connected_as"] == "Olive Owner <olive@example.com>"
    with app.app_context():
        assert store_for(cf_workspace.id).load()["webhooks"][0]["token"] == hook["authToken"]


def test_reconnecting_replaces_the_webhook_never_two(
    app: Any, clockify_app: FakeClockify, cf_workspace: Any, connected: str
) -> None:
    with app.app_context():
        connect(cf_workspace.id, clockify_app.add_key())
    assert len(clockify_app.webhooks) == 1


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (lambda fake: "not a key", "one line, no spaces"),
        (lambda fake: "key-unknown", "did not accept this API key"),
    ],
)
def test_bad_keys_are_refused_in_plain_words_and_nothing_is_stored(
    app: Any, clockify_app: FakeClockify, cf_workspace: Any, setup: Any, words: str
) -> None:
    with app.app_context(), pytest.raises(ConnectError, match=words):
        connect(cf_workspace.id, setup(clockify_app))
    assert clockify_app.webhooks == {}
    with db.new_session() as s:
        assert s.query(Connection).filter_by(workspace_id=cf_workspace.id).count() == 0


def test_a_workspace_the_key_cannot_see_is_named(
    app: Any, clockify_app: FakeClockify, make_workspace: Any
) -> None:
    other = make_workspace(tracker_workspace_id="other", tracker_source="clockify")
    with (
        app.app_context(),
        pytest.raises(ConnectError, match="not a member of Clockify workspace other"),
    ):
        connect(other.id, clockify_app.add_key())


def test_a_refused_webhook_registration_says_how_to_fix_it_and_undoes_the_connect(
    app: Any, clockify_app: FakeClockify, cf_workspace: Any
) -> None:
    key = clockify_app.add_key()
    # GET /user and /workspaces pass (the key is good), listing webhooks too; creating one fails
    clockify_app.fail_next(lambda r: None, lambda r: None, lambda r: None, status(400))
    with app.app_context(), pytest.raises(ConnectError, match="PUBLIC_BASE_URL"):
        connect(cf_workspace.id, key)
    assert _row(cf_workspace.id).status == ConnectionStatus.DISCONNECTED
    assert _row(cf_workspace.id).credentials_encrypted is None


@pytest.mark.parametrize("header", ["Clockify-Signature", "Clockify-Signature-Token"])
def test_either_token_header_is_accepted_and_anything_else_refused(
    app: Any, clockify_app: FakeClockify, cf_workspace: Any, connected: str, header: str
) -> None:
    [hook] = clockify_app.webhooks.values()
    with app.app_context():
        assert delivery_authentic(cf_workspace.id, {header: hook["authToken"]})
        assert not delivery_authentic(cf_workspace.id, {header: hook["authToken"] + "x"})
        assert not delivery_authentic(cf_workspace.id, {header: ""})
        assert not delivery_authentic(cf_workspace.id, {})
        assert not delivery_authentic(cf_workspace.id + 999, {header: hook["authToken"]})


def test_disconnect_removes_the_webhook_and_refuses_its_token_afterwards(
    app: Any, clockify_app: FakeClockify, cf_workspace: Any, connected: str
) -> None:
    [hook] = clockify_app.webhooks.values()
    with app.app_context():
        done = trackers.disconnect_account("clockify", cf_workspace.id)
        assert done.done and done.warning is None
        assert clockify_app.webhooks == {}
        assert not delivery_authentic(cf_workspace.id, {"Clockify-Signature": hook["authToken"]})
    assert _row(cf_workspace.id).status == ConnectionStatus.DISCONNECTED


def test_disconnect_with_a_revoked_key_still_forgets_it_and_says_what_to_delete(
    app: Any,
    clockify_app: FakeClockify,
    cf_workspace: Any,
    connected: str,
) -> None:
    clockify_app.revoke(connected)
    with app.app_context():
        done = trackers.disconnect_account("clockify", cf_workspace.id)
    assert done.done and done.warning is not None and "Settings > Webhooks" in done.warning
    assert _row(cf_workspace.id).status == ConnectionStatus.DISCONNECTED
