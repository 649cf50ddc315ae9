"""Values the console holds for one admin between two requests, and hands out once.

* A secret made by a POST (an API token, a signing secret, a new workspace's pair) is kept here
  and the POST redirects to a page that takes it: the secret is shown by a GET, exactly once, so
  a reload neither repeats the action (no second token, no second workspace) nor shows it again.
* A form that arrived after the admin's session had ended is kept here until they sign in again
  (``connector.admin.resume``).

Rows (``console_held_values``) are encrypted with the token cipher, bound to the admin, expire,
and are deleted by the statement that reads them (``DELETE ... RETURNING``, both backends), so a
second tab or a copied URL finds nothing. The browser holds only a random handle; the table only
its SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any, Final

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connector import db
from connector.connections.store import secret_box
from connector.models import ConsoleHeldValue, utcnow

PENDING_FORM: Final = "pending_form"
# Long enough to follow the redirect on a slow connection; a value nobody fetched is useless.
REVEAL_MAX_AGE_SECONDS: Final = 600
HANDLE_MAX_CHARS: Final = 100


def reveal(page: str) -> str:
    """The purpose of a secret shown once by ``page``: a handle only opens on its own page."""
    return f"reveal:{page}"


def _digest(handle: str) -> str:
    return hashlib.sha256(handle.encode("utf-8", "surrogatepass")).hexdigest()


def keep(
    s: Session, purpose: str, admin_id: int, value: Any, *, max_age: float = REVEAL_MAX_AGE_SECONDS
) -> str:
    """Hold ``value`` (JSON) for ``admin_id`` in the caller's transaction; returns its handle.

    Added to ``s`` so the secret and what it belongs to commit together. Expired rows of any
    admin are swept here, so the table stays small."""
    handle = secrets.token_urlsafe(24)
    now = utcnow()
    s.execute(delete(ConsoleHeldValue).where(ConsoleHeldValue.expires_at < now))
    s.add(
        ConsoleHeldValue(
            handle_hash=_digest(handle),
            purpose=purpose,
            admin_id=admin_id,
            value_encrypted=secret_box(current_app.config).encrypt_json(value),
            created_at=now,
            expires_at=now + timedelta(seconds=max_age),
        )
    )
    return handle


def is_held(purpose: str, handle: object, admin_id: int) -> bool:
    """Whether ``handle`` holds a value for ``admin_id`` (nothing is used up)."""
    if not isinstance(handle, str) or not handle or len(handle) > HANDLE_MAX_CHARS:
        return False
    found = db.session.scalar(
        select(ConsoleHeldValue.expires_at).where(
            ConsoleHeldValue.handle_hash == _digest(handle),
            ConsoleHeldValue.purpose == purpose,
            ConsoleHeldValue.admin_id == admin_id,
        )
    )
    return found is not None and found > utcnow()


def take(purpose: str, handle: object, admin_id: int) -> Any | None:
    """The value behind ``handle``, used up by this call; None when there is none for this admin
    (never held, already taken, expired, another admin's or another purpose's)."""
    if not isinstance(handle, str) or not handle or len(handle) > HANDLE_MAX_CHARS:
        return None
    with db.session_scope() as s:
        row = s.execute(
            delete(ConsoleHeldValue)
            .where(
                ConsoleHeldValue.handle_hash == _digest(handle),
                ConsoleHeldValue.purpose == purpose,
                # Another admin presenting it finds nothing and cannot burn the owner's value.
                ConsoleHeldValue.admin_id == admin_id,
            )
            .returning(ConsoleHeldValue.value_encrypted, ConsoleHeldValue.expires_at)
        ).one_or_none()
    if row is None or row.expires_at <= utcnow():
        return None
    try:
        return secret_box(current_app.config).decrypt_json(row.value_encrypted)
    except ValueError:  # encrypted under a key since removed: as good as expired
        return None
