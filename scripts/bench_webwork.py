"""Benchmark: backfilling 2,000 approved WebWork timesheets against the 60 requests/min limit.

Not a test: it prints figures. The backfill runs in this process (the "worker") through the real
client, the real shared limiter (the database one, or Redis with --redis-url) and the real
poller, against the stateful fake WebWork of the test suite (mocked at the wire with
``responses``). The limiter runs on a FAKE CLOCK: its waits advance the clock instead of
sleeping, so a run that would take minutes of wall time takes seconds; every figure below is
in simulated time. Deliveries and jobs are really written; the jobs are not run (that is the
worker's billing, measured by scripts/bench_billing.py).

Targets: no sliding minute over 60 requests per WebWork user; at least 90% of that budget used
(>= 54 requests/min over the run).

    .venv/bin/python scripts/bench_webwork.py [--timesheets 2000] [--page-size 100 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(timesheets: int, page_size: int, redis_url: str | None) -> dict[str, float]:
    import responses

    from connector import create_app, db, ratelimit, ratelimit_db
    from connector import migrate as migrations
    from connector.connections.store import secret_box
    from connector.workspaces import create_workspace
    from webhooks.webwork import client as client_module
    from webhooks.webwork.backfill import backfill
    from webhooks.webwork.connection import connect_with_token
    from webhooks.webwork.tests.fake import API, TOKEN, FakeWebWork

    tmp = tempfile.mkdtemp(prefix="bench-webwork-")
    url = f"sqlite:///{tmp}/bench.db"
    app = create_app(
        {
            "DATABASE_URL": url,
            "QUEUE_URL": "memory://",
            "WORKER_IMMEDIATE": False,
            "WEBWORK_API_BASE_URL": API,
            "WEBWORK_TOKEN_URL": TOKEN,
            "WEBWORK_POLL_SECONDS": 0,
            "LOG_LEVEL": "WARNING",
        }
    )
    clock = [1_800_000_000.0]

    def advance(seconds: float) -> None:
        clock[0] += seconds

    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        limiter: object = ratelimit.RedisRateLimiter(
            redis_url, clock=lambda: clock[0], sleep=advance
        )
    else:
        limiter = ratelimit_db.DatabaseRateLimiter(clock=lambda: clock[0], sleep=advance)
    ratelimit.shared_limiter = lambda: limiter  # type: ignore[assignment]
    client_module.default_sleep = advance  # a Retry-After would advance the fake clock too

    fake = FakeWebWork(page_cap=page_size)
    fake.projects = [{"id": 101, "name": "Website", "is_billable": True}]
    fake.viewers = [{"id": 1, "user_id": 9001, "name": "Globex", "project_id": 101}]
    fake.contracts = [{"id": 5001, "user_id": 77, "project_id": 101, "rate": "100.00"}]
    for i in range(timesheets):
        day = f"2026-{1 + (i // 200) % 12:02d}-{1 + i % 28:02d}"
        fake.add_timesheet(
            f"ts+{i:05d}/=",
            (77 + i % 40, f"Member {i % 40}"),
            day,
            day,
            {day: [(101, "Website", 5001, 60 + i % 300)]},
        )
    stamps: list[float] = []
    fake.on_call = lambda path, query: stamps.append(clock[0])

    with app.app_context(), responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        migrations.upgrade()
        fake.register(rsps)
        token = fake.add_token("501")
        with db.session_scope() as s:
            ws = create_workspace(
                s,
                secret_box(app.config),
                name="Bench",
                tracker_workspace_id="4242",
                auto_invoicing=True,
            ).workspace
            ws_id = ws.id
        connect_with_token(ws_id, "4242", token, connected_by="bench")
        wall = time.perf_counter()
        report = backfill(ws_id, since=__import__("datetime").date(2025, 12, 1))
        wall = time.perf_counter() - wall

    span = stamps[-1] - stamps[0]
    worst = 0
    j = 0
    for i, t in enumerate(stamps):  # the busiest sliding minute
        while stamps[j] <= t - 60:
            j += 1
        worst = max(worst, i - j + 1)
    return {
        "requests": len(stamps),
        "pages": report.poll.pages,
        "found": report.poll.timesheets,
        "new": report.poll.new_approvals,
        "simulated_s": span,
        "per_minute": (len(stamps) - 1) / span * 60 if span else float("inf"),
        "worst_minute": worst,
        "wall_s": wall,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesheets", type=int, default=2000)
    parser.add_argument(
        "--page-size",
        type=int,
        nargs="+",
        default=[100, 20],
        help="timesheets per page the fake serves (WebWork's max is 100; 20 is its default)",
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL"))
    args = parser.parse_args()
    print(
        f"Backfilling {args.timesheets} approved timesheets; limiter: "
        f"{'Redis' if args.redis_url else 'database'}; fake clock (figures are simulated time)"
    )
    ok = True
    for size in args.page_size:
        r = run(args.timesheets, size, args.redis_url)
        ok &= r["worst_minute"] <= 60 and r["per_minute"] >= 54
        print(
            f"  page size {size:>3}: {r['found']:.0f} found, {r['new']:.0f} delivered, "
            f"{r['pages']:.0f} pages, {r['requests']:.0f} requests in {r['simulated_s']:.0f} s "
            f"-> {r['per_minute']:.1f} requests/min ({r['per_minute'] / 60:.0%} of 60), "
            f"busiest minute {r['worst_minute']:.0f}; wall {r['wall_s']:.1f} s, "
            f"worker RSS {r['rss_mb']:.0f} MB"
        )
    print("targets (<= 60 in any minute, >= 90% of the budget):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
