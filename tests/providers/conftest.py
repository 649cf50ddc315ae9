"""Fixtures shared by the provider tests: HTTP mocked at the wire."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses

from tests.providers.qbo_fixtures import FakeQbo


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    """Every HTTP call made through ``requests`` is answered by what the test registers."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def fake(rsps: Any) -> FakeQbo:
    """A QuickBooks Online company behind the mocked wire."""
    return FakeQbo(rsps)
