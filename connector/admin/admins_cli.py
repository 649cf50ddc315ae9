"""``flask --app connector admins create EMAIL [--password-stdin] [--workspace ID ...]``."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from connector import db
from connector.auth import end_all_sessions, hash_password
from connector.models import AdminUser, Workspace, WorkspaceMember

admins_cli = AppGroup("admins", help="Manage admin console users.")

MIN_PASSWORD_LENGTH = 10


@admins_cli.command("create")
@click.argument("email")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin (for scripts) instead of prompting.",
)
@click.option(
    "--workspace",
    "workspace_ids",
    type=int,
    multiple=True,
    help="Workspace id the admin may manage; repeat for several.",
)
@click.option("--name", default="", help="Display name.")
def create_admin(
    email: str, password_stdin: bool, workspace_ids: tuple[int, ...], name: str
) -> None:
    """Create an admin (or add workspaces to an existing one) and set the password."""
    email = email.strip().lower()
    if "@" not in email:
        raise click.BadParameter("must be an email address", param_hint="EMAIL")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.UsageError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    with db.session_scope() as s:
        for workspace_id in workspace_ids:
            if s.get(Workspace, workspace_id) is None:
                raise click.UsageError(f"there is no workspace {workspace_id}")
        user = s.scalars(
            select(AdminUser).where(func.lower(AdminUser.email) == email)
        ).one_or_none()
        created = user is None
        if user is None:
            user = AdminUser(email=email, name=name)
            s.add(user)
        elif name:
            user.name = name
        user.password_hash = hash_password(password)
        user.is_active = True
        if not created:
            end_all_sessions(user)  # a new password signs out every old session
        s.flush()
        existing = set(
            s.scalars(
                select(WorkspaceMember.workspace_id).where(WorkspaceMember.admin_user_id == user.id)
            )
        )
        for workspace_id in workspace_ids:
            if workspace_id not in existing:
                s.add(WorkspaceMember(workspace_id=workspace_id, admin_user_id=user.id))
        user_id = user.id
    verb = "created" if created else "updated"
    where = ", ".join(str(w) for w in workspace_ids) or "no workspace yet"
    click.echo(f"admin {email} {verb} (id {user_id}); workspaces: {where}")
