"""WebWork fixtures: a stateful fake at the wire, an instant client, a connected workspace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses

from tests.helpers import map_clients_locally
from webhooks.webwork.tests.fake import API, AUTHORIZE, TOKEN, FakeWebWork, NoLimiter

ADA = (77, "Ada Lovelace")
GRACE = (78, "Grace Hopper")
CLIENTS = {
    "9001": ("Globex Corporation", "ap@globex.example"),
    "9002": ("Initech", "billing@initech.example"),
}


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    from webhooks.webwork import client as client_module

    waited: list[float] = []
    monkeypatch.setattr(client_module, "default_sleep", waited.append)
    return waited


@pytest.fixture
def limiter(monkeypatch: pytest.MonkeyPatch) -> NoLimiter:
    from connector import ratelimit

    fake = NoLimiter()
    monkeypatch.setattr(ratelimit, "shared_limiter", lambda: fake)
    return fake


@pytest.fixture
def webwork(app: Any, sleeps: list[float], limiter: NoLimiter) -> Iterator[FakeWebWork]:
    app.config.update(
        WEBWORK_API_BASE_URL=API,
        WEBWORK_AUTHORIZE_URL=AUTHORIZE,
        WEBWORK_TOKEN_URL=TOKEN,
        WEBWORK_CLIENT_ID="ww-client",
        WEBWORK_CLIENT_SECRET="ww-secret",
    )
    fake = FakeWebWork()
    fake.projects = [
        {"id": 101, "name": "Website", "is_billable": True, "rate": None},
        {"id": 102, "name": "Mobile App", "is_billable": True, "rate": "80.00", "currency": "USD"},
        {"id": 201, "name": "Data Pipeline", "is_billable": True, "rate": None},
        {"id": 301, "name": "Internal", "is_billable": False, "rate": None},
    ]
    fake.viewers = [
        fake.viewer(
            1, 9001, "Globex Corporation", "ap@globex.example", projects=[{"id": 101}, {"id": 102}]
        ),
        fake.viewer(2, 9002, "Initech", "billing@initech.example", project_id=201),
    ]
    fake.contracts = [
        # Ada on Website: 100/h, raised to 120/h from Wednesday 2026-11-04 (mid-period).
        {
            "id": 5001,
            "user_id": 77,
            "project_id": 101,
            "rate": "120.00",
            "currency": "USD",
            "rate_history": [
                {"rate": "100.00", "effective_from": "2026-01-01"},
                {"rate": "120.00", "effective_from": "2026-11-04"},
            ],
        },
        {"id": 5002, "user_id": 77, "project_id": 201, "rate": "95.00", "currency": "USD"},
        {"id": 5003, "user_id": 78, "project_id": 101, "rate": "27.50", "currency": "USD"},
    ]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.register(rsps)
        yield fake


def week_rows(contract: int = 5001) -> dict[str, list[tuple[int, str, int | None, int]]]:
    """Ada's week 2026-11-02..08: Website across the rate change, Pipeline, Internal."""
    return {
        "2026-11-02": [(101, "Website", contract, 240), (201, "Data Pipeline", 5002, 60)],
        "2026-11-03": [(101, "Website", contract, 100)],
        "2026-11-04": [(101, "Website", contract, 200), (301, "Internal", None, 45)],
        "2026-11-05": [(201, "Data Pipeline", 5002, 125)],
    }


@pytest.fixture
def mapped(workspace: Any) -> dict[str, str]:
    return map_clients_locally(workspace.id, CLIENTS)


@pytest.fixture
def connected(app: Any, workspace: Any, webwork: FakeWebWork) -> str:
    from webhooks.webwork.connection import connect_with_token

    token = webwork.add_token("501")
    connect_with_token(workspace.id, workspace.tracker_workspace_id, token, connected_by="test")
    return token
