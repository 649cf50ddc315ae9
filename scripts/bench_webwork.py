"""Benchmark: 2,000 approved WebWork timesheets backfilled and drafted by the real worker.

Not a test: it prints figures. A fake WebWork (the test suite's stateful fake, served over HTTP
on 127.0.0.1 by this process) holds N approved timesheets, one member-week each, all on a
project whose client is mapped to a customer of the built-in ledger. The run:

  1. connects the workspace with a personal access token (one ``GET /workspaces``);
  2. backfills in this process (``webhooks.webwork.backfill``, what ``tracker backfill`` runs):
     the catalog (projects, viewers, contracts) once, then every page of
     ``GET /timesheets?status=approved``, through the real client and the real shared limiter
     (database, or Redis with ``--redis-url``; WebWork's 60/min per user, real clock);
  3. the real worker (``huey_consumer connector.consumer.huey``, ``--threads`` threads) drafts
     each recorded approval on the built-in ledger, from the rows the list page carried.

Printed: WebWork requests by kind (the goal: pages + catalog, none per approval), the listing
time, the time until every draft exists, drafts per minute, and the machine's load average
(the machine may be shared: say so with the figures). Goal: all drafted within 3 minutes.

    .venv/bin/python scripts/bench_webwork.py [--timesheets 2000] [--threads 4]
    .venv/bin/python scripts/bench_webwork.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1/bench --redis-url redis://127.0.0.1:6379/5

A PostgreSQL database given with ``--database-url`` is EMPTIED first (schema dropped); the Redis
db given with ``--redis-url`` is flushed. The run stops by itself (``--timeout``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SINCE = date(2025, 1, 1)  # the timesheets are older than the poll window: only a backfill sees them


def fake_webwork(timesheets: int, page_size: int):  # type: ignore[no-untyped-def]
    from webhooks.webwork.tests.fake import FakeWebWork

    fake = FakeWebWork(page_cap=page_size)
    fake.projects = [{"id": 101, "name": "Website", "is_billable": True, "rate": None}]
    fake.viewers = [fake.viewer(1, 9001, "Globex Corporation", "ap@globex.example", project_id=101)]
    fake.contracts = [
        {"id": 5000 + m, "user_id": 77 + m, "project_id": 101, "rate": "100.00", "currency": "USD"}
        for m in range(40)
    ]
    for i in range(timesheets):
        member = i % 40
        day = date.fromordinal(SINCE.toordinal() + (i // 40) % 300).isoformat()
        fake.add_timesheet(
            f"ts+{i:05d}/=",
            (77 + member, f"Member{member} Bench"),
            day,
            day,
            {day: [(101, "Website", 5000 + member, 60 + i % 300)]},
        )
    return fake


def prepare_database(app, database_url: str) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from connector import db
    from connector import migrate as migrations

    with app.app_context():
        if database_url.startswith("postgresql"):
            with db.engine().begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        migrations.upgrade()


def start_worker(env: dict[str, str], threads: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "huey.bin.huey_consumer",
            "connector.consumer.huey",
            "-w",
            str(threads),
            "-k",
            "thread",
            "-q",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


def setup(args: argparse.Namespace, tmp: Path):  # type: ignore[no-untyped-def]
    """The fake WebWork served, the database migrated, a workspace mapped and connected.

    Returns (app, workspace id, fake, server, the worker's environment)."""
    from connector import create_app, db
    from connector.connections.store import secret_box
    from connector.workspaces import create_workspace
    from tests.helpers import map_clients_locally
    from webhooks.webwork.connection import connect_with_token
    from webhooks.webwork.polls import cancel_polls
    from webhooks.webwork.tests.fake import serve, served_api

    database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
    fake = fake_webwork(args.timesheets, args.page_size)
    server = serve(fake, port=args.port)
    config = {
        "DATABASE_URL": database_url,
        "QUEUE_URL": args.redis_url or f"sqlite:///{tmp}/queue.db",
        "WORKER_IMMEDIATE": "false",
        "WEBWORK_API_BASE_URL": served_api(server),
        "WEBWORK_POLL_SECONDS": "0",  # only the backfill polls: its requests are the ones counted
        "LOG_LEVEL": "WARNING",
        "INSTANCE_PATH": str(tmp),
    }
    if args.redis_url:
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
        config["REDIS_URL"] = args.redis_url
    env = {**os.environ, **config, "PYTHONPATH": str(ROOT)}
    if not args.redis_url:
        env.pop("REDIS_URL", None)
    os.environ.update(config)
    app = create_app({**config, "WORKER_IMMEDIATE": False, "WEBWORK_POLL_SECONDS": 0})
    prepare_database(app, database_url)
    with app.app_context():
        with db.session_scope() as s:
            ws = create_workspace(
                s,
                secret_box(app.config),
                name="Bench",
                tracker_workspace_id="4242",
                auto_invoicing=True,
            ).workspace
            ws_id = ws.id
        map_clients_locally(ws_id, {"9001": ("Globex Corporation", "ap@globex.example")})
        connect_with_token(ws_id, "4242", fake.add_token("501"), connected_by="bench")
        cancel_polls(ws_id)  # the connect's first poll: not part of the measurement
    return app, ws_id, fake, server, env


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import func, select

    from connector import db
    from connector.models import Draft, DraftStatus
    from webhooks.webwork.backfill import backfill, drafting

    tmp = Path(tempfile.mkdtemp(prefix="bench-webwork-"))
    app, ws_id, fake, server, env = setup(args, tmp)
    worker = start_worker(env, args.threads, tmp / "worker.log")
    time.sleep(2.0)  # the consumer starts its job poller
    load_before = os.getloadavg()
    calls_before = len(fake.calls)
    started = time.perf_counter()
    try:
        with app.app_context():
            report = backfill(ws_id, SINCE)
            listed = time.perf_counter() - started
            deadline = time.monotonic() + args.timeout
            while True:
                state = drafting(ws_id, report.poll.delivery_ids)
                if state.done or time.monotonic() > deadline:
                    break
                if worker.poll() is not None:
                    raise RuntimeError(f"the worker exited; see {tmp}/worker.log")
                print(
                    f"  t={time.perf_counter() - started:5.0f}s drafted {state.drafted}"
                    f"/{state.approvals}",
                    flush=True,
                )
                time.sleep(2.0)
            drafted_in = time.perf_counter() - started
            with db.new_session() as s:
                drafted = select(func.count(Draft.id)).where(Draft.status == DraftStatus.DRAFTED)
                drafts = int(s.scalar(drafted) or 0)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        server.shutdown()
    kinds = Counter(
        "timesheets (one by id)" if path == "timesheets" and "id" in query else path
        for (_, path, query) in fake.calls[calls_before:]
    )
    return {
        "found": report.poll.approved,
        "recorded": len(report.poll.delivery_ids),
        "pages": report.poll.pages,
        "requests": sum(kinds.values()),
        "per_approval_reads": kinds.get("timesheets (one by id)", 0),
        "kinds": dict(kinds),
        "listed_s": listed,
        "drafted_s": drafted_in,
        "drafts": drafts,
        "finished": state.finished,
        "per_minute": drafts / drafted_in * 60 if drafted_in else 0.0,
        "load_before": load_before[0],
        "load_after": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesheets", type=int, default=2000)
    parser.add_argument("--page-size", type=int, default=100, help="WebWork's maximum is 100")
    parser.add_argument("--threads", type=int, default=4, help="worker threads (huey --workers)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL"))
    parser.add_argument("--port", type=int, default=5191, help="the fake WebWork's port")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for drafts")
    args = parser.parse_args()
    backend = "PostgreSQL + Redis" if args.database_url else "SQLite"
    print(
        f"Backfilling {args.timesheets} approved WebWork timesheets ({args.page_size} per page) "
        f"and drafting them on the built-in ledger; {backend}; worker: {args.threads} thread(s); "
        f"{os.cpu_count()} CPU(s)"
    )
    r = run(args)
    print(
        f"  WebWork requests: {r['requests']} = {r['kinds']}; {r['pages']} page(s); "
        f"reads per approval: {r['per_approval_reads']}"
    )
    print(
        f"  {r['found']} approved found, {r['recorded']} recorded in {r['listed_s']:.1f} s; "
        f"{r['drafts']} drafts created, {r['finished']} approvals finished, all within "
        f"{r['drafted_s']:.1f} s -> {r['per_minute']:.0f} drafts/minute"
    )
    print(f"  load average (1 min): {r['load_before']:.2f} before, {r['load_after']:.2f} after")
    goal = r["drafts"] >= args.timesheets and r["drafted_s"] <= 180 and not r["per_approval_reads"]
    print(
        "goal (every approval drafted within 3 minutes, no read per approval):",
        "met" if goal else "NOT met",
    )


if __name__ == "__main__":
    main()
