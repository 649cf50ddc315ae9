"""``flask --app connector tracker ...``: connect a workspace's time tracker, poll, status,
disconnect, for whichever source the workspace uses (or ``--source``), from the registry.

A source adds commands only it has (e.g. a ``backfill``) through its registration's
``commands``; the app factory attaches them with :func:`add_source_commands`.
"""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup

from connector import db, trackers
from connector.models import Workspace
from webhooks import polling

tracker_cli = AppGroup("tracker", help="Connect the workspace's time tracker, poll, backfill.")


def _workspace(workspace_id: int) -> Workspace:
    with db.new_session() as s:
        ws = s.get(Workspace, workspace_id)
        if ws is None:
            raise click.ClickException(f"no workspace {workspace_id}")
        s.expunge(ws)
        return ws


def _source(ws: Workspace, name: str | None) -> trackers.Source:
    name = name or ws.tracker_source
    if not trackers.is_source(name):
        known = ", ".join(sorted(trackers.SOURCES)) or "none"
        raise click.ClickException(f"no tracker source {name!r} (registered: {known})")
    if name != ws.tracker_source:
        raise click.ClickException(
            f"workspace {ws.id} receives approvals from {ws.tracker_source!r}, not {name!r}; "
            "create a workspace with --tracker for another tracker"
        )
    return trackers.get_source(name)


SOURCE_OPTION = click.option(
    "--source", default=None, help="The tracker (default: the one the workspace was created for)."
)


@tracker_cli.command("connect")
@click.argument("workspace_id", type=int)
@SOURCE_OPTION
@click.option(
    "--token-stdin",
    is_flag=True,
    required=True,
    help="Read the tracker's token or API key from standard input (never from argv).",
)
def connect(workspace_id: int, source: str | None, token_stdin: bool) -> None:
    """Connect WORKSPACE_ID's tracker account with a token read from stdin (checked first)."""
    ws = _workspace(workspace_id)
    found = _source(ws, source)
    if found.account is None:
        raise click.ClickException(f"{found.display_name} cannot be connected with a token")
    token = sys.stdin.readline().strip()
    try:
        said = trackers.connect_account(found.name, ws.id, token, "cli")
    except trackers.ConnectRefused as exc:
        raise click.ClickException(exc.message) from None
    click.echo(said)


@tracker_cli.command("poll")
@click.argument("workspace_id", type=int)
@SOURCE_OPTION
@click.option(
    "--refresh-rates",
    is_flag=True,
    help="Re-read projects, rates and clients now instead of using the cache, and re-bill "
    "approvals whose unsent drafts were priced at a rate that changed.",
)
def poll(workspace_id: int, source: str | None, refresh_rates: bool) -> None:
    """Poll WORKSPACE_ID's tracker now (in this process) and print what was found."""
    found = _source(_workspace(workspace_id), source)
    if found.poller is None:
        raise click.ClickException(f"{found.display_name} is not polled")
    try:
        said = polling.poll_now(found.name, workspace_id, current_app.config, refresh_rates)
    except trackers.PollBusy:
        click.echo("another poll of this workspace is running; nothing to do")
        return
    except trackers.PollProblem as exc:
        polling.store_for(found.name, workspace_id).update_meta(last_error=exc.message)
        raise click.ClickException(exc.message) from None
    click.echo(said)


@tracker_cli.command("status")
@click.argument("workspace_id", type=int)
def status(workspace_id: int) -> None:
    """Is WORKSPACE_ID's tracker connected, and when did it last poll."""
    _workspace(workspace_id)
    st = trackers.tracker_status(workspace_id)
    click.echo(f"status: {st.status}")
    if st.connected_as:
        click.echo(f"connected as: {st.connected_as}")
    for label, value in (
        ("last poll", st.last_poll_at),
        ("last successful poll", st.last_success_at),
        ("next poll", st.next_poll_at),
    ):
        click.echo(f"{label}: {value.isoformat() if value else '-'}")
    if st.last_error:
        click.echo(f"last error: {st.last_error}")


@tracker_cli.command("disconnect")
@click.argument("workspace_id", type=int)
@SOURCE_OPTION
def disconnect(workspace_id: int, source: str | None) -> None:
    """Forget WORKSPACE_ID's tracker credentials and stop polling."""
    found = _source(_workspace(workspace_id), source)
    outcome = trackers.disconnect_account(found.name, workspace_id)
    click.echo("disconnected" if outcome.done else "was not connected")
    if outcome.warning:
        click.echo(f"warning: {outcome.warning}", err=True)


def add_source_commands() -> None:
    """Attach each registered source's own commands (a name two sources share is an error)."""
    for found in trackers.SOURCES.values():
        for command in found.commands:
            existing = tracker_cli.commands.get(command.name)
            if existing is not None and existing is not command:
                raise RuntimeError(f"tracker command {command.name!r} is registered twice")
            tracker_cli.add_command(command)
