"""The cross-process locks pipeline work runs under: one worker at a time per approval
(timesheet), and one writer at a time per shared invoice. Both live as long as a job lease and
are renewed with it by the worker's heartbeat, so a slow job keeps its lock and a killed
worker's lock frees itself when its job becomes claimable again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from connector import worker
from connector.locks import LockTimeout, advisory_lock
from connector.providers.base import RetryLater


@contextmanager
def work_lock(name: str, *, wait: float, busy: str) -> Iterator[None]:
    """Hold ``name`` or, after ``wait`` seconds, give the worker thread back: the job is retried
    a few seconds later (``busy`` says why) rather than waiting as long as the other run takes."""
    lease = worker.settings().lease_seconds
    try:
        with advisory_lock(name[:200], ttl=lease, timeout=min(lease, wait), keepalive=True):
            yield
    except LockTimeout:
        raise RetryLater(busy, retry_after=min(lease, 5.0)) from None


def timesheet_lock(workspace_id: int, timesheet_id: str) -> AbstractContextManager[None]:
    return work_lock(
        f"timesheet:{workspace_id}:{timesheet_id}",
        wait=2.0,
        busy="another worker is processing this timesheet",
    )
