"""Chaos run: many approvals through real workers, one of them SIGKILLed every few seconds, with a
provider that throttles, fails before committing, times out AFTER committing, and sometimes is
slow (30 s after committing: longer than a lease, so a slow job must keep its lease).

Not a test: it prints figures. At the end every approval must have exactly one invoice per
customer (none lost, none duplicated), every amount must match a clean run's, no draft may have
been created by two runs at once, and the time from the last kill to the last draft is reported
with the backlog left at that kill (a job orphaned by a kill must resume within one lease).

    .venv/bin/python scripts/chaos_worker.py [--approvals 150] [--kills 18] [--kill-every 3]
        [--workers 2] [--threads 2]

SQLite by default (in a temporary directory). For PostgreSQL + Redis set DATABASE_URL, QUEUE_URL
and REDIS_URL, and pass --reset-database: it empties that database and Redis db first.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HARNESS = '''
"""Consumer target for the chaos run: the real worker with a misbehaving local provider."""
import os, random, threading, time, uuid
from connector.providers.base import RetryLater
from connector.providers.local import LocalProvider
from connector.consumer import huey  # noqa: F401 - the consumer reads this attribute

_create = LocalProvider.create_draft
rng = random.Random()
CALLS = os.environ["CHAOS_CALLS_LOG"]


def _note(kind, run, key):
    # One line per event, appended atomically: lets the runner find two runs of one draft at once.
    line = f"{kind} {run} {os.getpid()} {time.time():.3f} {key}\\n"
    with open(CALLS, "a") as log:
        log.write(line)


def flaky_create(self, draft):
    run = uuid.uuid4().hex[:12]
    _note("S", run, draft.key)
    try:
        return _flaky_create(self, draft)
    finally:
        _note("E", run, draft.key)


def _flaky_create(self, draft):
    roll = rng.random()
    if roll < 0.15:
        raise RetryLater("429 Too Many Requests", retry_after=1)
    if roll < 0.25:
        raise RetryLater("503 before anything was written")
    created = _create(self, draft)  # the provider commits...
    roll = rng.random()
    if roll < 0.15:
        raise RetryLater("read timeout after the provider committed", outcome_unknown=True)
    if roll < 0.20:
        time.sleep(30)  # ...and the worker is slow (or killed here) before recording it
    return created


LocalProvider.create_draft = flaky_create
'''


def _overlapping_runs(calls_log: Path, kills: list[tuple[int, float]]) -> int:
    """Runs of create_draft for one key that were in progress at the same time.

    A run with no end line was killed: it ended when its process was.
    """
    starts: dict[str, tuple[str, int, float]] = {}
    ends: dict[str, float] = {}
    if calls_log.exists():
        for line in calls_log.read_text().splitlines():
            kind, run, pid, at, key = line.split(" ", 4)
            if kind == "S":
                starts[run] = (key, int(pid), float(at))
            else:
                ends[run] = float(at)
    intervals: dict[str, list[tuple[float, float]]] = {}
    for run, (key, pid, began) in starts.items():
        end = ends.get(run)
        if end is None:
            end = min((t for p, t in kills if p == pid and t >= began), default=float("inf"))
        intervals.setdefault(key, []).append((began, end))
    overlaps = 0
    for spans in intervals.values():
        spans.sort()
        latest_end = float("-inf")
        for began, ended in spans:
            if began < latest_end:
                overlaps += 1
            latest_end = max(latest_end, ended)
    return overlaps


def _reset(database_url: str, queue_url: str) -> None:
    from sqlalchemy import create_engine, text

    if database_url.startswith("postgres"):
        engine = create_engine(database_url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    for url in {queue_url, os.environ.get("REDIS_URL") or ""}:
        if url.startswith("redis"):
            import redis

            redis.Redis.from_url(url).flushdb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--approvals", type=int, default=150)
    parser.add_argument(
        "--kills", type=int, default=18, help="SIGKILLs before the workers are left alone"
    )
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2, help="consumer processes")
    parser.add_argument("--threads", type=int, default=2, help="worker threads per consumer")
    parser.add_argument(
        "--lease", type=float, default=None, help="JOB_LEASE_SECONDS (default: the service's)"
    )
    parser.add_argument("--timeout", type=float, default=600, help="give up after this long")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--reset-database", action="store_true", help="empty DATABASE_URL and Redis first"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)

    tmp = Path(tempfile.mkdtemp(prefix="chaos-"))
    (tmp / "chaos_harness.py").write_text(HARNESS)
    calls_log = tmp / "calls.log"
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{tmp / 'chaos.db'}"),
        "QUEUE_URL": os.environ.get("QUEUE_URL", f"sqlite:///{tmp / 'queue.db'}"),
        "INSTANCE_PATH": str(tmp),
        "JOB_RETRY_BASE_SECONDS": "0.5",
        "JOB_RETRY_MAX_SECONDS": "4",
        "JOB_MAX_ATTEMPTS": "1000",
        "LOG_LEVEL": "WARNING",
        "CHAOS_CALLS_LOG": str(calls_log),
        "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp}",
    }
    if args.lease is not None:
        env["JOB_LEASE_SECONDS"] = str(int(args.lease))
    if args.reset_database:
        _reset(env["DATABASE_URL"], env["QUEUE_URL"])
    os.environ.update(
        {k: env[k] for k in ("DATABASE_URL", "QUEUE_URL", "INSTANCE_PATH", "LOG_LEVEL") if k in env}
    )
    if "JOB_LEASE_SECONDS" in env:
        os.environ["JOB_LEASE_SECONDS"] = env["JOB_LEASE_SECONDS"]
    from sqlalchemy import func, select

    from connector import create_app, db, migrate
    from connector.connections.store import secret_box
    from connector.models import Draft, Job, LocalInvoice
    from connector.workspaces import create_workspace
    from tests.app_fixtures import signed_headers
    from tests.helpers import event, map_clients_locally

    app = create_app({"WORKER_IMMEDIATE": False})
    lease = float(app.config["JOB_LEASE_SECONDS"])
    client = app.test_client()
    with app.app_context():
        migrate.upgrade()
        with db.session_scope() as s:
            created = create_workspace(
                s,
                secret_box(app.config),
                name="Chaos",
                tracker_workspace_id="4242",
                auto_invoicing=True,
            )
            ws_id, path = (
                created.workspace.id,
                f"/webhooks/webwork/{created.workspace.endpoint_token}",
            )
            secret = created.signing_secret
        map_clients_locally(ws_id)
        base = event("timesheet_approved__three_customers")
        for i in range(args.approvals):
            doc = copy.deepcopy(base)
            doc["data"]["timesheet"]["id"] = f"ts_chaos_{i:04d}"
            body = json.dumps(doc).encode()
            headers = signed_headers(secret, body)
            for _ in range(1 + (i % 3 == 0)):  # every third approval is delivered twice
                client.post(path, data=body, headers=signed_headers(secret, body) if _ else headers)

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "huey.bin.huey_consumer",
                "chaos_harness.huey",
                "-w",
                str(args.threads),
                "-k",
                "thread",
                "-m",
                "0.5",
                "-q",
            ],
            cwd=tmp,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "consumers.log").open("ab"),
        )

    def job_states() -> Counter:
        with app.app_context():
            states = Counter(db.session.scalars(select(Job.state)))
            db.session.remove()
        return states

    # Jobs a kill left running: job id -> kill time; and when another worker took each over.
    orphaned: dict[int, float] = {}
    takeovers: dict[int, float] = {}

    def note_orphans(pid: int, killed_at: float) -> None:
        with app.app_context():
            for job_id in db.session.scalars(
                select(Job.id).where(Job.state == "running", Job.lease_owner.like(f"%:{pid}:%"))
            ):
                orphaned[job_id] = killed_at
                takeovers.pop(job_id, None)
            db.session.remove()

    def note_takeovers() -> None:
        waiting = [job_id for job_id in orphaned if job_id not in takeovers]
        if not waiting:
            return
        with app.app_context():
            for job in db.session.scalars(select(Job).where(Job.id.in_(waiting))):
                claimed = job.claimed_at.timestamp() if job.claimed_at else 0.0
                if claimed > orphaned[job.id]:
                    takeovers[job.id] = claimed
            db.session.remove()

    def wait(seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            note_takeovers()
            time.sleep(0.25)

    consumers = [start() for _ in range(args.workers)]
    kills: list[tuple[int, float]] = []  # (pid, wall-clock time)
    started = time.monotonic()
    done = False
    backlog_at_last_kill = 0
    try:
        while len(kills) < args.kills and time.monotonic() - started < args.timeout:
            wait(args.kill_every)
            victim = rng.randrange(len(consumers))
            os.killpg(consumers[victim].pid, signal.SIGKILL)
            kills.append((consumers[victim].pid, time.time()))
            consumers[victim].wait()
            note_orphans(*kills[-1])
            consumers[victim] = start()
            states = job_states()
            backlog_at_last_kill = sum(n for state, n in states.items() if state != "done")
            print(
                f"t={time.monotonic() - started:5.0f}s kills={len(kills):3d} jobs={dict(states)}",
                flush=True,
            )
        last_kill = kills[-1][1] if kills else time.time()
        killing_took = time.monotonic() - started
        print(
            f"-- no more kills; {backlog_at_last_kill} job(s) not done at the last kill", flush=True
        )
        while time.monotonic() - started < args.timeout:
            states = job_states()
            if set(states) <= {"done"}:
                done = True
                break
            wait(0.5)
        note_takeovers()
    finally:
        for proc in consumers:
            os.killpg(proc.pid, signal.SIGKILL)

    with app.app_context():
        invoices = list(db.session.scalars(select(LocalInvoice)))
        drafts = list(db.session.scalars(select(Draft)))
        per_key = Counter(inv.key for inv in invoices)
        totals = Counter(str(inv.total) for inv in invoices)
        jobs_left = db.session.scalar(
            select(func.count()).select_from(Job).where(Job.state != "done")
        )
        jobs_total = db.session.scalar(select(func.count()).select_from(Job))
    expected = args.approvals * 3
    duplicates = sum(n - 1 for n in per_key.values() if n > 1)
    drafted_rows = [d for d in drafts if d.status == "drafted"]
    drafted = len(drafted_rows)
    wrong = sum(n for total, n in totals.items() if total not in {"265.84", "856.58", "202.00"})
    overlaps = _overlapping_runs(calls_log, kills)
    last_draft = max((d.updated_at.timestamp() for d in drafted_rows), default=last_kill)
    recovery = last_draft - last_kill
    jobs_done_while_killing = max(1, (jobs_total or 0) - backlog_at_last_kill)
    backlog_seconds = backlog_at_last_kill * killing_took / jobs_done_while_killing
    print(
        f"\napprovals {args.approvals} (x3 customers = {expected} drafts expected), "
        f"consumers {args.workers} x {args.threads} threads, lease {lease:g} s, "
        f"SIGKILLs {len(kills)}, finished: {done}"
    )
    print(
        f"invoices {len(invoices)}, drafted rows {drafted}, duplicates {duplicates}, "
        f"lost {expected - len(per_key)}, wrong totals {wrong}, jobs not done {jobs_left}, "
        f"drafts created by two runs at once {overlaps}"
    )
    print(
        f"last kill -> last draft: {recovery:.1f} s; backlog at the last kill "
        f"{backlog_at_last_kill} job(s), ~{backlog_seconds:.1f} s of work at the rate seen "
        "while killing; "
        f"bound 60 s + backlog = {60 + backlog_seconds:.1f} s: "
        + ("within" if recovery <= 60 + backlog_seconds else "EXCEEDED")
    )
    ok = (
        done
        and duplicates == 0
        and len(per_key) == expected == drafted
        and wrong == 0
        and overlaps == 0
        and recovery <= 60 + backlog_seconds
        and len(takeovers) == len(orphaned)
        and all(takeovers[j] - orphaned[j] <= 60 for j in takeovers)
    )
    takeover_waits = [takeovers[j] - orphaned[j] for j in takeovers]
    print(
        f"jobs orphaned by the kills {len(orphaned)}, taken over {len(takeovers)}; from the kill "
        f"to the takeover: longest {max(takeover_waits, default=0):.1f} s, "
        f"median {sorted(takeover_waits)[len(takeover_waits) // 2] if takeover_waits else 0:.1f} s"
    )
    print("RESULT:", "exactly once, to the cent" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
