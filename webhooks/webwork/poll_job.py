"""The periodic poll job (outbox kind ``webwork_poll``): poll, record the outcome in plain
words, schedule the next poll. Exactly one is pending per connected workspace (``polls.py``).

No outcome ends polling: a failed poll is retried by the next one (after at least WebWork's
Retry-After); a confirmed refusal of the token holds the connection and the next runs re-check
it on a slow schedule (``connection_health``) until it works again or is removed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from connector import worker
from connector.jobs import LeaseLost
from connector.models import ConnectionStatus, Job
from webhooks.webwork.client import Forbidden, ReconnectRequired, Unavailable, WebWorkError
from webhooks.webwork.connection import WAIT_RECONNECT, store_for
from webhooks.webwork.connection_health import RECHECK_SECONDS, hold, recheck
from webhooks.webwork.poller import Disconnected, PollBusy, poll_workspace
from webhooks.webwork.polls import schedule_poll

log = logging.getLogger(__name__)

DEFAULT_POLL_SECONDS = 300.0


def _poll_seconds(config: Mapping[str, Any]) -> float:
    every = config.get("WEBWORK_POLL_SECONDS")
    return DEFAULT_POLL_SECONDS if every in (None, "") else float(every)


def poll_job(job: Job, config: Mapping[str, Any]) -> None:
    workspace_id = job.workspace_id
    store = store_for(workspace_id)
    row = store.connection()
    if row is None or row.status == ConnectionStatus.DISCONNECTED:
        return  # removed: nothing to poll, nothing to wait for
    try:
        _poll_or_recheck(workspace_id, row.status, config)
    except LeaseLost:
        raise
    except Exception as exc:
        # A bug must not end polling: it is logged, shown, and the next poll is scheduled.
        log.exception("WebWork poll of workspace %s crashed", workspace_id)
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
    except Disconnected:
        return
    except (ReconnectRequired, Forbidden) as exc:
        hold(workspace_id, exc.message)
        return
    except Unavailable as exc:
        store.update_meta(last_error=exc.message)
        if exc.retry_after:
            delay = max(_poll_seconds(config), exc.retry_after)
    except WebWorkError as exc:
        store.update_meta(last_error=exc.message)
    else:
        # Webhook approvals that met a refusal WebWork no longer gives go on now.
        worker.resume_waiting(workspace_id, WAIT_RECONNECT)
    row = store.connection()
    if row is not None and row.status != ConnectionStatus.DISCONNECTED:
        schedule_poll(workspace_id, delay_seconds=delay)
