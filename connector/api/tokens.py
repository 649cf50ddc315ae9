"""``/api/v1/tokens``: the workspace's API tokens (create shows the token once; revoke)."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify
from sqlalchemy import select

from connector import db
from connector.api import bp
from connector.api.request_bodies import invalid, json_object
from connector.auth import issue_api_token, token_required
from connector.crypto import hash_token
from connector.models import ApiToken, utcnow
from connector.problems import Problem


def serialize_token(row: ApiToken) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


@bp.get("/tokens")
@token_required
def list_tokens() -> Any:
    rows = db.session.scalars(
        select(ApiToken).where(ApiToken.workspace_id == g.workspace.id).order_by(ApiToken.id)
    )
    return jsonify(tokens=[serialize_token(r) for r in rows])


@bp.post("/tokens")
@token_required
def create_token() -> Any:
    """A new token for the caller's workspace (only a token of that workspace can ask)."""
    body = json_object()
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise invalid("name", "is required: 1 to 200 characters saying what uses the token")
    token = issue_api_token(db.session, g.workspace.id, name=name.strip())
    db.session.commit()
    row = db.session.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).one()
    response = jsonify(token=token, **serialize_token(row))
    response.headers["Cache-Control"] = "no-store"
    return response, 201


@bp.delete("/tokens/<int:token_id>")
@token_required
def revoke_token(token_id: int) -> Any:
    row = db.session.get(ApiToken, token_id)
    if row is None or row.workspace_id != g.workspace.id:
        raise Problem(
            404, "Not found", f"No token {token_id} in this workspace.", type_="not-found"
        )
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        db.session.commit()
    return "", 204


_TOKEN = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "prefix": {"type": "string", "description": "First characters, to tell tokens apart"},
        "created_at": {"type": "string", "format": "date-time"},
        "last_used_at": {"type": ["string", "null"], "format": "date-time"},
        "revoked_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
_401 = {"$ref": "#/components/responses/Unauthorized"}
_PROBLEM = {"$ref": "#/components/responses/Problem"}
OPENAPI_SCHEMAS = {"ApiToken": _TOKEN}
OPENAPI_PATHS = {
    "/tokens": {
        "get": {
            "operationId": "listTokens",
            "summary": "API tokens of this workspace (never the secret part)",
            "responses": {
                "200": {
                    "description": "Tokens",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "tokens": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/ApiToken"},
                                    }
                                },
                            }
                        }
                    },
                },
                "401": _401,
            },
        },
        "post": {
            "operationId": "createToken",
            "summary": "Create a token for this workspace; the response shows it once",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {
                                    "type": "string",
                                    "minLength": 1,
                                    "maxLength": 200,
                                    "pattern": r"\S",
                                }
                            },
                        }
                    }
                },
            },
            "responses": {
                "201": {"description": "The token (field 'token') and its metadata"},
                "401": _401,
                "422": _PROBLEM,
            },
        },
    },
    "/tokens/{token_id}": {
        "delete": {
            "operationId": "revokeToken",
            "summary": "Revoke a token",
            "parameters": [
                {"name": "token_id", "in": "path", "required": True, "schema": {"type": "integer"}}
            ],
            "responses": {"204": {"description": "Revoked"}, "401": _401, "404": _PROBLEM},
        }
    },
}
