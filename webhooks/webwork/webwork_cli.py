"""``flask --app connector tracker ...``: connect WebWork, poll, backfill, status, disconnect."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from connector import db
from connector.models import Workspace
from connector.trackers import tracker_status
from webhooks.webwork import connection as conn
from webhooks.webwork.backfill_cli import backfill_command
from webhooks.webwork.client import WebWorkError
from webhooks.webwork.poller import PollBusy, poll_workspace
from webhooks.webwork.rate_changes import rebill_changed_rates

tracker_cli = AppGroup("tracker", help="Connect the time tracker (WebWork), poll, backfill.")
tracker_cli.add_command(backfill_command)


def _workspace(workspace_id: int) -> Workspace:
    with db.new_session() as s:
        ws = s.get(Workspace, workspace_id)
        if ws is None:
            raise click.ClickException(f"no workspace {workspace_id}")
        s.expunge(ws)
        return ws


@tracker_cli.command("connect")
@click.argument("workspace_id", type=int)
@click.option(
    "--token-stdin",
    is_flag=True,
    required=True,
    help="Read a WebWork personal access token from standard input (never from argv).",
)
def connect(workspace_id: int, token_stdin: bool) -> None:
    """Connect WORKSPACE_ID's WebWork account with a personal access token (checked first)."""
    ws = _workspace(workspace_id)
    token = sys.stdin.readline().strip()
    try:
        meta = conn.connect_with_token(ws.id, ws.tracker_workspace_id, token, connected_by="cli")
    except conn.ConnectError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(
        f"WebWork connected for workspace {ws.id} as {meta['connected_as']} "
        f"(token {meta['masked_key']}); polling every few minutes starts now."
    )


@tracker_cli.command("poll")
@click.argument("workspace_id", type=int)
@click.option(
    "--refresh-rates",
    is_flag=True,
    help="Re-read projects, contracts (rates) and clients now instead of using the cache, and "
    "re-bill approvals whose unsent drafts were priced at a rate that changed.",
)
def poll(workspace_id: int, refresh_rates: bool) -> None:
    """Poll WORKSPACE_ID's WebWork timesheets now (in this process) and print what was found."""

    _workspace(workspace_id)
    try:
        report = poll_workspace(workspace_id, refresh_catalog=refresh_rates)
    except PollBusy:
        click.echo("another poll of this workspace is running; nothing to do")
        return
    except WebWorkError as exc:
        conn.store_for(workspace_id).update_meta(last_error=exc.message)
        raise click.ClickException(exc.message) from None
    click.echo(
        f"{report.timesheets} timesheet(s) on {report.pages} page(s): "
        f"{report.new_approvals} new approval(s), {report.withdrawals} withdrawal(s), "
        f"{report.invalid} not usable" + (f"; stopped: {report.stopped}" if report.stopped else "")
    )
    if refresh_rates:
        changes = rebill_changed_rates(workspace_id)
        click.echo(
            f"rates refreshed: {changes.rebilled} approval(s) with unsent drafts at a changed "
            f"rate queued for a re-bill; {changes.held} held approval(s) billed again"
            + (
                f"; {changes.sent} approval(s) at a changed rate were already sent and are "
                "left as they are (use Re-bill on each if wanted)"
                if changes.sent
                else ""
            )
        )


@tracker_cli.command("status")
@click.argument("workspace_id", type=int)
def status(workspace_id: int) -> None:
    """Is WORKSPACE_ID's tracker connected, and when did it last poll."""
    _workspace(workspace_id)
    st = tracker_status(workspace_id)
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
def disconnect(workspace_id: int) -> None:
    """Forget WORKSPACE_ID's WebWork token and stop polling."""
    _workspace(workspace_id)
    click.echo("disconnected" if conn.disconnect(workspace_id) else "was not connected")
