"""Replay shows its outcome without a manual reload, and a malformed delivery offers none (#21
item 5)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from connector import db, worker
from connector.models import Delivery, DeliveryStatus, Job, JobState
from tests.admin.events import approval
from tests.app_fixtures import csrf_token


def _replay(client: Any, workspace_id: int, delivery_id: int) -> Any:
    return client.post(
        f"/workspaces/{workspace_id}/deliveries/{delivery_id}/replay",
        data={"csrf_token": csrf_token(client)},
    )


def test_a_queued_replay_page_reloads_itself_until_the_worker_ran_it(
    admin_client: Any, workspace: Any, post_event: Any, monkeypatch: Any
) -> None:
    post_event(workspace, approval("ts-1"))
    monkeypatch.setattr(worker, "job_committed", lambda _job_id: None)  # no worker runs it yet
    response = _replay(admin_client, workspace.id, 1)
    assert response.status_code == 303
    queued = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="replay-outcome" data-done="no"' in queued
    assert "this page reloads itself" in queued
    assert '<meta http-equiv="refresh" content="2">' in queued  # no script: CSP-safe
    assert "Refresh now" in queued

    # The worker runs it: the same address now says what it did, and stops reloading.
    job = db.session.scalar(select(Job).order_by(Job.id.desc()))
    job.state = JobState.DONE
    db.session.commit()
    done = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="replay-outcome" data-done="yes"' in done
    assert "Replayed delivery #1" in done
    assert 'http-equiv="refresh"' not in done


def test_a_replay_id_of_another_delivery_shows_nothing(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    post_event(workspace, approval("ts-1"))
    post_event(workspace, approval("ts-2"))
    location = _replay(admin_client, workspace.id, 1).headers["Location"]
    job_id = location.rsplit("=", 1)[1]
    other = admin_client.get(f"/workspaces/{workspace.id}/deliveries/2?replay={job_id}")
    assert "replay-outcome" not in other.get_data(as_text=True)
    for junk in ("²", "-1", "9" * 30, "abc"):
        page = admin_client.get(f"/workspaces/{workspace.id}/deliveries/1?replay={junk}")
        assert page.status_code == 200 and "replay-outcome" not in page.get_data(as_text=True)


def test_a_malformed_delivery_names_its_type_and_offers_no_replay(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    event = approval("ts-bad")
    event["data"]["timesheet"]["date_to"] = "2000-01-01"  # before date_from: breaks the contract
    assert post_event(workspace, event).status_code == 422
    row = db.session.scalars(select(Delivery)).one()
    assert row.status == DeliveryStatus.INVALID and row.event_type is None

    page = admin_client.get(f"/workspaces/{workspace.id}/deliveries/{row.id}")
    text = page.get_data(as_text=True)
    assert "Approval event" in text and "as the body names it" in text
    assert "Replay this delivery" not in text and 'id="not-replayable"' in text

    jobs_before = db.session.scalar(select(func.count()).select_from(Job))
    refused = _replay(admin_client, workspace.id, row.id)
    assert refused.status_code == 303
    assert "cannot be replayed" in admin_client.get(refused.headers["Location"]).get_data(
        as_text=True
    )
    assert db.session.scalar(select(func.count()).select_from(Job)) == jobs_before


def test_an_unreadable_type_stays_unknown(
    admin_client: Any, workspace: Any, post_event: Any
) -> None:
    assert post_event(workspace, b"{not json").status_code == 400
    assert post_event(workspace, json.dumps({"type": "x" * 500}).encode()).status_code in (
        400,
        422,
    )
    for row in db.session.scalars(select(Delivery)):
        text = admin_client.get(f"/workspaces/{workspace.id}/deliveries/{row.id}").get_data(
            as_text=True
        )
        assert '<dt>Event</dt><dd class="wrap">unknown' in text
