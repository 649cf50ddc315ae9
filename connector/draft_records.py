"""The draft rows the pipeline recorded, as the providers' ``find_draft`` hints (see
``connector.providers.base.DraftRecord``): the one place that reads them for the adapters."""

from __future__ import annotations

from sqlalchemy import select

from connector import db
from connector.models import Draft
from connector.providers.base import DraftRecord, DraftRecords


def draft_records(workspace_id: int) -> DraftRecords:
    def lookup(key: str) -> DraftRecord | None:
        with db.new_session() as s:
            row = s.execute(
                select(Draft.customer_id, Draft.created_at).where(
                    Draft.key == key, Draft.workspace_id == workspace_id
                )
            ).first()
        return None if row is None else DraftRecord(row.customer_id, row.created_at)

    return lookup
