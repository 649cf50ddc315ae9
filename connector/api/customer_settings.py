"""``/api/v1/customers/<customer_id>/settings``: one accounting customer's overrides of the
workspace settings (grouping, billing increment, payment terms, tax code; null = workspace's)."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, jsonify

from connector import db
from connector.api import bp
from connector.api.mappings import CHANGE_NOTICE_PROPERTIES, provider_problem
from connector.api.request_bodies import invalid_fields, json_object
from connector.auth import token_required
from connector.problems import Problem
from connector.providers import build_provider
from connector.providers.base import ProviderError
from connector.settings import WEEKDAYS
from connector.validation import FieldError, every_field_error
from mappings import customer_settings as overrides
from mappings import service as mapping_service


def _not_found(customer_id: str) -> Problem:
    return Problem(
        404,
        "Not found",
        f"customer {customer_id!r} is not a customer of the accounting system this workspace "
        "bills to",
        type_="not-found",
        field="/customer_id",
    )


def _lookup(customer_id: str) -> Any:
    """The customer as the books know it (settings may be set before any mapping)."""
    provider = build_provider(g.workspace.id, g.workspace.provider, current_app.config)
    try:
        return provider.get_customer(customer_id)
    except ProviderError as exc:
        raise provider_problem(exc) from None


@bp.get("/customers/<path:customer_id>/settings")
@token_required
def get_customer_settings(customer_id: str) -> Any:
    view = overrides.get(db.session, g.workspace.id, customer_id, _lookup)
    if view is None:
        raise _not_found(customer_id)
    return jsonify(view.to_json())


@bp.put("/customers/<path:customer_id>/settings")
@token_required
def put_customer_settings(customer_id: str) -> Any:
    """Replace the overrides: fields omitted or null use the workspace's setting. A customer
    no client/project is billed to yet is checked against the books first."""
    body = json_object()
    if overrides.get(db.session, g.workspace.id, customer_id, _lookup) is None:
        raise _not_found(customer_id)
    # The API's null is "use the workspace's setting"; an empty string is not a value here.
    errors = [
        FieldError(name, "send null to use the workspace's setting")
        for name, value in body.items()
        if value == "" and name in _CHOICES
    ]
    errors += every_field_error(overrides.validate_overrides, body)
    if errors:
        raise invalid_fields(errors)
    try:
        view = overrides.set_overrides(db.session, g.workspace.id, customer_id, body, _lookup)
    except overrides.CustomerSettingsError as exc:
        db.session.rollback()
        raise invalid_fields([exc]) from None
    db.session.commit()
    # Counted before the holds are re-billed: the drafts that existed before this change.
    notice = mapping_service.change_notice(g.workspace.id, customer_id=view.customer_id)
    released = mapping_service.after_change(g.workspace.id)
    return jsonify({**view.to_json(), "released": released, **notice})


@bp.delete("/customers/<path:customer_id>/settings")
@token_required
def delete_customer_settings(customer_id: str) -> Any:
    if not overrides.clear(db.session, g.workspace.id, customer_id):
        raise Problem(
            404,
            "Not found",
            f"customer {customer_id!r} has no settings of its own",
            type_="not-found",
            field="/customer_id",
        )
    db.session.commit()
    mapping_service.after_change(g.workspace.id)
    return "", 204


_VALUES = {
    "grouping": {
        "type": ["string", "null"],
        "enum": ["project", "project_day", "task", "detailed", None],
    },
    "billing_increment": {"type": ["integer", "null"], "enum": [1, 6, 15, None]},
    "payment_terms_days": {"type": ["integer", "null"], "minimum": 0, "maximum": 365},
    "tax_code": {"type": ["string", "null"], "maxLength": 100},
    "consolidation": {"type": ["string", "null"], "enum": ["per_timesheet", "per_period", None]},
    "period": {"type": ["string", "null"], "enum": ["weekly", "semi_monthly", "monthly", None]},
    "week_start": {
        "type": ["string", "null"],
        "enum": [*WEEKDAYS, None],
    },
}
# Fields whose values are a closed list (an empty string is none of them).
_CHOICES = frozenset(name for name, schema in _VALUES.items() if "enum" in schema)
_OVERRIDES = {
    "type": "object",
    "description": "null = the workspace's setting",
    "additionalProperties": False,
    "properties": _VALUES,
}
_REF = {"$ref": "#/components/schemas/CustomerSettings"}
_PARAMS = [{"name": "customer_id", "in": "path", "required": True, "schema": {"type": "string"}}]
_ERRORS = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "404": {"$ref": "#/components/responses/Problem"},
}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


OPENAPI_SCHEMAS = {
    "CustomerSettingsOverrides": _OVERRIDES,
    "CustomerSettings": {
        "type": "object",
        "properties": {
            "customer_id": {"type": "string"},
            "customer_name": {"type": "string"},
            "overrides": {"$ref": "#/components/schemas/CustomerSettingsOverrides"},
            "workspace": {"type": "object", "description": "the workspace's settings"},
            "effective": {"type": "object", "description": "what the next draft uses"},
        },
    },
}
OPENAPI_PATHS = {
    "/customers/{customer_id}/settings": {
        "get": {
            "operationId": "getCustomerSettings",
            "summary": "One accounting customer's overrides of the workspace settings",
            "parameters": _PARAMS,
            "responses": {"200": _ok("The overrides and what applies", _REF), **_ERRORS},
        },
        "put": {
            "operationId": "putCustomerSettings",
            "summary": (
                "Replace the customer's overrides (omitted or null = workspace setting); "
                "releases held approvals"
            ),
            "parameters": _PARAMS,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/CustomerSettingsOverrides"}
                    }
                },
            },
            "responses": {
                "200": _ok(
                    "The stored overrides; released = approvals re-billed",
                    {
                        "allOf": [
                            _REF,
                            {
                                "type": "object",
                                "properties": {
                                    "released": {"type": "integer"},
                                    **CHANGE_NOTICE_PROPERTIES,
                                },
                            },
                        ]
                    },
                ),
                "422": {"$ref": "#/components/responses/Problem"},
                **_ERRORS,
            },
        },
        "delete": {
            "operationId": "deleteCustomerSettings",
            "summary": "Back to the workspace's settings for this customer",
            "parameters": _PARAMS,
            "responses": {"204": {"description": "Cleared"}, **_ERRORS},
        },
    }
}
