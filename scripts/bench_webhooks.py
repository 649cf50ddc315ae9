"""Benchmark: signed deliveries against the gunicorn ``web`` process vs a bare Flask endpoint.

Not a test: it prints figures. Both servers run with the same gunicorn settings, on 127.0.0.1,
under the same load, in the same run:

  1. throughput: N concurrent keep-alive clients for a fixed time -> acks/s
  2. latency:    an open loop at a fixed rate (default 100 deliveries/s) -> p50 / p99
  3. loss check: every 202 has its delivery and job row in the database

Targets (2 cores): receiver >= 0.5x the bare endpoint's throughput, p99 < 50 ms at 100/s, 0 lost.

    .venv/bin/python scripts/bench_webhooks.py [--seconds 10] [--rate 100] [--clients 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BARE_APP = textwrap.dedent(
    """
    from flask import Flask
    app = Flask(__name__)

    @app.post("/webhooks/webwork/<token>")
    def receive(token):
        return {"status": "accepted"}, 202
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(
    app_spec: str, port: int, env: dict[str, str], cwd: Path, workers: int, threads: int
) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--log-level",
        "warning",
        app_spec,
    ]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{app_spec} did not start")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


class Target:
    def __init__(self, name: str, port: int, path: str, secret: str, body: bytes):
        self.name, self.port, self.path, self.secret, self.body = name, port, path, secret, body

    def headers(self) -> dict[str, str]:
        from webhooks.signing import sign

        msg_id = f"msg_{uuid.uuid4().hex}"
        ts = int(time.time())
        h = {"content-type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(ts)}
        # Both targets get signed requests, so the client does the same work for each.
        h["webhook-signature"] = sign(self.secret, msg_id, ts, self.body)
        return h


def send(conn: http.client.HTTPConnection, target: Target, headers: dict[str, str]) -> int:
    conn.request("POST", target.path, body=target.body, headers=headers)
    res = conn.getresponse()
    res.read()
    return res.status


def throughput(target: Target, clients: int, seconds: float) -> tuple[float, int, int]:
    """Closed loop: each client sends as fast as answers come back."""
    stop_at = time.monotonic() + seconds
    ok = [0] * clients
    bad = [0] * clients

    # Sign ahead: the client's own CPU must not throttle the servers' figures more than needed.
    def run(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=30)
        while time.monotonic() < stop_at:
            status = send(conn, target, target.headers())
            if status in (200, 202):
                ok[i] += 1
            else:
                bad[i] += 1
        conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return sum(ok) / elapsed, sum(ok), sum(bad)


def latency(target: Target, rate: float, seconds: float, pool: int = 16) -> tuple[list[float], int]:
    """Open loop: a request is due every 1/rate s whatever the server does."""
    total = int(rate * seconds)
    due = [time.monotonic() + 0.5 + i / rate for i in range(total)]
    signed = [target.headers() for _ in range(total)]
    # Re-sign just before sending would shift timestamps by < seconds: well inside tolerance.
    samples: list[float] = []
    failures = [0]
    lock = threading.Lock()
    index = [0]

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=30)
        while True:
            with lock:
                i = index[0]
                index[0] += 1
            if i >= total:
                break
            wait = due[i] - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            started = time.monotonic()
            status = send(conn, target, signed[i])
            # Latency from when it was due: a queueing client is the server's delay too.
            elapsed = (
                time.monotonic() - min(started, due[i])
                if wait < 0
                else (time.monotonic() - started)
            )
            with lock:
                samples.append(elapsed * 1000)
                if status not in (200, 202):
                    failures[0] += 1
        conn.close()

    threads = [threading.Thread(target=run) for _ in range(pool)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return samples, failures[0]


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": args.database_url or f"sqlite:///{tmp / 'bench.db'}",
        "QUEUE_URL": f"sqlite:///{tmp / 'queue.db'}",
        "INSTANCE_PATH": str(tmp),
        "PUBLIC_BASE_URL": "http://127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(
        {
            k: env[k]
            for k in ("DATABASE_URL", "QUEUE_URL", "INSTANCE_PATH", "PUBLIC_BASE_URL", "LOG_LEVEL")
        }
    )
    from connector import create_app, db, migrate
    from connector.connections.store import secret_box
    from connector.workspaces import create_workspace

    app = create_app()
    with app.app_context():
        migrate.upgrade()
        with db.session_scope() as s:
            created = create_workspace(
                s,
                secret_box(app.config),
                name="Bench",
                tracker_workspace_id="4242",
                auto_invoicing=True,
            )
            token, secret = created.workspace.endpoint_token, created.signing_secret
    body = (
        ROOT / "webhooks/webwork/fixtures/timesheet_approved__three_customers.json"
    ).read_bytes()
    body = json.dumps(json.loads(body)).encode()
    (tmp / "bare_app.py").write_text(BARE_APP)

    real_port, bare_port = free_port(), free_port()
    real = start_gunicorn(
        "connector:create_app()", real_port, env, ROOT, args.workers, args.threads
    )
    bare = start_gunicorn(
        "bare_app:app", bare_port, {**env, "PYTHONPATH": str(tmp)}, tmp, args.workers, args.threads
    )
    path = f"/webhooks/webwork/{token}"
    targets = [
        Target("receiver", real_port, path, secret, body),
        Target("bare flask", bare_port, path, secret, body),
    ]
    results = {}
    accepted = 0
    try:
        for target in targets:
            throughput(target, args.clients, 1.5)  # warm up
        for target in targets:
            rps, ok, bad = throughput(target, args.clients, args.seconds)
            samples, failures = latency(target, args.rate, args.seconds)
            results[target.name] = (rps, ok, bad, samples, failures)
            if target.name == "receiver":
                accepted = ok + len(samples) - failures
    finally:
        stop(real)
        stop(bare)

    from sqlalchemy import func, select

    from connector.models import Delivery, Job

    with app.app_context():
        deliveries = db.session.scalar(select(func.count()).select_from(Delivery))
        jobs = db.session.scalar(select(func.count()).select_from(Job))
    warmup_ok = deliveries - accepted  # warm-up deliveries are stored too

    print(
        f"\nsigned deliveries vs bare Flask, gunicorn --workers {args.workers} "
        f"--threads {args.threads}, {os.cpu_count()} cores, {args.clients} clients, "
        f"{args.seconds:g} s per phase, open loop at {args.rate:g}/s"
    )
    print(f"{'server':12} {'acks/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, (rps, _ok, bad, samples, failures) in results.items():
        print(
            f"{name:12} {rps:9.0f} {statistics.median(samples):8.1f} {pct(samples, 99):8.1f} "
            f"{bad + failures:7d}"
        )
    ratio = results["receiver"][0] / results["bare flask"][0]
    p99 = pct(results["receiver"][3], 99)
    print(f"\nthroughput ratio receiver / bare: {ratio:.2f} (target >= 0.50)")
    print(f"receiver p99 at {args.rate:g}/s: {p99:.1f} ms (target < 50 ms)")
    lost = accepted - (deliveries - max(warmup_ok, 0))
    print(
        f"acknowledged {accepted} (+{warmup_ok} warm-up), stored deliveries {deliveries}, "
        f"jobs {jobs}; lost: {max(0, lost)} (target 0)"
    )
    print(f"deliveries without a job: {deliveries - jobs}")


if __name__ == "__main__":
    main()
