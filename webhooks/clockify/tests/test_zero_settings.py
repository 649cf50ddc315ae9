"""Clockify settings where ``0`` means something: no periodic poll (webhooks alone), and the
clients and projects read at every poll."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connector import db
from connector.models import Job, JobState
from webhooks import polling
from webhooks.clockify.seam import POLL_JOB
from webhooks.clockify.tests.conftest import poll
from webhooks.clockify.tests.fake import FakeClockify


def _pending_polls(workspace_id: int) -> int:
    with db.new_session() as s:
        return len(
            list(
                s.scalars(
                    select(Job).where(
                        Job.workspace_id == workspace_id,
                        Job.kind == POLL_JOB,
                        Job.state == JobState.PENDING,
                    )
                )
            )
        )


def test_poll_seconds_0_leaves_webhooks_alone_and_poll_now_still_works(
    app: Any, clockify_app: FakeClockify, cf_workspace: Any, connected: str
) -> None:
    app.config["CLOCKIFY_POLL_SECONDS"] = 0
    with app.app_context():
        polling.schedule_poll("clockify", cf_workspace.id, delay_seconds=0.0, run_now=True)
        assert _pending_polls(cf_workspace.id) == 0  # polled once, nothing periodic after it
        assert polling.schedule_poll("clockify", cf_workspace.id) is None
        assert polling.schedule_poll("clockify", cf_workspace.id, delay_seconds=0.0) is not None


def test_catalog_seconds_0_reads_clients_and_projects_at_every_poll(
    app: Any, clockify_app: FakeClockify, cf_workspace: Any, connected: str
) -> None:
    app.config["CLOCKIFY_CATALOG_SECONDS"] = 0
    with app.app_context():
        poll(cf_workspace.id)
        poll(cf_workspace.id)
        assert len(clockify_app.api_calls("/projects")) == 2
        app.config["CLOCKIFY_CATALOG_SECONDS"] = 3600
        poll(cf_workspace.id)
        assert len(clockify_app.api_calls("/projects")) == 2
