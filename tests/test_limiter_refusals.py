"""A create the limiter (or a 429) refused before anything was sent leaves nothing to look up:
the next try goes straight to the create, so a throttled burst does not cost extra requests."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from connector import db, pipeline
from connector.models import Draft, Timesheet
from connector.providers.base import RetryLater, Throttled
from connector.providers.local import LocalProvider
from tests.helpers import event, map_clients_locally
from tests.test_pipeline import APPROVED, drafts_api, invoices


def _refuse_globex_once(monkeypatch: Any, error: RetryLater) -> list[str]:
    """LocalProvider refuses Globex's first create with ``error``; returns the keys looked up."""
    original_create = LocalProvider.create_draft
    original_find = LocalProvider.find_draft
    refused: list[bool] = []
    looked_up: list[str] = []
    creating: list[bool] = []

    def create(self: Any, draft: Any) -> Any:
        if draft.customer_name == "Globex Corporation" and not refused:
            refused.append(True)
            raise error
        creating.append(True)
        try:
            return original_create(self, draft)
        finally:
            creating.pop()

    def find(self: Any, key: str) -> Any:
        if not creating:  # the pipeline's look-up, not the local ledger's own idempotency check
            looked_up.append(key)
        return original_find(self, key)

    monkeypatch.setattr(LocalProvider, "create_draft", create)
    monkeypatch.setattr(LocalProvider, "find_draft", find)
    return looked_up


def _globex() -> Draft:
    return next(
        d for d in db.session.scalars(select(Draft)) if d.customer_name == "Globex Corporation"
    )


def test_a_refusal_that_sent_nothing_is_not_looked_up_before_the_next_try(
    workspace: Any, post_event: Any, client: Any, monkeypatch: Any
):
    map_clients_locally(workspace.id)
    looked_up = _refuse_globex_once(
        monkeypatch,
        Throttled("the shared rate limit is fully booked", retry_after=1.0, created_nothing=True),
    )
    post_event(workspace, event(APPROVED))
    refused = _globex()
    assert refused.status == "pending" and refused.attempts == 0
    assert not pipeline.is_live(refused)  # nothing at the provider may hold its hours

    ts = db.session.scalars(select(Timesheet)).one()
    pipeline.bill_timesheet_now(workspace.id, ts.id, current_app.config)
    db.session.expire_all()
    assert looked_up == []  # straight to the create: no extra request
    assert sorted(d["status"] for d in drafts_api(client, workspace)["drafts"]) == ["drafted"] * 3
    assert _globex().attempts == 1
    assert len(invoices()) == 3


def test_a_refusal_that_may_have_created_something_is_still_looked_up(
    workspace: Any, post_event: Any, client: Any, monkeypatch: Any
):
    """A provider that cannot say nothing was created (e.g. a 429 between a Stripe invoice and
    its lines) keeps the look-up before the next create."""
    map_clients_locally(workspace.id)
    looked_up = _refuse_globex_once(monkeypatch, Throttled("429", retry_after=1.0))
    post_event(workspace, event(APPROVED))
    refused = _globex()
    assert refused.attempts == 1 and pipeline.is_live(refused)

    ts = db.session.scalars(select(Timesheet)).one()
    pipeline.bill_timesheet_now(workspace.id, ts.id, current_app.config)
    db.session.expire_all()
    assert looked_up == [refused.key]
    assert sorted(d["status"] for d in drafts_api(client, workspace)["drafts"]) == ["drafted"] * 3
    assert len(invoices()) == 3
