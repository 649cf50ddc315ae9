"""The admin console: server-rendered pages for workspace admins.

Every route is marked ``@admin_required`` and loads its workspace with ``workspace_for_admin``
(404 for workspaces the admin does not belong to); ``tests/admin/test_access.py`` walks the URL
map to prove it. Modules: ``auth`` (sign in/out, idle timeout), ``resume`` (a form that arrived
after the session ended), ``workspaces`` (list, settings, API tokens, signing secret), ``once``
(one-time values shown after a redirect), ``connections``, ``approval_pages`` (drafts, holds
and their fixes), ``deliveries`` (the log, replay), ``drafts`` (every draft across approvals,
the re-bill status JSON), ``onboarding`` (the first-run checklist, ``tracker_feed``),
``words`` (plain words), ``errors`` (error pages), ``ledger`` (the built-in provider's
invoices), ``cli`` (``flask admins create``).
"""

from flask import Blueprint

from connector import trackers
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


@bp.app_template_filter("tracker_name")
def tracker_name(source: str | None) -> str:
    """A tracker source's key -> its name for people (from the registry)."""
    return trackers.display_name(source or "")


# What a stored event means, for people: by its kind, whatever the tracker calls it.
EVENT_WORDS = {trackers.APPROVAL: "Approval event", trackers.WITHDRAWAL: "Approval withdrawn"}


@bp.app_template_filter("event_words")
def event_words(delivery: object, unknown: str = "—", event_type: str | None = None) -> str:
    """A delivery's (or any row with ``source`` and ``event_type``) event in words; ``event_type``
    names it where the row has none (a malformed delivery whose body still says its type)."""
    event_type = getattr(delivery, "event_type", None) or event_type
    kind = trackers.kind_of(str(getattr(delivery, "source", "")), event_type)
    return EVENT_WORDS[kind] if kind else (event_type or unknown)


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
