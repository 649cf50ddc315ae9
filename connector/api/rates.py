"""``/api/v1/rates``: the rate table (member x project, project, customer, workspace default)."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify

from connector import db
from connector.api import bp
from connector.api.mappings import CHANGE_NOTICE_PROPERTIES
from connector.api.request_bodies import CURRENCY_SCHEMA, invalid_fields, json_object
from connector.auth import token_required
from connector.problems import Problem
from connector.validation import FieldError
from mappings import rates as rate_table
from mappings import service


def _not_found(rate_id: int) -> Problem:
    return Problem(404, "Not found", f"No rate {rate_id} in this workspace.", type_="not-found")


def _history(exc: rate_table.RateOfOtherBooks) -> Problem:
    return Problem(409, "Rate of other books", str(exc), type_="rate-of-other-books")


def _rate_body() -> dict[str, Any]:
    body = json_object()
    blank = body.get("effective_from")
    if isinstance(blank, str) and not blank.strip():
        raise _every_error(body, rate_table.RateError("effective_from", "must be a date"))
    return body


def _every_error(body: dict[str, Any], first: rate_table.RateError) -> Problem:
    """A 422 naming every bad field, as the console's rate form shows them."""
    found = rate_table.rate_errors(body) or {first.field: first.message}
    blank = body.get("effective_from")
    if isinstance(blank, str) and not blank.strip():  # the console's empty field; API: null
        found["effective_from"] = "must be a date as YYYY-MM-DD, or null"
    return invalid_fields(FieldError(name, message) for name, message in found.items())


@bp.get("/rates")
@token_required
def list_rates() -> Any:
    s, ws_id = db.session, g.workspace.id
    return jsonify(
        books=service.current_books(s, ws_id),
        rates=rate_table.serialize_rates(s, ws_id, rate_table.list_rates(s, ws_id)),
        history=rate_table.serialize_rates(s, ws_id, rate_table.history(s, ws_id)),
    )


@bp.post("/rates")
@token_required
def create_rate() -> Any:
    body = _rate_body()
    try:
        row = rate_table.create_rate(db.session, g.workspace.id, body)
    except rate_table.RateError as exc:
        db.session.rollback()
        raise _every_error(body, exc) from None
    db.session.commit()
    notice = service.change_notice(g.workspace.id)  # drafts that existed before the change
    released = service.after_change(g.workspace.id)
    rate = rate_table.serialize_rate(db.session, g.workspace.id, row)
    return jsonify(rate=rate, released=released, **notice), 201


@bp.get("/rates/<int:rate_id>")
@token_required
def get_rate(rate_id: int) -> Any:
    row = rate_table.get_rate(db.session, g.workspace.id, rate_id)
    if row is None:
        raise _not_found(rate_id)
    return jsonify(rate=rate_table.serialize_rate(db.session, g.workspace.id, row))


@bp.put("/rates/<int:rate_id>")
@token_required
def update_rate(rate_id: int) -> Any:
    body = _rate_body()
    try:
        row = rate_table.update_rate(db.session, g.workspace.id, rate_id, body)
    except LookupError:
        raise _not_found(rate_id) from None
    except rate_table.RateOfOtherBooks as exc:
        db.session.rollback()
        raise _history(exc) from None
    except rate_table.RateError as exc:
        db.session.rollback()
        raise _every_error(body, exc) from None
    db.session.commit()
    notice = service.change_notice(g.workspace.id)  # drafts that existed before the change
    released = service.after_change(g.workspace.id)
    rate = rate_table.serialize_rate(db.session, g.workspace.id, row)
    return jsonify(rate=rate, released=released, **notice)


@bp.delete("/rates/<int:rate_id>")
@token_required
def delete_rate(rate_id: int) -> Any:
    try:
        deleted = rate_table.delete_rate(db.session, g.workspace.id, rate_id)
    except rate_table.RateOfOtherBooks as exc:
        db.session.rollback()
        raise _history(exc) from None
    if not deleted:
        raise _not_found(rate_id)
    db.session.commit()
    service.after_change(g.workspace.id)
    return "", 204


_RATE_REF = {"$ref": "#/components/schemas/Rate"}
_PROBLEM = {"$ref": "#/components/responses/Problem"}
_ERRORS = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "404": _PROBLEM,
    "422": _PROBLEM,
}
_ID = [{"name": "rate_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RateInput"}}},
}


def _ok(description: str) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "rate": _RATE_REF,
            "released": {"type": "integer"},
            **CHANGE_NOTICE_PROPERTIES,
        },
    }
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_SCOPE_IDS = {
    "member_id": {"type": ["string", "null"], "description": "with project_id: member x project"},
    "project_id": {"type": ["string", "null"]},
    "contract_id": {"type": ["string", "null"]},
    "customer_id": {"type": ["string", "null"], "description": "alone: a customer's rate"},
}
OPENAPI_SCHEMAS = {
    "RateInput": {
        "type": "object",
        "required": ["amount", "currency"],
        "description": "The scope is implied by which ids are set; none = the workspace default.",
        "properties": {
            "amount": {
                "type": "string",
                "pattern": r"^[0-9]{1,5}(\.[0-9]{1,4})?$",
                "description": 'Hourly rate as a decimal string: "27.50" (at most 4 decimals, so a '
                "slip such as 0.0000001 is refused, and 100000 per hour; 10000 for 3-decimal "
                "currencies such as KWD)",
            },
            "currency": CURRENCY_SCHEMA,
            "effective_from": {"type": ["string", "null"], "format": "date"},
            **_SCOPE_IDS,
        },
    },
    "Rate": {
        "type": "object",
        "required": ["id", "scope", "amount", "currency", "books", "books_name", "applies"],
        "properties": {
            "id": {"type": "integer"},
            "scope": {
                "type": "string",
                "enum": ["contract", "member_project", "project", "customer", "workspace"],
            },
            "amount": {"type": "string"},
            "currency": {"type": "string"},
            "effective_from": {"type": ["string", "null"], "format": "date"},
            **_SCOPE_IDS,
            "books": {
                "type": ["string", "null"],
                "description": "A customer's rate: the key of the books its customer id belongs "
                "to (local, quickbooks:<environment>:<realm>, stripe:<mode>:<account>), the books "
                "the workspace billed to when the rate was made. null: the rate names no customer "
                "and applies in any books.",
            },
            "books_name": {
                "type": ["string", "null"],
                "description": 'Those books in plain words ("QuickBooks company Acme")',
            },
            "applies": {
                "type": "boolean",
                "description": "false: a customer rate of other books than the workspace bills "
                "to now, kept as history, never applied and read-only (409 on change)",
            },
        },
    },
}

OPENAPI_PATHS = {
    "/rates": {
        "get": {
            "operationId": "listRates",
            "summary": "The rate table, most specific scope first",
            "description": (
                "A customer's rate belongs to the books its customer id came from. `rates` are "
                "the rates billing applies now; `history` the customer rates of other books "
                "(another QuickBooks company or Stripe account, or the built-in ledger), kept "
                "but never applied; they apply again if the workspace returns to those books."
            ),
            "responses": {
                "200": {
                    "description": "Rates",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["books", "rates", "history"],
                                "properties": {
                                    "books": {
                                        "type": ["string", "null"],
                                        "description": "The key of the books billed to now "
                                        "(null: the accounting system is not connected)",
                                    },
                                    "rates": {"type": "array", "items": _RATE_REF},
                                    "history": {"type": "array", "items": _RATE_REF},
                                },
                            }
                        }
                    },
                },
                **_ERRORS,
            },
        },
        "post": {
            "operationId": "createRate",
            "summary": "Add a rate; held approvals are re-billed",
            "description": "A rate with customer_id belongs to the books the workspace bills to "
            "now (422 on customer_id when no accounting system is connected).",
            "requestBody": _BODY,
            "responses": {"201": _ok("Created"), **_ERRORS},
        },
    },
    "/rates/{rate_id}": {
        "get": {
            "operationId": "getRate",
            "summary": "One rate",
            "parameters": _ID,
            "responses": {"200": _ok("The rate"), **_ERRORS},
        },
        "put": {
            "operationId": "updateRate",
            "summary": "Replace a rate; held approvals are re-billed",
            "description": "409: a customer rate of other books (history) is read-only.",
            "parameters": _ID,
            "requestBody": _BODY,
            "responses": {"200": _ok("Updated"), **_ERRORS, "409": _PROBLEM},
        },
        "delete": {
            "operationId": "deleteRate",
            "summary": "Delete a rate",
            "description": "409: a customer rate of other books (history) is read-only.",
            "parameters": _ID,
            "responses": {"204": {"description": "Deleted"}, **_ERRORS, "409": _PROBLEM},
        },
    },
}
