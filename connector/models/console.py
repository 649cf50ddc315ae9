"""What the console keeps for a moment between two requests of one admin (``connector.admin.once``).

A one-time value (a new API token or signing secret, shown once after a POST redirected to a GET)
and a form that arrived after the admin's session had ended (kept until they sign in again) are
both rows here: encrypted, bound to the admin, expiring, and deleted by the request that reads
them, so a reload or a second tab finds nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from connector.db import Base
from connector.models import UTCDateTime, utcnow


class ConsoleHeldValue(Base):
    __tablename__ = "console_held_values"

    # SHA-256 of the random handle the admin's browser holds (in a URL or the session): a copy
    # of the table reveals no handle.
    handle_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(40))  # "reveal" | "pending_form"
    admin_id: Mapped[int] = mapped_column(ForeignKey("admin_users.id", ondelete="CASCADE"))
    # Fernet (TOKEN_ENCRYPTION_KEYS) of the JSON value: secrets and form fields never lie in
    # the database as plain text.
    value_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
