"""Reading a webhook's raw body under WEBHOOK_MAX_BODY_BYTES, with or without Content-Length.

Every receiver (the tracker receiver and the provider receivers) reads its body here: past
Flask's MAX_CONTENT_LENGTH a chunked body is silently cut short by ``request.get_data()``, so an
oversized one failed its signature (401) instead of getting the 413 it deserves.
"""

from __future__ import annotations

from typing import IO, NoReturn

from flask import abort, current_app, request
from werkzeug.exceptions import ClientDisconnected
from werkzeug.wsgi import get_input_stream

from connector.problems import Problem

# How much of an oversized body is read and thrown away so the connection stays usable for the
# sender's next request; beyond this the server closes the connection (the 413 says so).
DRAIN_FACTOR = 16


def _too_large(limit: int, stream: IO[bytes] | None) -> NoReturn:
    if stream is not None:
        # Read the rest off the connection: left there, its bytes would be taken for the next
        # request, or the server would close a connection it just offered to keep open.
        budget = limit * DRAIN_FACTOR
        while budget > 0 and (chunk := stream.read(min(65536, budget))):
            budget -= len(chunk)
    response = Problem(
        413, "Event too large", f"Events are limited to {limit} bytes.", type_="too-large"
    ).response()
    response.headers["Connection"] = "close"
    abort(response)


def read_capped_body() -> bytes:
    """The raw body, at most WEBHOOK_MAX_BODY_BYTES, with or without a Content-Length.

    Read here rather than with request.get_data(): past Flask's MAX_CONTENT_LENGTH a chunked
    body is silently cut short there, so an oversized one failed its signature (401).
    """
    limit = current_app.config["WEBHOOK_MAX_BODY_BYTES"]
    # Bounded by Content-Length, or by the server for a chunked body (wsgi.input_terminated).
    stream = get_input_stream(request.environ, max_content_length=None)
    if request.content_length is not None and request.content_length > limit:
        _too_large(limit, stream)
    body = bytearray()
    try:
        while len(body) <= limit and (chunk := stream.read(limit + 1 - len(body))):
            body += chunk
    except ClientDisconnected:
        raise Problem(400, "Incomplete body", "The connection closed mid-body.") from None
    if len(body) > limit:
        _too_large(limit, stream)
    return bytes(body)
