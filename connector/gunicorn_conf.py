"""gunicorn settings for the ``web`` process (``gunicorn --config python:connector.gunicorn_conf``).

Two things the command line cannot say:

* The access log must not hold secrets. A webhook URL carries the workspace's endpoint token in
  its path and an OAuth callback carries ``?code=...&state=...``; gunicorn logs the request line,
  the path, the query, the referer and every header and environ value a custom format names.
  ``RedactingLogger`` masks them in every atom, whatever ``--access-logformat`` says.
* A request that declares a body over ``WEBHOOK_MAX_BODY_BYTES`` is answered 413 with
  ``Connection: close`` (gunicorn drops an application's hop-by-hop headers, so ``pre_request``
  asks gunicorn itself): a client is told not to send its next request on a connection whose
  unread bytes gunicorn would otherwise give up draining and silently close.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

from connector.validation import is_ascii_digits

REDACTED = "[redacted]"
# Query parameters whose values are credentials or one-time codes.
SECRET_PARAMS = ("code", "state", "token", "access_token", "refresh_token", "id_token")
_WEBHOOK_TOKEN = re.compile(r"(/webhooks/[^/?#\s]+/)[^/?#\s]+")
_SECRET_PARAM = re.compile(r"((?:^|[?&;])(?:" + "|".join(SECRET_PARAMS) + r")=)[^&;#\s]*")


def redact(text: str) -> str:
    """``text`` (a request line, path, query or URL) without endpoint tokens and OAuth codes."""
    if "/webhooks/" in text:
        text = _WEBHOOK_TOKEN.sub(r"\1" + REDACTED, text)
    if "=" in text:
        text = _SECRET_PARAM.sub(r"\1" + REDACTED, text)
    return text


class RedactingLogger(Logger):
    """gunicorn's logger with secrets masked in every access-log atom."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {k: redact(v) if isinstance(v, str) else v for k, v in atoms.items()}


def _max_body_bytes() -> int:
    from connector.config import load_config

    return int(load_config()["WEBHOOK_MAX_BODY_BYTES"])


def pre_request(worker: Any, req: Any) -> None:
    length = next((v for k, v in req.headers if k.upper() == "CONTENT-LENGTH"), None)
    if length is not None and is_ascii_digits(length) and int(length) > max_body_bytes:
        req.force_close()


# The rest stays on the Procfile's command line (bind, workers, threads, access log file).
logger_class = RedactingLogger
max_body_bytes = _max_body_bytes()
