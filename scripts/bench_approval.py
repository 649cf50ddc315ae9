"""The connector's own work per approval, counted (not a test; it prints figures).

One signed WebWork approval with three customers goes through the real receiver and the real
worker code (``worker.run_next`` in this process, one thread) into three QuickBooks drafts at a
local fake (``bench_throughput.FakeQuickBooks``, answering at once). Per approval it counts:

  * database sessions (transactional and autocommit reads), statements by table, round trips
    (statements + BEGIN + COMMIT/ROLLBACK + pings), pool checkouts
  * Redis commands (rate limiter, queue), QuickBooks requests by kind
  * tracker parses and normalizations, billing runs, JSON decodes
  * CPU seconds of this process per draft, and wall seconds per draft

then runs ``--approvals`` more to average, optionally under cProfile (``--profile out.pstats``;
read it with ``python -m pstats``). The approvals rotate over five companies, so the shared
QuickBooks limiter (10/s per company) does not pace one thread.

    .venv/bin/python scripts/bench_approval.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1/bench \\
        --redis-url redis://127.0.0.1:6379/5

The PostgreSQL database is EMPTIED first (schema dropped) and the Redis db flushed. Without
``--database-url`` it runs on a temporary SQLite database.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

COMPANIES = 5


class Counts:
    """What one stretch of work cost; the hooks below add to the current instance."""

    def __init__(self) -> None:
        self.c: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()
        self.redis: Counter[str] = Counter()

    def table_of(self, statement: str) -> str:
        words = statement.split()
        verb = words[0] if words else "?"
        after = {"SELECT": "FROM", "DELETE": "FROM", "UPDATE": "UPDATE", "INSERT": "INTO"}
        marker = after.get(verb)
        if marker is None:
            return verb
        for i, word in enumerate(words[:-1]):
            if word == marker and words[i + 1] != "(SELECT":
                return f"{verb} {words[i + 1]}"
        return f"{verb} ?"


def install_hooks(current: list[Counts]) -> None:
    import redis
    from sqlalchemy import event

    from connector import billing, db, trackers

    engine = db.engine()

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        current[0].c["statements"] += 1
        current[0].statements[current[0].table_of(statement)] += 1

    def autocommit(conn: Any) -> bool:
        return conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"

    def on_begin(conn: Any) -> None:
        current[0].c["begin (autocommit)" if autocommit(conn) else "begin"] += 1

    def on_end(kind: str) -> Any:
        def hook(conn: Any) -> None:
            if not autocommit(conn):
                current[0].c[kind] += 1

        return hook

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "begin", on_begin)
    event.listen(engine, "commit", on_end("commit"))
    event.listen(engine, "rollback", on_end("rollback"))
    event.listen(engine.pool, "checkout", lambda *a: current[0].c.update(["pool checkouts"]))
    real_ping = engine.dialect.do_ping

    def counted_ping(dbapi_connection: Any) -> Any:
        current[0].c["pings"] += 1
        return real_ping(dbapi_connection)

    # The pool's pre-ping (pool_pre_ping) and connector.db's idle ping both call this.
    engine.dialect.do_ping = counted_ping  # type: ignore[method-assign]

    def wrap(module: Any, name: str, key: str) -> None:
        real = getattr(module, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            current[0].c[key] += 1
            return real(*args, **kwargs)

        setattr(module, name, counted)

    wrap(db, "new_session", "sessions")
    if hasattr(db, "autocommit_session"):
        wrap(db, "autocommit_session", "autocommit sessions")
    wrap(trackers, "parse_event", "tracker parses")
    wrap(trackers, "normalize_timesheet", "tracker normalizations")
    wrap(billing, "bill", "billing runs")
    wrap(json, "loads", "json.loads")
    real_command = redis.Redis.execute_command

    def counted_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        current[0].redis[str(args[0])] += 1
        return real_command(self, *args, **kwargs)

    redis.Redis.execute_command = counted_command  # type: ignore[method-assign]


def round_trips(counts: Counts) -> int:
    c = counts.c
    return c["statements"] + c["begin"] + c["commit"] + c["rollback"] + c["pings"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (EMPTIED first)")
    parser.add_argument("--redis-url", default=None, help="Redis URL for queue + limiter")
    parser.add_argument("--port", type=int, default=5142, help="fake QuickBooks port")
    parser.add_argument("--approvals", type=int, default=30, help="approvals to average over")
    parser.add_argument("--profile", default=None, help="write a cProfile of the averaged run")
    args = parser.parse_args()

    import bench_throughput as bt

    tmp = Path(tempfile.mkdtemp(prefix="bench-approval-"))
    database_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    queue_url = args.redis_url or f"sqlite:///{tmp / 'queue.db'}"
    os.environ.update(
        {
            "APP_ENV": "development",
            "DATABASE_URL": database_url,
            "QUEUE_URL": queue_url,
            "INSTANCE_PATH": str(tmp),
            "QUICKBOOKS_CLIENT_ID": "bench",
            "QUICKBOOKS_CLIENT_SECRET": "bench",
            "QUICKBOOKS_API_BASE_URL": f"http://127.0.0.1:{args.port}",
            "LOG_LEVEL": "WARNING",
            "WORKER_IMMEDIATE": "false",
        }
    )
    if args.redis_url:
        import redis

        os.environ["REDIS_URL"] = args.redis_url
        redis.Redis.from_url(args.redis_url).flushdb()
    else:
        os.environ.pop("REDIS_URL", None)

    from sqlalchemy import text

    from connector import create_app, db, migrate, worker
    from connector.books import books_key
    from connector.connections.store import DbCredentialStore, secret_box
    from connector.models import CustomerMapping
    from connector.workspaces import create_workspace
    from tests.app_fixtures import signed_headers
    from tests.helpers import event

    fake = bt.FakeQuickBooks(args.port, 0.0)
    fake.start()
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "QUEUE_URL": queue_url,
            "REDIS_URL": args.redis_url,
            "WORKER_IMMEDIATE": False,
            "LOG_LEVEL": "WARNING",
        }
    )
    client = app.test_client()
    endpoints: list[tuple[str, str, str]] = []  # tracker workspace id, webhook path, secret
    with app.app_context():
        if db.engine().dialect.name == "postgresql":
            with db.engine().begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        migrate.upgrade()
        for n in range(COMPANIES):
            with db.session_scope() as s:
                created = create_workspace(
                    s,
                    secret_box(app.config),
                    name=f"Bench company {n}",
                    tracker_workspace_id=f"80{n}",
                    auto_invoicing=True,
                )
                ws = created.workspace
                ws.provider = "quickbooks"
                ws_id = ws.id
                endpoints.append(
                    (f"80{n}", f"/webhooks/webwork/{ws.endpoint_token}", created.signing_secret)
                )
                for client_id, (customer_id, name) in bt.CUSTOMERS.items():
                    s.add(
                        CustomerMapping(
                            workspace_id=ws_id,
                            # the company connected below: mappings belong to its books
                            books=books_key("quickbooks", f"realm-approval-{n}", "sandbox"),
                            kind="client",
                            tracker_id=client_id,
                            customer_id=customer_id,
                            customer_name=name,
                            customer_currency="USD",
                        )
                    )
            DbCredentialStore(ws_id, "quickbooks", secret_box(app.config)).connect(
                {"access_token": "a", "refresh_token": "r", "expires_at": time.time() + 86400},
                account_id=f"realm-approval-{n}",
                environment="sandbox",
            )
        db.session.remove()

    current = [Counts()]
    with app.app_context():
        install_hooks(current)
    base = event("timesheet_approved__three_customers")
    sent = Counter[int]()

    def post(n: int) -> None:
        tracker_id, path, secret = endpoints[n % COMPANIES]
        doc = copy.deepcopy(base)
        doc["data"]["workspace_id"] = tracker_id
        doc["data"]["timesheet"]["id"] = f"ts_approval_{n:05d}"
        body = json.dumps(doc).encode()
        with app.app_context():
            res = client.post(path, data=body, headers=signed_headers(secret, body))
            assert res.status_code == 202, res.get_data(as_text=True)
        sent[n % COMPANIES] += 1

    def drain() -> int:
        ran = 0
        with app.app_context():
            while worker.run_next() != "idle":
                ran += 1
        return ran

    def qbo_requests() -> Counter[str]:
        total: Counter[str] = Counter()
        for n in range(COMPANIES):
            total.update(fake.company(f"realm-approval-{n}").kinds)
        return total

    # Warm-up: each company's customers, service item and tax settings read once.
    for n in range(COMPANIES):
        post(n)
    drain()

    print(f"database: {db.engine().dialect.name}; queue and limiter: {queue_url.split(':')[0]}")
    current[0] = Counts()
    post(COMPANIES)
    receiving = current[0]
    current[0] = Counts()
    before = qbo_requests()
    began = time.perf_counter()
    drain()
    one = current[0]
    print_counts("receiving one approval (the webhook request)", receiving, 1, None)
    print_counts(
        f"the worker, one approval -> 3 drafts ({time.perf_counter() - began:.3f} s)",
        one,
        1,
        qbo_requests() - before,
    )

    for i in range(args.approvals):
        post(100 + i)
    current[0] = Counts()
    before = qbo_requests()
    profile = cProfile.Profile() if args.profile else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    drain()
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.profile)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    drafts = 3 * args.approvals
    print_counts(
        f"the worker, {args.approvals} approvals, per approval",
        current[0],
        args.approvals,
        qbo_requests() - before,
    )
    print(
        f"  per draft: {1000 * cpu / drafts:.1f} ms CPU in this process (worker + fake "
        f"QuickBooks{', profiled' if profile else ''}), {1000 * wall / drafts:.1f} ms wall"
    )
    fake.stop()


def print_counts(label: str, counts: Counts, n: int, requests: Counter[str] | None) -> None:
    def per(value: float) -> str:
        return f"{value / n:g}" if n == 1 else f"{value / n:.1f}"

    c = counts.c
    print(f"\n{label}:")
    print(f"  round trips to the database: {per(round_trips(counts))}")
    print("  " + ", ".join(f"{key} {per(value)}" for key, value in sorted(c.items())))
    print(
        "  statements: "
        + ", ".join(f"{key} {per(value)}" for key, value in counts.statements.most_common())
    )
    if counts.redis:
        print("  redis: " + ", ".join(f"{k} {per(v)}" for k, v in sorted(counts.redis.items())))
    if requests:
        print("  QuickBooks: " + ", ".join(f"{k} {per(v)}" for k, v in sorted(requests.items())))


if __name__ == "__main__":
    main()
