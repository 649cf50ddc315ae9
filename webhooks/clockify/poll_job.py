"""The periodic poll job (kind ``clockify_poll``): poll, record the outcome, schedule the next.

No outcome ends polling: a failed pass is retried by the next (after at least Clockify's
Retry-After); a refused key holds the connection ("Reconnect Clockify") and the next runs
re-check it on a slow schedule until it works again or the connection is removed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from connector.jobs import LeaseLost
from connector.models import ConnectionStatus, Job
from webhooks.clockify.client import ClockifyError, Forbidden, ReconnectRequired, Unavailable
from webhooks.clockify.connection import store_for
from webhooks.clockify.health import RECHECK_SECONDS, hold, recheck
from webhooks.clockify.poller import PollBusy, poll_workspace
from webhooks.clockify.polls import poll_seconds, schedule_poll

log = logging.getLogger(__name__)


def poll_job(job: Job, config: Mapping[str, Any]) -> None:
    workspace_id = job.workspace_id
    store = store_for(workspace_id)
    row = store.connection()
    if row is None or row.status == ConnectionStatus.DISCONNECTED:
        return
    try:
        _poll_or_recheck(workspace_id, row.status, config)
    except LeaseLost:
        raise
    except Exception as exc:
        # A bug must not end polling: it is logged, shown, and the next poll is scheduled.
        log.exception("Clockify poll of workspace %s crashed", workspace_id)
        store.update_meta(last_error=f"The poll failed unexpectedly ({type(exc).__name__}).")
        schedule_poll(workspace_id)


def _poll_or_recheck(workspace_id: int, status: str, config: Mapping[str, Any]) -> None:
    store = store_for(workspace_id)
    if status == ConnectionStatus.RECONNECT_NEEDED and not recheck(workspace_id):
        schedule_poll(workspace_id, delay_seconds=RECHECK_SECONDS)
        return
    delay: float | None = None
    try:
        poll_workspace(workspace_id)
    except PollBusy:
        pass
    except (ReconnectRequired, Forbidden) as exc:
        hold(workspace_id, exc.message)
        schedule_poll(workspace_id, delay_seconds=RECHECK_SECONDS)
        return
    except Unavailable as exc:
        store.update_meta(last_error=exc.message)
        if exc.retry_after:
            delay = max(poll_seconds(config), exc.retry_after)
    except ClockifyError as exc:
        store.update_meta(last_error=exc.message)
    if poll_seconds(config) > 0 or delay is not None:
        schedule_poll(workspace_id, delay_seconds=delay)
