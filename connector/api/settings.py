"""``/api/v1/settings``: the workspace's invoicing switch, provider and billing settings."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify

from connector import db, pipeline
from connector.api import bp
from connector.api.mappings import CHANGE_NOTICE_PROPERTIES
from connector.api.request_bodies import CURRENCY_SCHEMA, invalid_fields, json_object
from connector.auth import token_required
from connector.models import Workspace
from connector.providers import PROVIDER_NAMES
from connector.settings import WorkspaceSettings, validate_settings
from connector.validation import FieldError, every_field_error
from mappings.service import change_notice


def _settings_json(ws: Workspace) -> dict[str, Any]:
    return {
        "auto_invoicing": ws.auto_invoicing,
        "provider": ws.provider,
        "settings": WorkspaceSettings.from_dict(ws.settings).to_dict(),
    }


@bp.get("/settings")
@token_required
def get_settings() -> Any:
    return jsonify(_settings_json(g.workspace))


@bp.patch("/settings")
@token_required
def patch_settings() -> Any:
    """Change only the fields sent; ``settings`` holds the billing settings."""
    body = json_object()
    ws: Workspace = g.workspace
    errors = [
        FieldError(name, "is not a setting (auto_invoicing, provider, settings)")
        for name in body
        if name not in ("auto_invoicing", "provider", "settings")
    ]
    if "auto_invoicing" in body and not isinstance(body["auto_invoicing"], bool):
        errors.append(FieldError("auto_invoicing", "must be true or false"))
    if "provider" in body and body["provider"] not in PROVIDER_NAMES:
        errors.append(FieldError("provider", f"must be one of {', '.join(PROVIDER_NAMES)}"))
    changes = body.get("settings", {})
    current = WorkspaceSettings.from_dict(ws.settings)
    if not isinstance(changes, dict):
        errors.append(FieldError("settings", "must be an object"))
    else:
        # Every bad setting at once, as the console's Settings page shows them.
        errors += [
            FieldError(f"settings/{e.field}", e.message)
            for e in every_field_error(lambda part: validate_settings(part, current), changes)
        ]
    if errors:
        raise invalid_fields(errors)
    validated = validate_settings(changes, current)
    ws.settings = validated.to_dict()
    if "auto_invoicing" in body:
        ws.auto_invoicing = body["auto_invoicing"]
    switched = "provider" in body and body["provider"] != ws.provider
    if "provider" in body:
        ws.provider = body["provider"]
    db.session.commit()
    if switched:  # other books: held approvals are planned again with their mappings
        pipeline.release_holds(ws.id)
    if "settings" not in body:
        return jsonify(_settings_json(ws))

    return jsonify({**_settings_json(ws), **change_notice(ws.id)})


_SETTINGS_SCHEMA = {
    "type": "object",
    "properties": {
        "auto_invoicing": {"type": "boolean"},
        "provider": {"type": "string", "enum": list(PROVIDER_NAMES)},
        "settings": {
            "type": "object",
            "properties": {
                "grouping": {
                    "type": "string",
                    "enum": ["project", "project_day", "task", "detailed"],
                },
                "billing_increment": {"type": ["integer", "null"], "enum": [1, 6, 15, None]},
                "payment_terms_days": {"type": "integer", "minimum": 0, "maximum": 365},
                "default_currency": CURRENCY_SCHEMA,
                "tax_code": {"type": ["string", "null"]},
                "consolidation": {
                    "type": "string",
                    "enum": ["per_timesheet", "per_period"],
                    "description": "per_timesheet: drafts per approval (default); per_period: "
                    "every approval of a customer's period appends to one open draft",
                },
                "period": {"type": "string", "enum": ["weekly", "semi_monthly", "monthly"]},
                "week_start": {
                    "type": "string",
                    "enum": [
                        "monday",
                        "tuesday",
                        "wednesday",
                        "thursday",
                        "friday",
                        "saturday",
                        "sunday",
                    ],
                },
            },
        },
    },
}
_OK = {
    "description": "The workspace settings",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Settings"}}},
}
OPENAPI_SCHEMAS = {"Settings": _SETTINGS_SCHEMA}
OPENAPI_PATHS = {
    "/settings": {
        "get": {
            "operationId": "getSettings",
            "summary": "Workspace settings",
            "responses": {"200": _OK, "401": {"$ref": "#/components/responses/Unauthorized"}},
        },
        "patch": {
            "operationId": "patchSettings",
            "summary": "Change some settings (only the fields sent)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Settings"}}
                },
            },
            "responses": {
                "200": {
                    "description": "The workspace settings; a change of `settings` also says "
                    "whether drafts already created stay as they are",
                    "content": {
                        "application/json": {
                            "schema": {
                                "allOf": [
                                    {"$ref": "#/components/schemas/Settings"},
                                    {"type": "object", "properties": CHANGE_NOTICE_PROPERTIES},
                                ]
                            }
                        }
                    },
                },
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "422": {"$ref": "#/components/responses/Problem"},
            },
        },
    }
}
