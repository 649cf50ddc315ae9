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
* A request line over gunicorn's ``limit_request_line`` (4094 bytes) never reaches the app:
  gunicorn answers it itself with a bare page. ``StyledErrorsWorker`` (gthread, as the
  Procfile's ``--threads`` selects anyway) answers it with the app's own styled 414 instead:
  the page and security headers the app gives a long URL it sees (``MAX_URL_CHARS``).
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger
from gunicorn.http.errors import LimitRequestLine
from gunicorn.workers.gthread import ThreadWorker

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


class StyledErrorsWorker(ThreadWorker):
    """gunicorn's threaded worker with the console's styled page for an over-long request line."""

    _styled_414: bytes | None = None

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        if isinstance(exc, LimitRequestLine):
            try:
                client.sendall(self._page_414())
                self.log.warning("Request line over the limit from ip=%s", (addr or ("",))[0])
                return
            except Exception:  # the styled page must never hide the plain one
                self.log.debug("could not send the styled 414", exc_info=True)
        super().handle_error(req, client, addr, exc)

    def _page_414(self) -> bytes:
        if self._styled_414 is None:
            # What the app itself answers to a URL over MAX_URL_CHARS, headers and all.
            response = self.wsgi.test_client().get("/" + "x" * 5000)
            headers = [
                (name, value)
                for name, value in response.headers.items()
                if name.lower() not in ("connection", "content-length", "set-cookie", "vary")
            ]
            body = response.get_data()
            head = "".join(f"{name}: {value}\r\n" for name, value in headers)
            self._styled_414 = (
                f"HTTP/1.1 414 URI Too Long\r\nConnection: close\r\n{head}"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode("latin-1") + body
        return self._styled_414


# The rest stays on the Procfile's command line (bind, workers, threads, access log file).
logger_class = RedactingLogger
worker_class = "connector.gunicorn_conf.StyledErrorsWorker"
max_body_bytes = _max_body_bytes()
