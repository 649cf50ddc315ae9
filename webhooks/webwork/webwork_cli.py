"""``flask --app connector tracker ...``: connect WebWork, poll, backfill, status, disconnect."""

from __future__ import annotations

import sys
from datetime import date

import click
from flask.cli import AppGroup

from connector import db
from connector.models import Workspace
from connector.trackers import tracker_status
from webhooks.webwork import connection as conn
from webhooks.webwork.backfill import backfill
from webhooks.webwork.client import WebWorkError
from webhooks.webwork.poller import PollBusy, poll_workspace

tracker_cli = AppGroup("tracker", help="Connect the time tracker (WebWork), poll, backfill.")


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
    help="Re-read projects, contracts (rates) and clients now instead of using the cache.",
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


@tracker_cli.command("backfill")
@click.argument("workspace_id", type=int)
@click.option("--since", required=True, help="First day (YYYY-MM-DD) of periods to look at.")
@click.option("--dry-run", is_flag=True, help="Read and price only; create nothing anywhere.")
def backfill_command(workspace_id: int, since: str, dry_run: bool) -> None:
    """Bring in every timesheet approved in WebWork since --since. Safe to interrupt and re-run."""

    _workspace(workspace_id)
    try:
        start = date.fromisoformat(since)
    except ValueError:
        raise click.BadParameter(
            f"{since!r} is not a date (YYYY-MM-DD)", param_hint="--since"
        ) from None
    bar = {"obj": None, "done": 0}

    def on_page(report) -> None:  # type: ignore[no-untyped-def]
        poll = report.poll
        if bar["obj"] is None:
            bar["obj"] = click.progressbar(
                length=max(poll.timesheets, 1), label="timesheets", file=sys.stderr
            )
        progress = bar["obj"]
        if poll.timesheets > progress.length:  # type: ignore[attr-defined]
            progress.length = poll.timesheets  # type: ignore[attr-defined]
        progress.update(poll.timesheets - bar["done"])  # type: ignore[attr-defined]
        bar["done"] = poll.timesheets
        progress.label = (  # type: ignore[attr-defined]
            f"{poll.timesheets} found, {report.drafts} draft(s) "
            f"{'would be ' if dry_run else ''}created, {report.holds} hold(s)"
        )

    try:
        report = backfill(workspace_id, start, dry_run=dry_run, on_page=on_page)
    except PollBusy:
        raise click.ClickException(
            "a poll of this workspace is running; try again in a minute"
        ) from None
    except WebWorkError as exc:
        raise click.ClickException(
            f"{exc.message} (what was found so far is kept: run the same command again)"
        ) from None
    finally:
        if bar["obj"] is not None:
            bar["obj"].render_finish()  # type: ignore[attr-defined]
    poll = report.poll
    verb = "would be created" if dry_run else "planned"
    click.echo(
        f"{'DRY RUN: nothing was created. ' if dry_run else ''}"
        f"{poll.timesheets} approved timesheet(s) found on {poll.pages} page(s); "
        f"{poll.new_approvals} new; drafts {verb}: {report.drafts}; holds: {report.holds}; "
        f"not usable: {poll.invalid}" + ("" if dry_run else f"; drafted so far: {report.drafted}")
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
