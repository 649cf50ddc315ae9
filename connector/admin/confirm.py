"""Destructive actions ask first, on a page that says what follows.

A destructive form posts without ``confirmed``; the route answers with this confirmation page
(200, nothing changed) whose button posts the same fields plus ``confirmed=yes``. Works without
scripts, and the API (tokens, not sessions) is unaffected.
"""

from __future__ import annotations

from typing import Any

from flask import render_template, request


def confirmed() -> bool:
    return request.form.get("confirmed") == "yes"


def confirm_page(
    *,
    workspace: Any,
    title: str,
    consequences: list[str],
    action: str,
    button: str,
    cancel_url: str,
    fields: dict[str, str] | None = None,
) -> str:
    return render_template(
        "admin/confirm.html",
        workspace=workspace,
        title=title,
        consequences=consequences,
        action=action,
        button=button,
        cancel_url=cancel_url,
        fields=fields or {},
    )
