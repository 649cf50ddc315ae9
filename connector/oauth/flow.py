"""The console side of every OAuth2 connect flow: send the admin to consent, and the callback page.

A connect page calls :func:`start` with the provider's name and a function building its authorize
URL from a state; its callback route calls :func:`callback` with a ``finish`` step that gets a
checked :class:`Answer` (the admin's workspace, the authorization code, the rest of the query such
as QuickBooks' ``realmId``, and what :func:`start` stored) and returns the response. Everything
else is here, once:

* the ``state`` is kept server-side (:mod:`connector.oauth.state`): single use, bound to this
  admin and workspace, expiring; the provider's token endpoint is never called for an answer
  that does not match one, or a second time for the same one;
* the provider's ``error`` (the admin declined) and a missing code are explained in plain words
  on a styled page (:func:`problem_page`), never a bare 400 or a 500;
* the admin must still belong to the workspace when the answer comes back.

A provider with a step after the callback (picking one of several organisations) does it in
``finish``: store the tokens, then redirect to its own picker page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import redirect, render_template, request
from flask_login import current_user

from connector import db
from connector.auth import workspace_for_admin
from connector.models import Workspace
from connector.oauth import state as oauth_state
from connector.oauth.state import PendingConnect


@dataclass(frozen=True)
class Answer:
    """A provider's answer that matched a flow this admin started, for the provider's finish."""

    workspace: Workspace
    code: str
    args: Mapping[str, str]
    pending: PendingConnect


def connections_url(workspace_id: int) -> str:
    return f"/workspaces/{workspace_id}/connections"


def problem_page(
    title: str,
    message: str,
    status: int = 400,
    workspace_id: int | None = None,
    *,
    operator: bool = False,
) -> Any:
    """A styled console page saying what went wrong and what to do. ``operator``: the fix is a
    server setting (the page says so and lists QuickBooks' variables)."""
    workspace = db.session.get(Workspace, workspace_id) if workspace_id else None
    page = render_template(
        "admin/connection_problem.html",
        workspace=workspace,
        title=title,
        message=message,
        operator=operator,
        back=connections_url(workspace_id) if workspace_id else None,
    )
    return page, status, {"Content-Type": "text/html; charset=utf-8"}


def start(provider: str, workspace_id: int, authorize: Callable[[str], str], **data: Any) -> Any:
    """Redirect the admin to the consent screen with a fresh state bound to them and the
    workspace; ``data`` (JSON, no secrets of the provider) comes back in ``Answer.pending``."""
    state = oauth_state.begin(
        provider, admin_id=int(current_user.id), workspace_id=workspace_id, **data
    )
    return redirect(authorize(state))


def callback(provider: str, label: str, finish: Callable[[Answer], Any]) -> Any:
    """Check the provider's answer against the stored state, then hand it to ``finish``.

    The state is used up first, whatever happens next. ``label`` names the provider to the admin
    (e.g. "QuickBooks").
    """
    pending = oauth_state.take(
        provider, request.args.get("state", ""), admin_id=int(current_user.id)
    )
    error = request.args.get("error")
    if error:
        description = request.args.get("error_description")
        reason = (
            f"You declined access in {label}, so nothing was connected."
            if error == "access_denied"
            else f"{label} did not grant access ({description or error})."
        )
        if description and error == "access_denied":
            reason += f" {label} said: {description}"
        workspace_id = pending.workspace_id if pending else None
        return problem_page(f"{label} was not connected", reason, 400, workspace_id)
    if pending is None:
        return problem_page(
            f"{label} connection not accepted",
            "This sign-in answer does not belong to a connection you started here, was already "
            "used, or is too old. Start again from the workspace's connections page.",
        )
    workspace = workspace_for_admin(pending.workspace_id)  # still an admin of it?
    code = request.args.get("code", "")
    if not code:
        return problem_page(
            f"{label} connection not accepted",
            f"{label}'s answer lacks the authorization code. Start again.",
            400,
            workspace.id,
        )
    return finish(Answer(workspace=workspace, code=code, args=request.args, pending=pending))
