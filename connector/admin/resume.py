"""Nothing is lost when a console session ends: the idle timeout, and the form that arrived late.

* Idle timeout: a session cookie carries when it was last used (``SEEN_KEY``, signed with the
  cookie); after ``ADMIN_SESSION_IDLE_MINUTES`` without a request it no longer signs anyone in,
  so a copy of it is refused as well.
* A form posted after the session ended (signed out in another tab, idle, or ended by a password
  change) passed the CSRF check but not the sign-in. Its fields are kept server-side
  (``connector.admin.once``: encrypted, bound to the admin this browser last signed in as, for
  ``PENDING_FORM_MAX_AGE_SECONDS``); the browser holds only a handle, in the session, never in a
  URL. Signing in again as that admin opens :func:`resume_form`, which shows the form filled in
  with a fresh CSRF token; saving posts it to its own page, which checks it as it checks any
  form (and asks again before anything destructive: ``confirmed`` is never kept).
"""

from __future__ import annotations

import time
from typing import Any, Final
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, logout_user

from connector import db
from connector.admin import bp, once
from connector.auth import admin_required, login_manager

SEEN_KEY: Final = "_seen"  # epoch seconds of the session's last request
LAST_ADMIN_KEY: Final = "_last_admin"  # who this browser last signed in as (kept at sign-out)
PENDING_KEY: Final = "_pending_form"  # the handle of a kept form
IDLE_KEY: Final = "_ended_idle"  # the session just ended for idleness: say so at sign-in
# Refreshing the last-seen time at most this often keeps the cookie from changing on every
# request; the timeout is then exact to within this many seconds.
SEEN_GRANULARITY_SECONDS: Final = 30
PENDING_FORM_MAX_AGE_SECONDS: Final = 3600
PENDING_FORM_MAX_CHARS: Final = 64_000  # larger forms (none today) are not kept
# Never kept: the old session's token (a fresh one is issued) and a confirmation (a destructive
# action must be confirmed again, after sign-in, on its own page).
NOT_KEPT: Final = frozenset({"csrf_token", "confirmed"})
SECRET_WORDS: Final = ("token", "key", "secret", "password")

SIGNED_OUT_WORDS: Final = "You are signed out. Sign in again to continue."


def signed_in(user_id: int) -> None:
    """Called at sign-in: the session starts fresh and remembers whose it is."""
    session[SEEN_KEY] = int(time.time())
    session[LAST_ADMIN_KEY] = user_id
    session.pop(IDLE_KEY, None)


@bp.before_app_request
def _end_idle_session() -> None:
    if "_user_id" not in session:
        return
    now = int(time.time())
    seen = session.get(SEEN_KEY)
    idle_seconds = int(current_app.config["ADMIN_SESSION_IDLE_MINUTES"]) * 60
    if not isinstance(seen, int):  # a session from before the timeout existed: starts now
        session[SEEN_KEY] = now
        return
    if now - seen > idle_seconds:
        # This cookie (and any copy of it) no longer signs anyone in; other devices keep theirs.
        logout_user()
        session.pop(SEEN_KEY, None)
        session[IDLE_KEY] = True
        return
    if now - seen >= SEEN_GRANULARITY_SECONDS:
        session[SEEN_KEY] = now


@login_manager.unauthorized_handler
def _signed_out() -> Any:
    """A console page asked for a session that has ended: sign in, keeping a posted form."""
    idle = session.pop(IDLE_KEY, False)
    if request.method == "POST" and request.endpoint != "admin.logout":
        kept = _keep_pending_form()
        flash(
            ("Your session ended after a while without activity" if idle else "You were signed out")
            + (
                ", so what you sent was not saved yet. Sign in again to see it filled in and "
                "save it."
                if kept
                else ", so what you sent was not saved. Sign in again and send it once more."
            ),
            "warning",
        )
        return redirect(url_for("admin.login", next=_referrer_path()))
    if request.endpoint == "admin.logout":
        flash(SIGNED_OUT_WORDS, "success")
        return redirect(url_for("admin.login"))
    flash(
        "Your session ended after a while without activity: sign in again to continue."
        if idle
        else "Please sign in to continue.",
        "warning" if idle else "message",
    )
    return redirect(url_for("admin.login", next=_own_path(request.full_path)))


def _own_path(target: str | None) -> str | None:
    """Only this site's paths (the sign-in page's ``next`` checks again)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.netloc and parts.netloc != request.host:
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return path if path.startswith("/") and not path.startswith("//") else None


def _referrer_path() -> str | None:
    return _own_path(request.referrer)


def _keep_pending_form() -> bool:
    """Keep this POST's fields for the admin this browser last signed in as; False when there
    is nobody to bind them to (never signed in here) or nothing sensible to keep."""
    admin_id = session.get(LAST_ADMIN_KEY)
    if not isinstance(admin_id, int) or request.files:
        return False
    fields = [
        [name, value] for name, value in request.form.items(multi=True) if name not in NOT_KEPT
    ]
    if sum(len(name) + len(value) for name, value in fields) > PENDING_FORM_MAX_CHARS:
        return False
    handle = once.keep(
        db.session,
        once.PENDING_FORM,
        admin_id,
        {"path": request.path, "fields": fields, "back": _referrer_path()},
        max_age=PENDING_FORM_MAX_AGE_SECONDS,
    )
    db.session.commit()
    session[PENDING_KEY] = handle
    return True


def has_pending_form(admin_id: int) -> bool:
    """Whether a form kept in this browser is this admin's; another admin's is forgotten here
    (its row expires unread)."""
    if PENDING_KEY not in session:
        return False
    if once.is_held(once.PENDING_FORM, session[PENDING_KEY], admin_id):
        return True
    session.pop(PENDING_KEY, None)
    return False


@bp.route("/session/resume")
@admin_required
def resume_form() -> Any:
    """The form sent while signed out, filled in, to save now (with a fresh CSRF token)."""
    kept = once.take(once.PENDING_FORM, session.pop(PENDING_KEY, None), int(current_user.id))
    if not isinstance(kept, dict) or not _own_path(kept.get("path")):
        flash("Nothing is waiting to be saved.", "message")
        return redirect(url_for("admin.index"))
    fields = [(str(name), str(value)) for name, value in kept.get("fields") or []]
    page = render_template(
        "admin/resume.html",
        action=kept["path"],
        fields=fields,
        shown=[(name, value, _is_secret(name)) for name, value in fields],
        back=_own_path(kept.get("back")) or url_for("admin.index"),
    )
    response = current_app.make_response(page)
    response.headers["Cache-Control"] = "no-store"  # it may hold a pasted key
    return response


def _is_secret(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_WORDS)
