"""Signing in and out of the admin console (flask-login session; CSRF on every form)."""

from __future__ import annotations

import logging
import math
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import func, select

from connector import db
from connector.admin import bp, resume
from connector.auth import (
    AdminSession,
    admin_required,
    end_all_sessions,
    hash_password,
    verify_password,
)
from connector.models import AdminUser, utcnow
from connector.throttle import LoginThrottle

log = logging.getLogger(__name__)

# Checked when the email is unknown, so a wrong email takes as long as a wrong password.
_DUMMY_HASH = hash_password("not-a-real-password")


def safe_next(target: str | None) -> str | None:
    """Only same-site paths: a ``next`` of //evil.example or https://... is dropped."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    next_url = safe_next(request.args.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(next_url or url_for("admin.index"))
        return render_template("admin/login.html", next_url=next_url, email="", error=None)

    email = (request.form.get("email") or "").strip().lower()
    password = request.form.get("password") or ""
    throttle: LoginThrottle = current_app.extensions["login_throttle"]
    address = request.remote_addr or ""
    wait = throttle.retry_after(email, address)
    if wait is not None:
        log.warning("sign-in refused: too many failures (address %s)", address)
        minutes = max(1, math.ceil(wait / 60))
        page = render_template(
            "admin/login.html",
            next_url=next_url,
            email=email,
            error=(
                "Too many failed sign-ins for this account or from this address. "
                f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, "
                "or ask another admin to reset your password."
            ),
        )
        return page, 429, {"Retry-After": str(wait)}
    user = db.session.scalars(
        select(AdminUser).where(func.lower(AdminUser.email) == email)
    ).one_or_none()
    if user is None:
        verify_password(AdminUser(password_hash=_DUMMY_HASH), password)
    elif user.is_active and verify_password(user, password):
        login_user(AdminSession(user))
        resume.signed_in(user.id)
        user.last_login_at = utcnow()
        db.session.commit()
        throttle.succeeded(email)
        if resume.has_pending_form(user.id):  # sent while signed out: shown filled in, to save now
            return redirect(url_for("admin.resume_form"))
        return redirect(next_url or url_for("admin.index"))
    throttle.failed(email, address)
    page = render_template(
        "admin/login.html",
        next_url=next_url,
        email=email,
        error="That email and password do not match an active admin.",
    )
    return page, 401


@bp.route("/logout", methods=["POST"])
@admin_required
def logout() -> Any:
    """Sign out for real: the session cookie is client-side, so a copy of it would still be
    valid; bumping the admin's session version ends this and every other session of theirs."""
    user = db.session.get(AdminUser, int(current_user.id))
    if user is not None:
        end_all_sessions(user)
        db.session.commit()
    logout_user()
    flash(resume.SIGNED_OUT_WORDS, "success")
    return redirect(url_for("admin.login"))
