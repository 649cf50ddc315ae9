"""RFC 9457 problem details: every error an API caller or webhook sender sees has this shape."""

from __future__ import annotations

from typing import Any

from flask import Response, json

PROBLEM_BASE = "https://timesheet-invoicer.dev/problems/"


class Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str | None = None,
        **extra: Any,
    ):
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type_ = type_
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + (self.type_ or "about-blank"),
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        # An absent member, never null: the schema says "field" and friends are strings.
        body.update({name: value for name, value in self.extra.items() if value is not None})
        return body

    def response(self) -> Response:
        return problem_response(self.to_dict(), self.status)


def problem_response(body: dict[str, Any], status: int) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")
