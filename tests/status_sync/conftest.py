"""Fixtures for the status sync: a workspace's drafts at Stripe / QuickBooks, signed events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from connector import db
from connector.models import Draft, Timesheet

WEBHOOKS = Path(__file__).resolve().parents[2] / "webhooks"
STRIPE_SECRET = "whsec_test_status_sync_secret"
QBO_TOKEN = "verifier-token-for-tests"


def provider_event(source: str, name: str) -> dict[str, Any]:
    """A documented example: ``webhooks/<source>/fixtures/<name>.json``."""
    return json.loads((WEBHOOKS / source / "fixtures" / f"{name}.json").read_text())


# --- signing, written from Stripe's and Intuit's docs (independent of the code under test) ------
def stripe_signature(body: bytes, secret: str = STRIPE_SECRET, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def intuit_signature(body: bytes, token: str = QBO_TOKEN) -> str:
    return base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def add_draft(
    workspace_id: int,
    provider: str,
    provider_id: str,
    *,
    n: int = 1,
    status: str = "drafted",
    provider_status: str | None = "draft",
) -> int:
    """A drafted invoice at ``provider`` (in the books it reaches now) on an approved timesheet,
    its invoice record and the approval's Draft row on it; returns the Draft id."""
    from datetime import date

    from connector import books
    from connector.models import Invoice, utcnow

    with db.session_scope() as s:
        ts = s.query(Timesheet).filter_by(workspace_id=workspace_id, timesheet_id="ts-sync").first()
        if ts is None:
            ts = Timesheet(
                workspace_id=workspace_id,
                source="webwork",
                timesheet_id="ts-sync",
                status="approved",
                revision="rev1",
            )
            s.add(ts)
            s.flush()
        read_at = utcnow() if provider_status else None
        invoice = Invoice(
            workspace_id=workspace_id,
            books=books.current_key(s, workspace_id, provider) or provider,
            provider=provider,
            customer_id=str(n),
            customer_name=f"Customer {n}",
            currency="USD",
            period_start=date(2026, 11, 23),
            period_end=date(2026, 11, 29),
            key=f"sync-{workspace_id}-{n}",
            status="drafted",
            provider_id=provider_id,
            provider_status=provider_status,
            provider_status_at=read_at,
        )
        row = Draft(
            workspace_id=workspace_id,
            invoice=invoice,
            books=invoice.books,
            timesheet_pk=ts.id,
            revision="rev1",
            subject_key=f"customer:{n}",
            key=f"sync-{workspace_id}-{n}",
            status=status,
            customer_id=str(n),
            customer_name=f"Customer {n}",
            currency="USD",
            provider=provider,
            provider_id=provider_id,
            provider_status=provider_status,
            provider_status_at=read_at,
        )
        s.add(row)
        s.flush()
        return row.id


def draft(draft_id: int) -> Draft:
    db.session.expire_all()
    row = db.session.get(Draft, draft_id)
    assert row is not None
    return row
