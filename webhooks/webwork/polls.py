"""When WebWork is polled: the shared poll machinery (``webhooks/polling.py``) under WebWork's
job kind. Apart from the poller so that the connection module can schedule without importing
the poller that reads connections."""

from __future__ import annotations

from webhooks import polling
from webhooks.webwork import SOURCE

__all__ = ["JOB_KIND", "cancel_polls", "schedule_poll"]

JOB_KIND = "webwork_poll"


def schedule_poll(
    workspace_id: int, *, delay_seconds: float | None = None, run_now: bool = False
) -> int | None:
    """ONE pending poll job for the workspace, due after ``delay_seconds`` (default
    ``WEBWORK_POLL_SECONDS``; ``0`` there disables periodic polling). ``run_now`` nudges it."""
    return polling.schedule_poll(SOURCE, workspace_id, delay_seconds=delay_seconds, run_now=run_now)


def cancel_polls(workspace_id: int) -> None:
    polling.cancel_polls(SOURCE, workspace_id)
