"""``flask --app connector tracker backfill WORKSPACE_ID --since DATE``: the backfill with its
progress (pages listed, then approvals drafted by the worker) and what Ctrl-C keeps."""

from __future__ import annotations

import sys
import time
from datetime import date
from typing import Any

import click

from connector import db, worker
from connector.models import Workspace
from webhooks.webwork.backfill import BackfillReport, Drafting, backfill, drafting
from webhooks.webwork.client import TrackerError
from webhooks.webwork.poller import PollBusy

# Stop waiting for the worker when nothing moved for this long (no worker running?).
STALLED_SECONDS = 60.0
INTERRUPTED = 130  # the shell's exit status after Ctrl-C


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from None


class _ListingBar:
    """One bar over WebWork's pages (its length from the pagination, once known)."""

    def __init__(self, dry_run: bool):
        self.dry_run = dry_run
        self.bar: Any = None
        self.report = BackfillReport(dry_run=dry_run)

    def label(self) -> str:
        poll = self.report.poll
        verb = "would create" if self.dry_run else "to create"
        return (
            f"page {poll.pages}/{poll.last_page or '?'}: {poll.approved} approved, "
            f"{poll.new_approvals} new, {self.report.drafts} draft(s) {verb}, "
            f"{self.report.holds} hold(s)"
        )

    def __call__(self, report: BackfillReport) -> None:
        self.report = report
        if self.bar is None:
            self.bar = click.progressbar(
                length=max(report.poll.last_page or report.poll.pages, 1),
                label="Listing WebWork",
                file=sys.stderr,
                show_pos=True,
            )
        if report.poll.last_page and report.poll.last_page > self.bar.length:
            self.bar.length = report.poll.last_page
        self.bar.label = self.label()
        self.bar.update(report.poll.pages - self.bar.pos)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()


def _wait_for_worker(workspace_id: int, delivery_ids: list[int]) -> Drafting:
    """A bar over the recorded approvals while the worker drafts them."""
    state = drafting(workspace_id, delivery_ids)
    if state.done:
        return state
    click.echo("Waiting for the worker to draft them (Ctrl-C stops waiting; nothing is lost).")
    moved_at, last = time.monotonic(), state.finished
    with click.progressbar(
        length=state.approvals, label="Drafting", file=sys.stderr, show_pos=True
    ) as bar:
        bar.update(state.finished)
        while not state.done:
            if time.monotonic() - moved_at > STALLED_SECONDS:
                click.echo(
                    f"\\nNo approval finished in {STALLED_SECONDS:.0f} s: is a worker running "
                    "(Procfile `worker`)? The approvals are kept and drafted once one runs."
                )
                break
            time.sleep(1.0)
            state = drafting(workspace_id, delivery_ids)
            if state.finished != last:
                moved_at, last = time.monotonic(), state.finished
            bar.label = f"Drafting: {state.drafted} draft(s) created, {state.held} held"
            bar.update(state.finished - bar.pos)
    return state


def _interrupted(listing: _ListingBar, dry_run: bool) -> None:
    listing.finish()
    poll = listing.report.poll
    if dry_run:
        click.echo(f"\\nInterrupted after page {poll.pages}: nothing was created (dry run).")
    else:
        click.echo(
            f"\\nInterrupted after page {poll.pages} of {poll.last_page or '?'}: the "
            f"{len(poll.delivery_ids)} approval(s) recorded so far are kept and the worker drafts "
            "them. Run the same command again to resume: what was recorded is skipped."
        )
    raise click.exceptions.Exit(INTERRUPTED)


@click.command("backfill")
@click.argument("workspace_id", type=int)
@click.option("--since", required=True, help="First day (YYYY-MM-DD) of periods to look at.")
@click.option("--until", default=None, help="Last day (YYYY-MM-DD); default today.")
@click.option("--dry-run", is_flag=True, help="Read and price only; create nothing anywhere.")
@click.option(
    "--no-wait", is_flag=True, help="Do not wait for the worker to draft what was recorded."
)
def backfill_command(
    workspace_id: int, since: str, until: str | None, dry_run: bool, no_wait: bool
) -> None:
    """Bring in every timesheet approved in WebWork since --since. Safe to interrupt and re-run."""
    with db.new_session() as s:
        if s.get(Workspace, workspace_id) is None:
            raise click.ClickException(f"no workspace {workspace_id}")
    start, end = _day(since, "--since"), _day(until, "--until")
    assert start is not None
    worker.start_heartbeat()  # keeps this poll's lock alive however long a page takes
    listing = _ListingBar(dry_run)
    try:
        report = backfill(workspace_id, start, until=end, dry_run=dry_run, on_page=listing)
    except KeyboardInterrupt:
        _interrupted(listing, dry_run)
        return
    except PollBusy:
        raise click.ClickException(
            "a poll of this workspace is running; try again in a minute"
        ) from None
    except TrackerError as exc:
        listing.finish()
        raise click.ClickException(
            f"{exc.message} (what was found so far is kept: run the same command again)"
        ) from None
    listing.finish()
    _summary(workspace_id, report, dry_run=dry_run, wait=not no_wait)


def _summary(workspace_id: int, report: BackfillReport, *, dry_run: bool, wait: bool) -> None:
    poll = report.poll
    found = (
        f"{poll.approved} approved timesheet(s) found on {poll.pages} page(s); "
        f"{poll.new_approvals} new"
    )
    if dry_run:
        click.echo(
            f"DRY RUN: nothing was created. {found}; drafts it would create: {report.drafts}; "
            f"holds: {report.holds}; not usable: {poll.invalid}"
        )
        return
    click.echo(
        f"{found}; drafts to create: {report.drafts}; holds: {report.holds}; "
        f"not usable: {poll.invalid}"
    )
    state = drafting(workspace_id, poll.delivery_ids)
    if wait and not state.done:
        try:
            state = _wait_for_worker(workspace_id, poll.delivery_ids)
        except KeyboardInterrupt:
            click.echo(
                f"\\nStopped waiting: {state.finished} of {state.approvals} approval(s) processed "
                "so far; the worker goes on with the rest (nothing is lost)."
            )
            raise click.exceptions.Exit(INTERRUPTED) from None
    click.echo(
        f"drafts created: {state.drafted}; held: {state.held}; "
        f"approvals still with the worker: {state.approvals - state.finished}"
    )
