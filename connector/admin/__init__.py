"""The admin console: server-rendered pages for workspace admins.

Every route is marked ``@admin_required`` and loads its workspace with ``workspace_for_admin``
(404 for workspaces the admin does not belong to); ``tests/admin/test_access.py`` walks the URL
map to prove it. Modules: ``auth`` (sign in/out, idle timeout), ``resume`` (a form that arrived
after the session ended), ``workspaces`` (list, settings, API tokens, signing secret), ``once``
(one-time values shown after a redirect), ``connections``, ``approval_pages`` (drafts, holds
and their fixes), ``deliveries`` (the log, replay), ``drafts`` (every draft across approvals,
the re-bill status JSON), ``onboarding`` (the first-run checklist, ``tracker_status``),
``words`` (plain words), ``errors`` (error pages), ``ledger`` (the built-in provider's
invoices), ``cli`` (``flask admins create``).
"""

from flask import Blueprint

from connector.providers import DISPLAY_NAMES

bp = Blueprint(
    "admin",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/admin/static",
)


@bp.app_template_filter("provider_name")
def provider_name(name: str | None) -> str:
    """ "quickbooks" -> "QuickBooks Online", for people."""
    return DISPLAY_NAMES.get(name or "", name or "")


from connector.admin import (  # noqa: E402, F401  - each module registers its routes on bp
    approval_pages,
    auth,
    connections,
    deliveries,
    drafts,
    errors,
    favicon,
    ledger,
    resume,
    words,
    workspaces,
)
