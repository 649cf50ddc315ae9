"""Chaos run: many approvals through real workers that are SIGKILLed every few seconds, with a
provider that throttles, fails before committing, and times out AFTER committing.

Not a test: it prints figures. At the end every approval must have exactly one invoice per
customer (none lost, none duplicated) and every amount must match a clean run's.

    .venv/bin/python scripts/chaos_worker.py [--approvals 60] [--kill-every 3] [--workers 2]
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
import os, random, time
from connector.providers.base import RetryLater
from connector.providers.local import LocalProvider
from connector.worker import huey  # noqa: F401

_create = LocalProvider.create_draft
rng = random.Random()


def flaky_create(self, draft):
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
        time.sleep(30)  # ...and the worker dies before recording it (killed here)
    return created


LocalProvider.create_draft = flaky_create
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--approvals", type=int, default=60)
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2, help="consumer processes")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    tmp = Path(tempfile.mkdtemp(prefix="chaos-"))
    (tmp / "chaos_harness.py").write_text(HARNESS)
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{tmp / 'chaos.db'}"),
        "QUEUE_URL": os.environ.get("QUEUE_URL", f"sqlite:///{tmp / 'queue.db'}"),
        "INSTANCE_PATH": str(tmp),
        "JOB_LEASE_SECONDS": "4",
        "JOB_RETRY_BASE_SECONDS": "0.5",
        "JOB_RETRY_MAX_SECONDS": "4",
        "JOB_MAX_ATTEMPTS": "1000",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp}",
    }
    os.environ.update(
        {
            k: env[k]
            for k in (
                "DATABASE_URL",
                "QUEUE_URL",
                "INSTANCE_PATH",
                "JOB_LEASE_SECONDS",
                "LOG_LEVEL",
            )
        }
    )
    from sqlalchemy import func, select

    from connector import create_app, db, migrate
    from connector.connections.store import secret_box
    from connector.models import Draft, Job, LocalInvoice
    from connector.workspaces import create_workspace
    from tests.conftest import signed_headers
    from tests.helpers import event, map_clients_locally

    app = create_app({"WORKER_IMMEDIATE": False})
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
                "2",
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

    consumers = [start() for _ in range(args.workers)]
    kills = 0
    started = time.monotonic()
    done = False
    try:
        while time.monotonic() - started < args.timeout:
            time.sleep(args.kill_every)
            victim = rng.randrange(len(consumers))
            os.killpg(consumers[victim].pid, signal.SIGKILL)
            consumers[victim].wait()
            kills += 1
            consumers[victim] = start()
            with app.app_context():
                states = Counter(db.session.scalars(select(Job.state)))
                db.session.remove()
            print(
                f"t={time.monotonic() - started:5.0f}s kills={kills:3d} jobs={dict(states)}",
                flush=True,
            )
            if set(states) <= {"done"}:
                done = True
                break
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
    expected = args.approvals * 3
    duplicates = sum(n - 1 for n in per_key.values() if n > 1)
    drafted = sum(1 for d in drafts if d.status == "drafted")
    wrong = sum(n for total, n in totals.items() if total not in {"265.84", "856.58", "202.00"})
    print(
        f"\napprovals {args.approvals} (x3 customers = {expected} drafts expected), "
        f"consumers {args.workers}, SIGKILLs {kills}, finished: {done}"
    )
    print(
        f"invoices {len(invoices)}, drafted rows {drafted}, duplicates {duplicates}, "
        f"lost {expected - len(per_key)}, wrong totals {wrong}, jobs not done {jobs_left}"
    )
    ok = done and duplicates == 0 and len(per_key) == expected == drafted and wrong == 0
    print("RESULT:", "exactly once, to the cent" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
