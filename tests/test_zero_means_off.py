"""Every setting documented with a meaning for ``0`` gets that meaning, never the default
(``0`` is a value, not "unset")."""

from __future__ import annotations

from typing import Any

from connector import status_sync
from connector.config import SETTINGS, load_config

ZERO_SETTINGS = {
    # setting -> where its 0 is checked
    "CLOCKIFY_CATALOG_SECONDS": "webhooks/clockify/tests/test_zero_settings.py",
    "CLOCKIFY_POLL_SECONDS": "webhooks/clockify/tests/test_zero_settings.py",
    "QUICKBOOKS_CACHE_SECONDS": "tests/providers/test_quickbooks_requests_per_draft.py",
    "STATUS_RECONCILE_MINUTES": "here",
    "WEBWORK_POLL_SECONDS": "webhooks/webwork/tests/test_zero_settings.py",
    "WEBWORK_RATES_REFRESH_SECONDS": "webhooks/webwork/tests/test_zero_settings.py",
}


def test_every_setting_with_a_meaning_for_0_is_checked() -> None:
    from connector.app import tracker_settings
    from connector.providers import declared_settings

    declared = (*SETTINGS, *declared_settings(), *tracker_settings())
    documented = {s.name for s in declared if "`0`" in s.meaning}
    assert documented == set(ZERO_SETTINGS)


def test_status_reconcile_minutes_0_switches_the_reconcile_off(app: Any) -> None:
    config = load_config({"STATUS_RECONCILE_MINUTES": "0"})  # no provider settings needed
    assert status_sync.reconcile_minutes(config) == 0
    assert status_sync.schedule_reconciles(status_sync.reconcile_minutes(config)) == []
    assert status_sync.reconcile_minutes({}) == status_sync.DEFAULT_RECONCILE_MINUTES
    assert status_sync.reconcile_minutes(load_config({})) == 60
