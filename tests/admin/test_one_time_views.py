"""One-time secrets by post/redirect/get, and the new-workspace form's tracker id (#20 item 8,
#21 item 1): a reload never repeats the action, and the secret is shown by one GET only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from connector import db
from connector.models import ApiToken, ConsoleHeldValue, Workspace
from tests.app_fixtures import csrf_token


def _new_workspace(client: Any, name: str, tracker_id: str) -> Any:
    return client.post(
        "/workspaces/new",
        data={"name": name, "tracker_workspace_id": tracker_id, "csrf_token": csrf_token(client)},
    )


def _count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_creating_a_workspace_redirects_to_a_one_time_ready_page(admin_client: Any) -> None:
    response = _new_workspace(admin_client, "Globex", "777")
    assert response.status_code == 303
    ready = response.headers["Location"]
    assert re.fullmatch(r"/workspaces/\d+/created/[A-Za-z0-9_-]+", ready)
    assert "whsec_" not in ready and "tsi_" not in ready  # the URL holds a handle only

    page = admin_client.get(ready)
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert re.search(r'id="signing-secret">whsec_', text)
    assert re.search(r'id="api-token">tsi_', text)
    # What happens next is true: nothing is pasted into WebWork (it is polled once connected).
    assert "Nothing needs pasting into WebWork" in text
    assert "into WebWork's webhook settings" not in text

    again = admin_client.get(ready).get_data(as_text=True)  # a reload: shown once, not again
    assert "whsec_" not in again and "tsi_" not in again
    assert "shown once" in again
    assert _count(Workspace) == 2  # the fixture's and this one: the reload created nothing
    assert _count(ConsoleHeldValue) == 0


def test_the_held_secrets_are_encrypted_and_bound_to_their_admin(
    app: Any, admin_client: Any, workspace: Any, make_admin: Any
) -> None:
    ready = _new_workspace(admin_client, "Globex", "778").headers["Location"]
    [row] = db.session.scalars(select(ConsoleHeldValue)).all()
    assert "whsec_" not in row.value_encrypted and "tsi_" not in row.value_encrypted

    # Another admin of the same workspace presenting the handle sees nothing and burns nothing.
    from connector.auth import session_user_id
    from connector.models import AdminUser, WorkspaceMember

    other_id = make_admin(email="other@example.com")
    db.session.add(WorkspaceMember(workspace_id=int(ready.split("/")[2]), admin_user_id=other_id))
    db.session.commit()
    other = app.test_client()
    with other.session_transaction() as sess:
        sess["_user_id"] = session_user_id(db.session.get(AdminUser, other_id))
    with app.app_context():  # its own context: flask-login keeps the signed-in admin in g
        seen = other.get(ready)
        assert seen.status_code == 200 and "shown once" in seen.get_data(as_text=True)
        assert "whsec_" not in seen.get_data(as_text=True)
    assert "whsec_" in admin_client.get(ready).get_data(as_text=True)


@pytest.mark.parametrize(
    ("tracker_id", "words"),
    [
        ("<script>alert(1)</script>", "digits 0-9 only"),
        ("-5", "digits 0-9 only"),
        ("٣", "digits 0-9 only"),
        ("0042", "digits 0-9 only"),
        ("9" * 40, "digits 0-9 only"),
        ("4242", "already receives this WebWork workspace"),
    ],
)
def test_a_bad_or_used_tracker_id_is_a_field_error(
    admin_client: Any, workspace: Any, tracker_id: str, words: str
) -> None:
    response = _new_workspace(admin_client, "Second", tracker_id)
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="tracker-error"' in text and words in text
    assert "<script>alert(1)</script>" not in text  # echoed escaped, never as markup
    assert _count(Workspace) == 1


def test_a_used_tracker_id_lost_in_a_race_is_still_a_field_error(
    admin_client: Any, workspace: Any, monkeypatch: Any
) -> None:
    """Two admins submit the same id at once: the unique constraint decides, no 500."""
    from connector.admin import workspaces as pages

    monkeypatch.setattr(pages, "_tracker_id_taken", lambda _source, _tracker_id: False)
    response = _new_workspace(admin_client, "Second", "4242")
    assert response.status_code == 422
    assert "already receives this WebWork workspace" in response.get_data(as_text=True)
    assert _count(Workspace) == 1


def test_creating_a_token_redirects_and_a_reload_makes_no_second_one(
    admin_client: Any, workspace: Any
) -> None:
    url = f"/workspaces/{workspace.id}/tokens"
    response = admin_client.post(url, data={"name": "ci", "csrf_token": csrf_token(admin_client)})
    assert response.status_code == 303
    shown = response.headers["Location"]
    first = admin_client.get(shown).get_data(as_text=True)
    token = re.search(r'id="new-token">(tsi_[^<]+)<', first).group(1)
    assert "Copy the token “ci” now" in first
    second = admin_client.get(shown).get_data(as_text=True)
    assert token not in second and "shown once and is not shown again" in second
    assert _count(ApiToken) == 2  # the fixture's default token and "ci"


def test_rotating_the_signing_secret_redirects_and_shows_it_once(
    admin_client: Any, workspace: Any
) -> None:
    url = f"/workspaces/{workspace.id}/signing-secret"
    response = admin_client.post(
        url, data={"action": "rotate", "csrf_token": csrf_token(admin_client)}
    )
    assert response.status_code == 303
    shown = response.headers["Location"]
    assert re.search(r'id="new-secret">whsec_', admin_client.get(shown).get_data(as_text=True))
    again = admin_client.get(shown).get_data(as_text=True)
    assert "whsec_" not in again and "shown once" in again
    assert "2 secret(s) currently verify" in again  # one rotation, not two

    odd = admin_client.post(url, data={"action": "x", "csrf_token": csrf_token(admin_client)})
    assert odd.status_code == 400 and "<html" in odd.get_data(as_text=True)  # styled page


def test_the_checklist_no_longer_promises_to_show_a_stored_secret(
    admin_client: Any, workspace: Any
) -> None:
    page = admin_client.get(f"/workspaces/{workspace.id}").get_data(as_text=True)
    assert "Show the signing secret" not in page
    assert "Get a signing secret" in page
    assert "Webhook URL for WebWork" not in page  # WebWork is polled, it takes no webhook URL


def test_a_handle_opens_only_on_its_own_page(admin_client: Any, workspace: Any) -> None:
    url = f"/workspaces/{workspace.id}/tokens"
    shown = admin_client.post(
        url, data={"name": "ci", "csrf_token": csrf_token(admin_client)}
    ).headers["Location"]
    handle = shown.rsplit("/", 1)[1]
    elsewhere = admin_client.get(f"/workspaces/{workspace.id}/signing-secret/new/{handle}")
    assert "tsi_" not in elsewhere.get_data(as_text=True)
    assert "tsi_" in admin_client.get(shown).get_data(as_text=True)  # not burnt by the detour
