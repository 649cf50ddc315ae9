"""Issue #9 item 10, the receiver's HTTP edges: oversized bodies, chunked bodies, access logs."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from connector import db
from connector.models import Delivery
from tests.app_fixtures import signed_headers
from tests.helpers import event

ROOT = Path(__file__).resolve().parents[2]
APPROVED = "timesheet_approved__three_customers"
PORTS = range(5101, 5110)


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip(f"no free port in {PORTS}")


def _chunked_post(client, ws, body: bytes, **kw):  # type: ignore[no-untyped-def]
    """What gunicorn or the dev server hands over for Transfer-Encoding: chunked."""
    headers = signed_headers(ws.signing_secret, body)
    headers["Transfer-Encoding"] = "chunked"
    return client.post(
        ws.webhook_path,
        input_stream=io.BytesIO(body),
        headers=headers,
        environ_overrides={"wsgi.input_terminated": True},
        **kw,
    )


def test_oversized_chunked_body_is_413_not_401(app, workspace, client) -> None:
    app.config["MAX_CONTENT_LENGTH"] = app.config["WEBHOOK_MAX_BODY_BYTES"] = 1000
    body = b'{"pad": "' + b"x" * 5000 + b'"}'
    res = _chunked_post(client, workspace, body)
    assert res.status_code == 413, res.get_data(as_text=True)
    assert res.mimetype == "application/problem+json"
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_chunked_body_at_the_cap_is_accepted(app, workspace, client) -> None:
    body = json.dumps(event(APPROVED)).encode()
    app.config["MAX_CONTENT_LENGTH"] = app.config["WEBHOOK_MAX_BODY_BYTES"] = len(body)
    assert _chunked_post(client, workspace, body).status_code == 202


@pytest.mark.parametrize("chunked", [False, True])
def test_413_reads_the_body_off_the_connection_and_closes_it(
    app, workspace, client, chunked
) -> None:
    app.config["MAX_CONTENT_LENGTH"] = app.config["WEBHOOK_MAX_BODY_BYTES"] = 1000
    body = b'{"pad": "' + b"x" * 10_000 + b'"}'  # within the drain budget (16x)
    stream = io.BytesIO(body)
    headers = signed_headers(workspace.signing_secret, body)
    extra = {"environ_overrides": {"wsgi.input_terminated": True}} if chunked else {}
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(len(body))
    res = client.post(workspace.webhook_path, input_stream=stream, headers=headers, **extra)
    assert res.status_code == 413
    assert res.headers.get("Connection") == "close"
    assert stream.tell() == len(body)  # nothing left for the server to mistake for a request


# --- the access log keeps secrets out ---------------------------------------------------------
def _atoms(path: str, query: str = "", referer: str = "-") -> dict:
    from gunicorn.config import Config

    from connector.gunicorn_conf import RedactingLogger

    raw_uri = path + (f"?{query}" if query else "")
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": raw_uri,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": referer,
    }
    req = SimpleNamespace(headers=[("REFERER", referer)])
    resp = SimpleNamespace(status="200 OK", sent=10, headers=[])
    return RedactingLogger(Config()).atoms(resp, req, environ, timedelta(milliseconds=3))


def test_access_log_atoms_never_hold_endpoint_tokens_or_oauth_codes() -> None:
    atoms = _atoms("/webhooks/webwork/SeCrEtToKeN123")
    assert all("SeCrEtToKeN123" not in str(v) for v in atoms.values()), atoms
    assert atoms["r"] == "GET /webhooks/webwork/[redacted] HTTP/1.1"

    atoms = _atoms(
        "/connections/quickbooks/callback",
        "code=AB12cd-secret&state=st4te&realmId=9130",
        referer="https://x.test/cb?code=AB12cd-secret",
    )
    text = json.dumps({k: str(v) for k, v in atoms.items()})
    assert "AB12cd-secret" not in text and "st4te" not in text
    assert "realmId=9130" in atoms["r"]  # not a secret: kept for support


# --- the real thing: gunicorn with the Procfile's config --------------------------------------
def _procfile_web_args() -> list[str]:
    line = next(x for x in (ROOT / "Procfile").read_text().splitlines() if x.startswith("web:"))
    assert "--config python:connector.gunicorn_conf" in line  # the Procfile uses the config
    return ["--config", "python:connector.gunicorn_conf"]


@pytest.fixture
def gunicorn_server(tmp_path):  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'http.db'}",
        "QUEUE_URL": "memory://",
        "WORKER_IMMEDIATE": "false",
        "INSTANCE_PATH": str(tmp_path),
        "PUBLIC_BASE_URL": "http://127.0.0.1",
        "WEBHOOK_MAX_BODY_BYTES": "20000",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("REDIS_URL", None)
    setup = (
        "import json\n"
        "from connector import create_app, db, migrate\n"
        "from connector.connections.store import secret_box\n"
        "from connector.workspaces import create_workspace\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    migrate.upgrade()\n"
        "    with db.session_scope() as s:\n"
        "        c = create_workspace(s, secret_box(app.config), name='Http',\n"
        "                             tracker_workspace_id='4242', auto_invoicing=False)\n"
        "        print(json.dumps([c.workspace.endpoint_token, c.signing_secret]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", setup], env=env, cwd=ROOT, capture_output=True, check=True
    )
    token, secret = json.loads(out.stdout.decode().strip().splitlines()[-1])
    log_path = tmp_path / "access.log"
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        *_procfile_web_args(),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        "2",
        "--access-logfile",
        str(log_path),
        "connector:create_app()",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    try:
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not start")
        yield SimpleNamespace(token=token, secret=secret, log=log_path, port=port)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_under_gunicorn_a_413_loses_no_next_request_and_the_log_keeps_secrets(
    gunicorn_server,
) -> None:
    path = f"/webhooks/webwork/{gunicorn_server.token}"
    conn = http.client.HTTPConnection("127.0.0.1", gunicorn_server.port, timeout=30)
    big = b'{"pad": "' + b"x" * 250_000 + b'"}'
    for chunked in (False, True):
        headers = signed_headers(gunicorn_server.secret, big)
        if chunked:
            conn.request("POST", path, body=iter([big]), headers=headers, encode_chunked=True)
        else:
            conn.request("POST", path, body=big, headers=headers)
        res = conn.getresponse()
        res.read()
        assert res.status == 413, res.status
        # The next request on the same client connection is answered, not lost.
        body = json.dumps(event(APPROVED)).encode()
        conn.request("POST", path, body=body, headers=signed_headers(gunicorn_server.secret, body))
        res = conn.getresponse()
        res.read()
        assert res.status == 202, res.status
    conn.request("GET", "/connections/quickbooks/callback?code=AB12cd-secret&state=st4te")
    conn.getresponse().read()
    conn.close()

    for _ in range(50):  # the access log is written after each response
        log = gunicorn_server.log.read_text()
        if "callback" in log:
            break
        time.sleep(0.1)
    assert "/webhooks/webwork/[redacted]" in log and "callback" in log
    assert gunicorn_server.token not in log
    assert "AB12cd-secret" not in log and "st4te" not in log


def _raw_get(port: int, target: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize("length", [4050, 5000, 9000])
def test_under_gunicorn_long_request_lines_get_the_styled_414(gunicorn_server, length) -> None:
    # Issue #20 item 8: over gunicorn's limit_request_line (4094) the app never sees the request;
    # the worker answers with the app's own page, not gunicorn's bare one.
    raw = _raw_get(gunicorn_server.port, "/workspaces?q=" + "x" * length)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414"), head[:80]
    assert b"text/html" in head and b"Content-Security-Policy" in head
    assert b"Address too long" in body and b"admin.css" in body
