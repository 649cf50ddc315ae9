"""``/api/v1/settings``: the workspace's invoicing switch, provider and billing settings."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from flask import g, jsonify

from connector import db, pipeline
from connector.api import bp
from connector.api.mappings import CHANGE_NOTICE_PROPERTIES
from connector.api.request_bodies import CURRENCY_SCHEMA, invalid_fields, json_object
from connector.auth import token_required
from connector.models import Workspace
from connector.problems import Problem
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


# The workspace's own switches; every other key of a PATCH body is a billing setting, sent flat
# (``{"consolidation": "per_period"}``) or inside ``settings`` (what GET returns), or both.
_WORKSPACE_FIELDS = ("auto_invoicing", "provider", "settings")
SETTING_NAMES = tuple(f.name for f in fields(WorkspaceSettings))
_EXPECTED_SHAPE = (
    f"is not a setting: send any of {', '.join(_WORKSPACE_FIELDS[:2])} or a billing setting "
    f"({', '.join(SETTING_NAMES)}) at the top level, or the billing settings inside "
    '"settings", e.g. {"consolidation": "per_period"}'
)
_WHOLE_NUMBERS = {
    "billing_increment": "must be the JSON number 1, 6 or 15, or null for none",
    "payment_terms_days": "must be a JSON whole number of days from 0 to 365",
}


def _billing_changes(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The billing settings a PATCH body changes, and where each was sent (its JSON pointer)."""
    nested = body.get("settings", {})
    nested = nested if isinstance(nested, dict) else {}
    sent_twice = [
        name
        for name in SETTING_NAMES
        if name in body and name in nested and body[name] != nested[name]
    ]
    if sent_twice:
        name = sent_twice[0]
        raise Problem(
            422,
            "Setting sent twice",
            f"{name} is sent both at the top level and inside settings with different values; "
            "send it once",
            type_="setting-sent-twice",
            field=f"/{name}",
        )
    where = {name: f"settings/{name}" for name in nested}
    where.update({name: name for name in SETTING_NAMES if name in body})
    return {**nested, **{name: body[name] for name in SETTING_NAMES if name in body}}, where


@bp.patch("/settings")
@token_required
def patch_settings() -> Any:
    """Change only the fields sent: the workspace's switches and billing settings, flat or
    inside ``settings``."""
    body = json_object()
    ws: Workspace = g.workspace
    errors = [
        FieldError(name, _EXPECTED_SHAPE)
        for name in body
        if name not in _WORKSPACE_FIELDS and name not in SETTING_NAMES
    ]
    if "auto_invoicing" in body and not isinstance(body["auto_invoicing"], bool):
        errors.append(FieldError("auto_invoicing", "must be true or false"))
    if "provider" in body and body["provider"] not in PROVIDER_NAMES:
        errors.append(FieldError("provider", f"must be one of {', '.join(PROVIDER_NAMES)}"))
    if not isinstance(body.get("settings", {}), dict):
        errors.append(
            FieldError("settings", 'must be an object, e.g. {"consolidation": "per_period"}')
        )
    changes, where = _billing_changes(body)
    # The console's form sends numbers as text ("" for no increment); JSON has numbers and null.
    for name in _WHOLE_NUMBERS:
        if isinstance(changes.get(name), str):
            errors.append(FieldError(where[name], _WHOLE_NUMBERS[name]))
            del changes[name]
    current = WorkspaceSettings.from_dict(ws.settings)
    # Every bad setting at once, as the console's Settings page shows them, each named where
    # it was sent.
    errors += [
        FieldError(where.get(e.field, f"settings/{e.field}"), e.message)
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
    if not where:
        return jsonify(_settings_json(ws))

    return jsonify({**_settings_json(ws), **change_notice(ws.id)})


_BILLING_PROPERTIES: dict[str, Any] = {
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
}
_SETTINGS_SCHEMA = {
    "type": "object",
    "properties": {
        "auto_invoicing": {"type": "boolean"},
        "provider": {"type": "string", "enum": list(PROVIDER_NAMES)},
        "settings": {"type": "object", "properties": _BILLING_PROPERTIES},
    },
}
# What PATCH accepts: the shape GET returns, or the billing settings flat beside the switches
# (``{"consolidation": "per_period"}``); a setting sent both ways must carry one value.
_SETTINGS_CHANGE_SCHEMA = {
    "type": "object",
    "description": "Only the fields sent change. Billing settings go at the top level "
    '(`{"consolidation": "per_period"}`) or inside `settings` (the shape GET returns); '
    "a setting sent both ways with different values is refused (422 setting-sent-twice).",
    "properties": {**_SETTINGS_SCHEMA["properties"], **_BILLING_PROPERTIES},
}
_OK = {
    "description": "The workspace settings",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Settings"}}},
}
OPENAPI_SCHEMAS = {"Settings": _SETTINGS_SCHEMA, "SettingsChange": _SETTINGS_CHANGE_SCHEMA}
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
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/SettingsChange"},
                        "example": {"consolidation": "per_period", "period": "monthly"},
                    }
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
