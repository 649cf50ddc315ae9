"""``/api/v1/mappings``: tracker clients/projects -> accounting customers, and suggestions."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, jsonify, request

from connector import db
from connector.api import bp
from connector.api.request_bodies import NON_BLANK_ID, invalid, json_object
from connector.auth import token_required
from connector.problems import Problem
from connector.providers import build_provider
from connector.providers.base import AccountingProvider, ProviderError, ReconnectNeeded
from connector.validation import one_of
from mappings import service
from mappings.suggest import confident_choice, rank_customers


def provider_problem(exc: ProviderError) -> Problem:
    if isinstance(exc, ReconnectNeeded):
        return Problem(
            409,
            "Reconnect needed",
            f"The accounting connection must be reconnected in the admin console: {exc}",
            type_="reconnect-needed",
        )
    return Problem(502, "Accounting system error", str(exc), type_="provider-error")


def _provider() -> AccountingProvider:
    return build_provider(g.workspace.id, g.workspace.provider, current_app.config)


def _kind(kind: str) -> str:
    if kind not in service.KINDS:
        raise Problem(
            404, "Not found", "kind must be 'client' or 'project'", type_="not-found", field="/kind"
        )
    return kind


def _kind_filter() -> str | None:
    """``?kind=`` (client or project) when given; a 422 for anything else, empty included."""
    if "kind" not in request.args:
        return None
    return one_of(request.args["kind"], "kind", service.KINDS)


def _entity_json(row: service.EntityRow) -> dict[str, Any]:
    effective = row.effective
    return {
        "kind": row.kind,
        "tracker_id": row.tracker_id,
        "name": row.name,
        "email": row.email,
        "client_id": row.client_id,
        "mapping": service.serialize_mapping(row.mapping) if row.mapping else None,
        "billed_to": (
            {"customer_id": effective.customer_id, "customer_name": effective.customer_name}
            if effective
            else None
        ),
        "via_client": row.mapping is None and row.via_client is not None,
    }


@bp.get("/mappings")
@token_required
def list_mappings() -> Any:
    kind = _kind_filter()
    rows = service.list_mappings(db.session, g.workspace.id, kind)
    return jsonify(mappings=[service.serialize_mapping(m) for m in rows])


@bp.get("/mappings/history")
@token_required
def mapping_history() -> Any:
    """Mappings made in other books than the workspace bills to now (kept, not used)."""
    rows = service.history(db.session, g.workspace.id)
    return jsonify(
        books=service.current_books(db.session, g.workspace.id),
        history=[
            {
                **service.serialize_mapping(o.mapping),
                "books_name": o.books,
                "tracker_name": o.tracker_name,
            }
            for o in rows
        ],
    )


@bp.post("/mappings/exact-matches")
@token_required
def map_exact_matches() -> Any:
    """Map every unmapped client/project with exactly one customer of the same name (or, after
    a switch of books, its old customer's name) or the same email, in one step."""
    rows = service.list_entities(db.session, g.workspace.id)
    try:
        customers = service.fetch_customers(_provider())
        mapped = service.map_exact_matches(db.session, g.workspace.id, rows, customers)
    except service.MappingError as exc:
        db.session.rollback()
        raise invalid(exc.field, exc.message) from None
    except ProviderError as exc:
        db.session.rollback()
        raise provider_problem(exc) from None
    db.session.commit()
    released = service.after_change(g.workspace.id) if mapped else 0
    return jsonify(
        mapped=[service.serialize_mapping(row.mapping) for row, _ in mapped if row.mapping],
        released=released,
    )


@bp.get("/mappings/entities")
@token_required
def list_entities() -> Any:
    rows = service.list_entities(db.session, g.workspace.id)
    return jsonify(entities=[_entity_json(r) for r in rows])


@bp.get("/mappings/suggestions")
@token_required
def suggestions() -> Any:
    """Ranked accounting customers for every unmapped client/project (or one of them)."""
    kind = _kind_filter()
    tracker_id = request.args.get("tracker_id")
    rows = [r for r in service.list_entities(db.session, g.workspace.id) if r.mapping is None]
    if kind:
        rows = [r for r in rows if r.kind == kind]
    if tracker_id:
        rows = [r for r in rows if r.tracker_id == tracker_id]
    try:
        customers = service.fetch_customers(_provider())
    except ProviderError as exc:
        raise provider_problem(exc) from None
    out = []
    for row in rows:
        ranked = rank_customers(row.name, row.email, customers)
        choice = confident_choice(ranked)
        out.append(
            {
                "kind": row.kind,
                "tracker_id": row.tracker_id,
                "name": row.name,
                "confident_customer_id": choice.customer.id if choice else None,
                "suggestions": [
                    {
                        "customer_id": s.customer.id,
                        "customer_name": s.customer.name,
                        "currency": s.customer.currency,
                        "score": s.score,
                        "reasons": list(s.reasons),
                    }
                    for s in ranked
                ],
            }
        )
    return jsonify(suggestions=out)


@bp.put("/mappings/<kind>/<path:tracker_id>")
@token_required
def put_mapping(kind: str, tracker_id: str) -> Any:
    _kind(kind)
    body = json_object()
    customer_id = body.get("customer_id")
    if not isinstance(customer_id, str) or not customer_id.strip() or len(customer_id) > 255:
        raise invalid(
            "customer_id", "is required: the accounting system's customer id (1 to 255 characters)"
        )
    try:
        row = service.link_customer(
            db.session,
            g.workspace.id,
            _provider(),
            kind=kind,
            tracker_id=tracker_id,
            customer_id=customer_id,
        )
    except service.UnknownCustomer as exc:
        db.session.rollback()
        raise Problem(
            404, "Customer not found", exc.message, type_="not-found", field=f"/{exc.field}"
        ) from None
    except service.MappingError as exc:
        db.session.rollback()
        raise invalid(exc.field, exc.message) from None
    except ProviderError as exc:
        db.session.rollback()
        raise provider_problem(exc) from None
    db.session.commit()
    # Counted before the holds are re-billed: the drafts that existed before this change.
    notice = service.change_notice(g.workspace.id, tracker=(kind, tracker_id))
    released = service.after_change(g.workspace.id)
    return jsonify(mapping=service.serialize_mapping(row), released=released, **notice)


@bp.delete("/mappings/<kind>/<path:tracker_id>")
@token_required
def delete_mapping(kind: str, tracker_id: str) -> Any:
    _kind(kind)
    if not service.remove_mapping(db.session, g.workspace.id, kind, tracker_id):
        raise Problem(404, "Not found", f"{kind} {tracker_id!r} has no mapping", type_="not-found")
    db.session.commit()
    service.after_change(g.workspace.id)
    return "", 204


_MAPPING_REF = {"$ref": "#/components/schemas/Mapping"}
# Carried by every mapping, rate and settings change response.
CHANGE_NOTICE_PROPERTIES: dict[str, Any] = {
    "approvals_with_created_drafts": {
        "type": "integer",
        "description": "Approvals this change could touch whose drafts were already created in "
        "the accounting system: they are left as they are (re-bill one to replace them)",
    },
    "notice": {
        "type": ["string", "null"],
        "description": "Plain words for the admin when such drafts exist: the change applies "
        "to future approvals",
    },
}
_ERRORS = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "404": {"$ref": "#/components/responses/Problem"},
    "422": {"$ref": "#/components/responses/Problem"},
}
_KIND_PARAMS = [
    {
        "name": "kind",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": ["client", "project"]},
    },
    {"name": "tracker_id", "in": "path", "required": True, "schema": {"type": "string"}},
]


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


OPENAPI_SCHEMAS = {
    "Mapping": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string", "enum": ["client", "project"]},
            "tracker_id": {"type": "string"},
            "customer_id": {"type": "string"},
            "customer_name": {"type": "string"},
            "customer_currency": {"type": ["string", "null"]},
            "books": {
                "type": "string",
                "description": "The books the customer id belongs to (provider and account)",
            },
            "updated_at": {"type": ["string", "null"], "format": "date-time"},
        },
    }
}

OPENAPI_PATHS = {
    "/mappings": {
        "get": {
            "operationId": "listMappings",
            "summary": "Client/project -> customer mappings (projects override clients)",
            "parameters": [
                {
                    "name": "kind",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["client", "project"]},
                }
            ],
            "responses": {
                "200": _ok(
                    "Mappings",
                    {
                        "type": "object",
                        "properties": {"mappings": {"type": "array", "items": _MAPPING_REF}},
                    },
                ),
                **_ERRORS,
            },
        }
    },
    "/mappings/history": {
        "get": {
            "operationId": "listMappingHistory",
            "summary": "Mappings made in other books (another company or account): history",
            "description": (
                "A customer id names a business in one set of books only. After the workspace "
                "moved to other books these mappings are kept but never used; they come back "
                "when it returns to those books."
            ),
            "responses": {
                "200": _ok(
                    "The current books' key and the mappings of other books",
                    {
                        "type": "object",
                        "properties": {
                            "books": {"type": ["string", "null"]},
                            "history": {
                                "type": "array",
                                "items": {
                                    "allOf": [
                                        _MAPPING_REF,
                                        {
                                            "type": "object",
                                            "properties": {
                                                "books_name": {"type": "string"},
                                                "tracker_name": {
                                                    "type": "string",
                                                    "description": "The tracker's name for the "
                                                    "client or project (its id if never seen)",
                                                },
                                            },
                                        },
                                    ]
                                },
                            },
                        },
                    },
                ),
                **_ERRORS,
            },
        }
    },
    "/mappings/exact-matches": {
        "post": {
            "operationId": "mapExactMatches",
            "summary": "Map every client/project with an exact match in the books; releases holds",
            "description": (
                "Exactly one customer with the client's name (or, after a switch of books, the "
                "name of its customer there) or its email. Ambiguous ones are left to a person."
            ),
            "responses": {
                "200": _ok(
                    "What was mapped; released = approvals re-billed",
                    {
                        "type": "object",
                        "properties": {
                            "mapped": {"type": "array", "items": _MAPPING_REF},
                            "released": {"type": "integer"},
                        },
                    },
                ),
                "409": {"$ref": "#/components/responses/Problem"},
                "502": {"$ref": "#/components/responses/Problem"},
                **_ERRORS,
            },
        }
    },
    "/mappings/entities": {
        "get": {
            "operationId": "listTrackerEntities",
            "summary": "Every tracker client and project seen, with the customer it bills to",
            "responses": {"200": _ok("Entities", {"type": "object"}), **_ERRORS},
        }
    },
    "/mappings/suggestions": {
        "get": {
            "operationId": "listMappingSuggestions",
            "summary": "Accounting customers ranked for each unmapped client/project",
            "parameters": [
                {
                    "name": "kind",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["client", "project"]},
                },
                {"name": "tracker_id", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": _ok("Suggestions, best first", {"type": "object"}),
                "409": {"$ref": "#/components/responses/Problem"},
                **_ERRORS,
            },
        }
    },
    "/mappings/{kind}/{tracker_id}": {
        "put": {
            "operationId": "putMapping",
            "summary": "Bill a client/project to an existing accounting customer; releases holds",
            "parameters": _KIND_PARAMS,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["customer_id"],
                            "properties": {"customer_id": NON_BLANK_ID},
                        }
                    }
                },
            },
            "responses": {
                "200": _ok(
                    "The mapping; released = approvals re-billed",
                    {
                        "type": "object",
                        "properties": {
                            "mapping": _MAPPING_REF,
                            "released": {"type": "integer"},
                            **CHANGE_NOTICE_PROPERTIES,
                        },
                    },
                ),
                "409": {"$ref": "#/components/responses/Problem"},  # reconnect needed
                **_ERRORS,
            },
        },
        "delete": {
            "operationId": "deleteMapping",
            "summary": "Remove a mapping",
            "parameters": _KIND_PARAMS,
            "responses": {"204": {"description": "Removed"}, **_ERRORS},
        },
    },
}
