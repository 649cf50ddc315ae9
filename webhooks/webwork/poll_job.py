"""WebWork's :class:`~connector.trackers.Poller`: one poll, its failures in the shared terms.

The shared machinery (``webhooks/polling.py``) runs it as the periodic job ``webwork_poll``
and from ``flask tracker poll``: a confirmed refusal of the token holds the connection (and
``connection_health.recheck`` resumes it), WebWork's Retry-After delays the next poll.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector import trackers
from webhooks.webwork.client import Forbidden, ReconnectRequired, TrackerError, Unavailable
from webhooks.webwork.connection import WAIT_RECONNECT
from webhooks.webwork.connection_health import RECHECK_SECONDS
from webhooks.webwork.connection_health import recheck as recheck_token
from webhooks.webwork.poller import Disconnected, PollBusy, poll_workspace
from webhooks.webwork.polls import JOB_KIND
from webhooks.webwork.rate_changes import rebill_changed_rates


def _report(report: Any) -> str:
    return (
        f"{report.timesheets} timesheet(s) on {report.pages} page(s): "
        f"{report.new_approvals} new approval(s), {report.withdrawals} withdrawal(s), "
        f"{report.invalid} not usable" + (f"; stopped: {report.stopped}" if report.stopped else "")
    )


def _rates_report(workspace_id: int) -> str:
    changes = rebill_changed_rates(workspace_id)
    return (
        f"rates refreshed: {changes.rebilled} approval(s) with unsent drafts at a changed "
        f"rate queued for a re-bill; {changes.held} held approval(s) billed again"
        + (
            f"; {changes.sent} approval(s) at a changed rate were already sent and are "
            "left as they are (use Re-bill on each if wanted)"
            if changes.sent
            else ""
        )
    )


def poll(workspace_id: int, config: Mapping[str, Any], refresh: bool) -> str:
    """Poll WebWork now; ``refresh`` re-reads projects and rates and re-bills changed rates."""
    try:
        report = poll_workspace(workspace_id, refresh_catalog=refresh)
    except PollBusy as exc:
        raise trackers.PollBusy(str(exc)) from None
    except Disconnected as exc:
        return f"stopped: {exc}"
    except (ReconnectRequired, Forbidden) as exc:
        raise trackers.PollProblem(exc.message, refused=True) from None
    except Unavailable as exc:
        raise trackers.PollProblem(exc.message, retry_after=exc.retry_after) from None
    except TrackerError as exc:
        raise trackers.PollProblem(exc.message) from None
    said = _report(report)
    return said + "\n" + _rates_report(workspace_id) if refresh else said


POLLER = trackers.Poller(
    job_kind=JOB_KIND,
    interval_setting="WEBWORK_POLL_SECONDS",
    poll=poll,
    recheck=recheck_token,
    recheck_seconds=RECHECK_SECONDS,
    wakes=(WAIT_RECONNECT,),
)
