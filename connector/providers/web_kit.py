"""What the app hands a provider's web pieces (its connect pages, its status-event receiver).

A provider folder sits in the core's layer (``connector.providers``): it may not import the
console, the pipeline, the inbound sources or the status sync. Its ``web/setup.py`` gets this kit
from the composition root instead (Flask's ``init_app`` pattern, one argument), and its views
reach it with :func:`kit` while a request runs. A new provider needs nothing else from the app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import current_app

EXTENSION = "provider_web_kit"


@dataclass(frozen=True)
class WebKit:
    csrf: Any  # flask_wtf CSRFProtect: ``exempt(blueprint)`` for signed receivers
    # A route that authenticates its caller itself (a signature), not by session or token.
    allow_public: Callable[[str], None]
    # provider -> fn(raw stored event, account id or None) -> the invoice ids it names
    register_event_reader: Callable[[str, Callable[[bytes, str | None], list[str]]], None]
    # The receiver's path items (and schemas) for the OpenAPI document.
    register_openapi: Callable[..., None]
    # Connect pages: the disconnect confirmation (None once confirmed), where a finished connect
    # lands, and what to do once a workspace's connection works again (release waiting drafts).
    confirm_disconnect: Callable[[Any, str], Any]
    return_after_connect: Callable[[int, str], str]
    connection_restored: Callable[[int], None]
    # Receivers: the raw body, size-capped (413 beyond WEBHOOK_MAX_BODY_BYTES, chunked or not);
    # the workspaces connected to these accounts; store an authentic event and queue its jobs
    # (one transaction); the configured secrets of a comma-separated setting; a 400.
    read_body: Callable[[], bytes]
    connected_workspaces: Callable[[str, Iterable[str]], list[int]]
    accept_event: Callable[..., Any]
    configured_secrets: Callable[[str], list[str]]
    malformed: Callable[[str], Exception]
    # A 401 problem (bad or missing signature); a 200 saying the event was not for us.
    unauthorized: Callable[[str], Exception]
    ignored: Callable[..., Any]


def install(app: Any, web_kit: WebKit) -> None:
    app.extensions[EXTENSION] = web_kit


def kit() -> WebKit:
    """The kit of the app serving the current request."""
    found: WebKit = current_app.extensions[EXTENSION]
    return found


def receiver_openapi(
    summary: str, description: str, header: str, schema: str, *, unknown_token: bool = False
) -> dict[str, Any]:
    """A status receiver's path item (served at the service root, not under /api/v1)."""
    ok = {
        "description": "accepted, duplicate or ignored (see status)",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "status": {
                            "type": "string",
                            "enum": ["accepted", "duplicate", "ignored"],
                        },
                        "event_id": {"type": "string"},
                        "delivery_ids": {"type": "array", "items": {"type": "integer"}},
                        "detail": {"type": "string"},
                    },
                }
            }
        },
    }
    return {
        "post": {
            "summary": summary,
            "description": description,
            "security": [],
            "parameters": [
                {"name": header, "in": "header", "required": True, "schema": {"type": "string"}}
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
                },
            },
            "responses": {
                "200": ok,
                "400": {"$ref": "#/components/responses/Problem"},
                "401": {"$ref": "#/components/responses/Problem"},
                "413": {"$ref": "#/components/responses/Problem"},
                # A per-workspace URL whose token names no workspace.
                **({"404": {"$ref": "#/components/responses/Problem"}} if unknown_token else {}),
            },
        },
        # Receivers live at the service root, beside /api/v1.
        "servers": [{"url": "/", "description": "the service root (PUBLIC_BASE_URL)"}],
    }
