"""Clockify fixtures: a stateful fake at the wire, an instant client, people and projects."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import responses
from sqlalchemy import select

from connector import db
from connector.models import Draft, Rate, Timesheet
from tests.helpers import map_clients_locally
from webhooks import polling
from webhooks.clockify.tests.fake import API, REPORTS, FakeClockify, NoLimiter
from webhooks.clockify.tests.fake import Delivery as Sent

ADA = ("64f0aa11bb22cc33dd44ee77", "Ada Lovelace", "ada@example.com")
GRACE = ("64f0aa11bb22cc33dd44ee88", "Grace Hopper", "grace@example.com")
GLOBEX, INITECH = "cl-globex", "cl-initech"
WEBSITE, PIPELINE, INTERNAL = "pr-website", "pr-pipeline", "pr-internal"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    from webhooks.clockify import client as client_module

    waited: list[float] = []
    monkeypatch.setattr(client_module, "default_sleep", waited.append)
    return waited


@pytest.fixture
def limiter(monkeypatch: pytest.MonkeyPatch) -> NoLimiter:
    from connector import ratelimit

    fake = NoLimiter()
    monkeypatch.setattr(ratelimit, "shared_limiter", lambda: fake)
    return fake


def populate(fake: FakeClockify) -> None:
    """Ada and Grace; Globex (Website at 100.00/h in Clockify) and Initech (Pipeline, no rate
    in Clockify: our rate table prices it); an internal non-billable project."""
    fake.add_user(*ADA)
    fake.add_user(*GRACE, tz="America/New_York")
    fake.add_client(GLOBEX, "Globex Corporation")
    fake.add_client(INITECH, "Initech")
    fake.add_project(WEBSITE, "Website", GLOBEX, rate_cents=10000)
    fake.add_project(PIPELINE, "Data Pipeline", INITECH)
    fake.add_project(INTERNAL, "Internal", None, billable=False)


@pytest.fixture
def clockify(sleeps: list[float], limiter: NoLimiter) -> Iterator[FakeClockify]:
    fake = FakeClockify()
    populate(fake)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.register(rsps)
        yield fake


@pytest.fixture
def clockify_app(app: Any, clockify: FakeClockify) -> FakeClockify:
    app.config.update(CLOCKIFY_API_BASE_URL=API, CLOCKIFY_REPORTS_BASE_URL=REPORTS)
    return clockify


def ada_week(fake: FakeClockify) -> str:
    """Ada's week of 2026-11-02 (Berlin), submitted: Website 4h + 1h40 (Clockify's 100.00/h),
    Pipeline 1h05 (no Clockify rate), Internal 45 min (not billable). Returns the request id."""
    fake.track(ADA[0], "2026-11-02T09:00", 240, WEBSITE, rate_cents=10000)
    fake.track(ADA[0], "2026-11-02T14:00", 65, PIPELINE)
    fake.track(ADA[0], "2026-11-03T00:30", 100, WEBSITE, rate_cents=10000)  # 23:30Z the day before
    fake.track(ADA[0], "2026-11-04T10:00", 45, INTERNAL, billable=False)
    return fake.submit(ADA[0], "2026-11-02")


@pytest.fixture
def cf_workspace(make_workspace: Any) -> Any:
    """A connector workspace receiving approvals from the fake's Clockify workspace."""
    from webhooks.clockify.tests.fake import WORKSPACE

    return make_workspace(tracker_workspace_id=WORKSPACE, tracker_source="clockify")


def hook_url(app: Any, workspace: Any) -> str:
    return f"{app.config['PUBLIC_BASE_URL']}/webhooks/clockify/{workspace.endpoint_token}"


@pytest.fixture
def connected(app: Any, clockify_app: FakeClockify, cf_workspace: Any) -> str:
    """Clockify connected with the owner's key (one webhook registered); returns the key."""
    key = clockify_app.add_key()
    with app.app_context():
        connect(cf_workspace.id, key)
    return key


def connect(workspace_id: int, key: str) -> str:
    """What `tracker connect --source clockify` and the console's form do."""
    from connector import trackers

    return trackers.connect_account("clockify", workspace_id, key, "test")


CLIENTS = {
    GLOBEX: ("Globex Corporation", "ap@globex.example"),
    INITECH: ("Initech", "billing@initech.example"),
}


@pytest.fixture
def billed(app: Any, cf_workspace: Any, connected: str) -> Any:
    """Clients mapped to local customers; Pipeline (no rate in Clockify) at 95.00/h here."""
    map_clients_locally(cf_workspace.id, CLIENTS)
    with db.session_scope() as s:
        s.add(
            Rate(
                workspace_id=cf_workspace.id,
                project_id=PIPELINE,
                amount=Decimal("95.00"),
                currency="USD",
                effective_from=date(2026, 1, 1),
            )
        )
    return cf_workspace


def post(client: Any, app: Any, sent: list[Sent]) -> list[int]:
    base = app.config["PUBLIC_BASE_URL"]
    return [
        client.post(d.url.removeprefix(base), data=d.body, headers=d.headers).status_code
        for d in sent
    ]


def drafts(workspace_id: int, request_id: str) -> dict[str, tuple[str, Decimal | None]]:
    """The live revision's drafts: customer -> (status, total)."""
    with db.new_session() as s:
        ts = s.scalars(
            select(Timesheet).where(
                Timesheet.workspace_id == workspace_id, Timesheet.timesheet_id == request_id
            )
        ).one()
        return {
            d.customer_name or d.subject_key: (d.status, d.total)
            for d in s.scalars(
                select(Draft).where(Draft.timesheet_pk == ts.id, Draft.revision == ts.revision)
            )
        }


def every_draft(workspace_id: int) -> list[tuple[str | None, str, Decimal | None]]:
    with db.new_session() as s:
        return [
            (d.customer_name, d.status, d.total)
            for d in s.scalars(
                select(Draft).where(Draft.workspace_id == workspace_id).order_by(Draft.id)
            )
        ]


def poll(workspace_id: int) -> str:
    from flask import current_app

    return polling.poll_now("clockify", workspace_id, current_app.config, False)
