"""``flask admins create``: creates an admin who can then sign in to their workspaces."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connector import db
from connector.models import AdminUser, WorkspaceMember


def test_create_admin_from_stdin(app: Any, workspace: Any) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "admins",
            "create",
            "Boss@Example.com",
            "--password-stdin",
            "--workspace",
            str(workspace.id),
        ],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalars(select(AdminUser)).one()
    assert user.email == "boss@example.com"
    members = db.session.scalars(select(WorkspaceMember.workspace_id)).all()
    assert members == [workspace.id]

    client = app.test_client()
    from tests.app_fixtures import csrf_token

    response = client.post(
        "/login",
        data={
            "email": "boss@example.com",
            "password": "a long enough password",
            "csrf_token": csrf_token(client),
        },
    )
    assert response.status_code == 302


def test_create_admin_refuses_short_password_and_unknown_workspace(app: Any) -> None:
    runner = app.test_cli_runner()
    short = runner.invoke(args=["admins", "create", "a@b.c", "--password-stdin"], input="short\n")
    assert short.exit_code != 0 and "at least" in short.output
    missing = runner.invoke(
        args=["admins", "create", "a@b.c", "--password-stdin", "--workspace", "999"],
        input="a long enough password\n",
    )
    assert missing.exit_code != 0 and "no workspace 999" in missing.output
