"""WebWork settings where ``0`` means something: polling off, and the catalog read each poll."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connector import db, worker
from connector.models import Job, JobState
from webhooks.webwork.poller import poll_workspace
from webhooks.webwork.polls import JOB_KIND, schedule_poll
from webhooks.webwork.tests.test_poll_faults import due_poll_job


def test_poll_seconds_0_switches_periodic_polling_off(
    app: Any, workspace: Any, webwork: Any, connected: str
) -> None:
    app.config["WEBWORK_POLL_SECONDS"] = 0
    assert worker.run_job(due_poll_job(workspace.id)) == JobState.DONE
    with db.new_session() as s:
        assert not s.scalars(
            select(Job).where(Job.kind == JOB_KIND, Job.state == JobState.PENDING)
        ).first()
    assert schedule_poll(workspace.id) is None  # nothing periodic
    assert schedule_poll(workspace.id, delay_seconds=0.0) is not None  # Poll now still works


def test_rates_refresh_seconds_0_reads_the_catalog_at_every_poll(
    app: Any, workspace: Any, webwork: Any, connected: str
) -> None:
    app.config["WEBWORK_RATES_REFRESH_SECONDS"] = 0
    poll_workspace(workspace.id)
    poll_workspace(workspace.id)
    assert len(webwork.api_calls("contracts")) == 2
    app.config["WEBWORK_RATES_REFRESH_SECONDS"] = 3600
    poll_workspace(workspace.id)
    assert len(webwork.api_calls("contracts")) == 2
