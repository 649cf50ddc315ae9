"""Creating workspaces and managing their inbound signing secrets."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from connector import trackers
from connector.auth import issue_api_token
from connector.crypto import SecretBox
from connector.models import Workspace

# A rotated-out secret stays valid this long, so events already signed with it still verify.
MAX_SIGNING_SECRETS = 2


def new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class CreatedWorkspace:
    workspace: Workspace
    signing_secret: str
    api_token: str


def webhook_url(public_base_url: str, workspace: Workspace) -> str:
    base = public_base_url.rstrip("/")
    return f"{base}/webhooks/{workspace.tracker_source}/{workspace.endpoint_token}"


def signing_secrets(box: SecretBox, workspace: Workspace) -> list[str]:
    return list(box.decrypt_json(workspace.signing_secrets_encrypted) or [])


def create_workspace(
    s: Session,
    box: SecretBox,
    *,
    name: str,
    tracker_workspace_id: str,
    tracker_source: str | None = None,
    auto_invoicing: bool = False,
    provider: str = "local",
    settings: dict[str, Any] | None = None,
) -> CreatedWorkspace:
    """A new workspace receiving ``tracker_source``'s approvals (default: the first registered
    source; the CLI and the console offer only registered ones)."""
    source = trackers.default_source() if tracker_source is None else tracker_source
    secret = new_signing_secret()
    workspace = Workspace(
        name=name,
        tracker_source=source,
        tracker_workspace_id=str(tracker_workspace_id),
        signing_secrets_encrypted=box.encrypt_json([secret]),
        auto_invoicing=auto_invoicing,
        provider=provider,
        settings=dict(settings or {}),
    )
    s.add(workspace)
    s.flush()
    token = issue_api_token(s, workspace.id)
    return CreatedWorkspace(workspace=workspace, signing_secret=secret, api_token=token)


def rotate_signing_secret(s: Session, box: SecretBox, workspace: Workspace) -> str:
    """Add a new secret in front; the previous one stays valid until the next rotation."""
    secret = new_signing_secret()
    current = signing_secrets(box, workspace)
    workspace.signing_secrets_encrypted = box.encrypt_json([secret, *current][:MAX_SIGNING_SECRETS])
    return secret


def retire_old_signing_secrets(s: Session, box: SecretBox, workspace: Workspace) -> None:
    """Once the sender uses the newest secret, drop the others."""
    current = signing_secrets(box, workspace)
    workspace.signing_secrets_encrypted = box.encrypt_json(current[:1])
