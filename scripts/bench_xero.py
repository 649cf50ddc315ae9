"""Benchmark: drafts per minute for ONE Xero organisation, from approval to DRAFT invoice.

Not a test: it prints figures. The fake Xero of the tests (``tests/providers/xero/
fake_xero.py``) serves HTTP on 127.0.0.1 in this process, answers after ``--latency`` seconds,
and enforces Xero's limits per organisation: 60 calls in any minute and 5 at once, else 429 with
Retry-After. The real worker (``huey_consumer connector.consumer.huey``, ``--threads`` threads)
turns N signed approvals with three customers each into 3N drafts, spending the shared limiter's
58 calls a minute. Printed: drafts/minute and as a fraction of the 60/min bound (goal >= 0.9),
requests per draft, 429s, duplicates (must be 0) and lost drafts (must be 0).

    .venv/bin/python scripts/bench_xero.py                    # SQLite, 40 approvals (120 drafts)
    .venv/bin/python scripts/bench_xero.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1/x --redis-url redis://127.0.0.1:6379/7

A PostgreSQL database given with ``--database-url`` is EMPTIED first; the Redis db is flushed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BOUND = 60  # Xero: calls a minute per organisation
CUSTOMERS = {
    "cl-globex": "Globex Corporation",
    "cl-initech": "Initech",
    "cl-umbrella": "Umbrella Ltd",
}


def serve(fake: Any, port: int, latency: float) -> Any:
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    inner = fake.wsgi()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        time.sleep(latency)
        return inner(environ, start_response)

    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def prepare(args: argparse.Namespace, tmp: Path, fake: Any) -> tuple[Any, dict[str, str], Any]:
    from sqlalchemy import text

    from connector import create_app, db, migrate
    from connector.books import books_key
    from connector.connections.store import DbCredentialStore, secret_box
    from connector.models import CustomerMapping
    from connector.workspaces import create_workspace

    base = f"http://127.0.0.1:{args.port}"
    database_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    queue_url = args.redis_url or f"sqlite:///{tmp / 'queue.db'}"
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "QUEUE_URL": queue_url,
        "INSTANCE_PATH": str(tmp),
        "XERO_CLIENT_ID": "bench",
        "XERO_CLIENT_SECRET": "bench",
        "XERO_TOKEN_URL": f"{base}/identity/token",
        "XERO_REVOKE_URL": f"{base}/identity/revoke",
        "XERO_CONNECTIONS_URL": f"{base}/connections",
        "XERO_API_BASE_URL": f"{base}/api.xro/2.0",
        "LOG_LEVEL": "WARNING",
        "WORKER_IMMEDIATE": "false",
        "STATUS_RECONCILE_MINUTES": "0",
        "PYTHONPATH": str(ROOT),
    }
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
    else:
        env.pop("REDIS_URL", None)
    os.environ.update(
        {k: env[k] for k in ("DATABASE_URL", "QUEUE_URL", "INSTANCE_PATH", "WORKER_IMMEDIATE")}
    )
    app = create_app(
        {
            **{k: v for k, v in env.items() if k.startswith("XERO_")},
            "DATABASE_URL": database_url,
            "QUEUE_URL": queue_url,
            "REDIS_URL": args.redis_url,
            "WORKER_IMMEDIATE": False,
        }
    )
    with app.app_context():
        engine = db.engine()
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        migrate.upgrade()
        with db.session_scope() as s:
            created = create_workspace(
                s,
                secret_box(app.config),
                name="Bench organisation",
                tracker_workspace_id="4242",
                auto_invoicing=True,
            )
            ws = created.workspace
            ws.provider = "xero"
            for client_id, name in CUSTOMERS.items():
                contact = fake.add_contact(name, currency="USD")
                s.add(
                    CustomerMapping(
                        workspace_id=ws.id,
                        books=books_key("xero", fake.tenant, None),
                        kind="client",
                        tracker_id=client_id,
                        customer_id=contact,
                        customer_name=name,
                        customer_currency="USD",
                    )
                )
            target = {"id": ws.id, "path": f"/webhooks/webwork/{ws.endpoint_token}"}
            target["secret"] = created.signing_secret
        fake.add_org(fake.tenant, "Bench organisation", currencies={"USD", "NZD"})
        DbCredentialStore(target["id"], "xero", secret_box(app.config)).connect(
            fake.issue_tokens(),
            account_id=fake.tenant,
            environment=None,
            meta={"account_code": "200"},
        )
        db.session.remove()
    return app, target, env


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from sqlalchemy import func, select

    from connector import db
    from connector.models import Draft
    from tests.app_fixtures import signed_headers
    from tests.helpers import event
    from tests.providers.xero.fake_xero import FakeXero

    fake = FakeXero(enforce_limits=True)
    server = serve(fake, args.port, args.latency)
    app, target, env = prepare(args, tmp, fake)
    consumer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "huey.bin.huey_consumer",
            "connector.consumer.huey",
            "-w",
            str(args.threads),
            "-k",
            "thread",
            "-m",
            "1",
            "-q",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "consumer.log").open("ab"),
    )
    expected = 3 * args.approvals
    try:
        time.sleep(2.0)
        client = app.test_client()
        base = event("timesheet_approved__three_customers")
        calls_before = len(fake.calls)
        started = time.time()
        with app.app_context():
            for i in range(args.approvals):
                doc = copy.deepcopy(base)
                doc["data"]["timesheet"]["id"] = f"ts_bench_{i:05d}"
                body = json.dumps(doc).encode()
                res = client.post(
                    target["path"], data=body, headers=signed_headers(target["secret"], body)
                )
                assert res.status_code == 202, res.get_data(as_text=True)
            deadline = time.monotonic() + args.timeout
            drafted = 0
            while time.monotonic() < deadline:
                time.sleep(2.0)
                if consumer.poll() is not None:
                    raise RuntimeError(f"the worker exited; see {tmp}/consumer.log")
                drafted = db.session.scalar(
                    select(func.count()).select_from(Draft).where(Draft.status == "drafted")
                )
                db.session.remove()
                print(f"  t={time.time() - started:5.0f}s drafted {drafted}/{expected}", flush=True)
                if drafted >= expected:
                    break
    finally:
        os.killpg(consumer.pid, signal.SIGTERM)
        try:
            consumer.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(consumer.pid, signal.SIGKILL)
        server.shutdown()
    invoices = fake.invoices_of()
    created_at = sorted(float(inv["UpdatedDateUTC"][6:-7]) / 1000 for inv in invoices)
    elapsed = max((created_at[-1] if created_at else time.time()) - started, 1e-9)
    calls = fake.calls[calls_before:]
    references = Counter(inv["Reference"] for inv in invoices)
    per_minute = len(invoices) / elapsed * 60
    return {
        "expected": expected,
        "drafted": drafted,
        "invoices": len(invoices),
        "elapsed_s": elapsed,
        "drafts_per_min": per_minute,
        "fraction_of_bound": per_minute / BOUND,
        "requests": len(calls),
        "requests_per_draft": len(calls) / max(len(invoices), 1),
        "kinds": dict(Counter(f"{m} {p.split('/')[0]}" for m, p, _ in calls)),
        "throttled": fake.throttled,
        "duplicates": sum(n - 1 for n in references.values() if n > 1),
        "lost": expected - len(references),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--approvals", type=int, default=40, help="approvals (x 3 customers)")
    parser.add_argument("--threads", type=int, default=4, help="worker threads")
    parser.add_argument("--latency", type=float, default=0.3, help="fake Xero answer time (s)")
    parser.add_argument("--port", type=int, default=5241, help="fake Xero port")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (EMPTIED first)")
    parser.add_argument("--redis-url", default=None, help="Redis URL for queue + limiter")
    parser.add_argument("--timeout", type=float, default=600, help="seconds at most")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-xero-") as tmp:
        r = run(args, Path(tmp))
    print(
        f"\n[xero] 1 organisation, {args.approvals} approvals x 3 customers = {r['expected']} "
        f"drafts; {r['invoices']} DRAFT invoices in {r['elapsed_s']:.1f} s\n"
        f"  drafts/minute        {r['drafts_per_min']:.1f}  "
        f"({r['fraction_of_bound']:.2f} of the {BOUND}/min bound)\n"
        f"  requests per draft   {r['requests_per_draft']:.3f}  ({r['requests']} requests: "
        f"{r['kinds']})\n"
        f"  429s received        {r['throttled']}\n"
        f"  duplicates {r['duplicates']}, lost {r['lost']}"
    )


if __name__ == "__main__":
    main()
