"""How WebWork names people and workspaces, read in one place.

WebWork's API V2 gives a person as ``firstname`` and ``lastname`` (plus ``email``): a
timesheet's ``member``, a member, a project viewer (a "client"); a contract as
``user_firstname``/``user_lastname``; a workspace as ``workspace_name``. Older examples and
hand-written events use a single ``name`` or ``full_name``: both shapes are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_NAME = 500


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def person_name(person: Mapping[str, Any] | None, *, prefix: str = "") -> str | None:
    """ "Firstname Lastname", else ``name``/``full_name``, else the email; None if none is given.

    ``prefix`` reads prefixed fields (``user_`` for a contract's ``user_firstname``)."""
    if not isinstance(person, Mapping):
        return None
    full = " ".join(
        part
        for part in (
            _text(person.get(f"{prefix}firstname")),
            _text(person.get(f"{prefix}lastname")),
        )
        if part
    )
    name = (
        full
        or _text(person.get(f"{prefix}name"))
        or _text(person.get(f"{prefix}full_name"))
        or _text(person.get(f"{prefix}email"))
    )
    return name[:MAX_NAME] or None


def workspace_name(workspace: Mapping[str, Any]) -> str:
    """A WebWork workspace's name (``workspace_name``, else ``name``), or ""."""
    return (_text(workspace.get("workspace_name")) or _text(workspace.get("name")))[:MAX_NAME]
