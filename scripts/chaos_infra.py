"""Infrastructure chaos: the database and the queue restart, and a web process is SIGKILLed
mid-request, while approvals keep arriving over HTTP.

Starts its OWN PostgreSQL (initdb into a temporary directory, pg_ctl on --pg-port) and Redis
(redis-server on --redis-port, no persistence: a restart loses every queued message, the harsh
case), then the real processes: gunicorn with the Procfile's web settings and a huey consumer
(``connector.consumer.huey``). A sender posts signed approvals the way a webhook sender does:
each one is retried with the same webhook-id until it gets a 2xx. Meanwhile:

1. PostgreSQL is stopped (``pg_ctl stop -m immediate``: connections die mid-transaction) for
   --down seconds and started again;
2. Redis is SIGKILLed for --down seconds and started again (empty);
3. one gunicorn worker process is SIGKILLed while requests are in flight.

Not a test: it prints figures. It checks that every approval answered 202 ends billed (one draft
per customer, each once in the books), that nothing is duplicated, that web and worker recover
without being restarted (the same consumer and gunicorn master keep running), and that
``/readyz`` answers 503 while a dependency is down and 200 after. For each restart it prints the
seconds from the dependency being back to ``/readyz`` 200 and to the next approval billed.

    .venv/bin/python scripts/chaos_infra.py [--approvals 240] [--rate 8] [--down 4]
        [--pg-port 5201] [--redis-port 5202] [--web-port 5203]

Needs PostgreSQL's server binaries (initdb, pg_ctl; run as root it uses the ``postgres`` user)
and redis-server. Ports default to helper i20's range.
"""

from __future__ import annotations

import argparse
import copy
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CUSTOMERS_PER_APPROVAL = 3  # the three_customers example
SLOW_REQUESTS = 8  # approvals half-sent when a web worker is killed


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    sys.exit(f"{name} not found: install PostgreSQL's server binaries")


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Postgres:
    def __init__(self, root: Path, port: int):
        self.data, self.port = root / "pgdata", port
        self.sockets = root / "pgsock"

    def init(self) -> None:
        self.sockets.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.data.parent, "postgres")
            shutil.chown(self.sockets, "postgres")
        subprocess.run(
            _as_postgres(
                [_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_postgres(
                [_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-l",
                 str(self.data.parent / "postgres.log"), "start"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/chaos"


class Redis:
    def __init__(self, root: Path, port: int):
        self.root, self.port = root, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=(self.root / "redis.log").open("ab"),
            start_new_session=True,
        )  # fmt: skip
        _wait_for_port(self.port)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _wait_for_port(port: int, timeout: float = 30) -> None:
    import socket

    until = time.monotonic() + timeout
    while time.monotonic() < until:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


@dataclass
class Sender:
    """Posts approvals like a webhook sender: same webhook-id on every retry, until a 2xx."""

    url: str
    secret: str
    bodies: list[bytes]
    rate: float
    accepted: dict[int, float] = field(default_factory=dict)  # index -> when it got its 2xx
    answered_202: set[int] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    stop: bool = False

    ids: dict[int, str] = field(default_factory=dict)
    odd: list[tuple[float, str]] = field(default_factory=list)  # (when, answer) other than 202

    def __post_init__(self) -> None:
        self.ids = {i: f"msg_{uuid.uuid4().hex}" for i in range(len(self.bodies))}

    def headers(self, index: int) -> dict[str, str]:
        from tests.app_fixtures import signed_headers

        return signed_headers(self.secret, self.bodies[index], msg_id=self.ids[index])

    def post(self, index: int) -> int | str:
        """One delivery attempt; records a 2xx."""
        request = urllib.request.Request(
            self.url, data=self.bodies[index], headers=self.headers(index)
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                status: int | str = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError as exc:  # reset, refused, timed out: the sender retries
            status = type(exc).__name__
        self.statuses[str(status)] += 1
        if status not in (202,):
            self.odd.append((time.time(), str(status)))
        if status in (200, 202):
            self.accepted[index] = time.time()
            if status == 202:
                self.answered_202.add(index)
        return status

    def run(self, count: int) -> None:
        """Send approvals 0..count-1, each until a 2xx; later ones are sent by slow_posts."""
        pending = list(range(count))
        next_new = 0
        retry: list[int] = []
        while (next_new < len(pending) or retry) and not self.stop:
            if retry and (next_new >= len(pending) or len(retry) > 3):
                index = retry.pop(0)
            else:
                index, next_new = pending[next_new], next_new + 1
            if self.post(index) not in (200, 202):
                retry.append(index)
            time.sleep(1 / self.rate)

    def slow_posts(self, indices: list[int], port: int, kill: Callable[[], None]) -> int:
        """Half-send each of these approvals (the web workers sit reading their bodies), call
        ``kill``, then finish them; those the kill cut off are retried. Returns how many were
        cut off mid-request."""
        conns = []
        for index in indices:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
            body = self.bodies[index]
            conn.putrequest("POST", urllib.parse.urlsplit(self.url).path)
            for name, value in {**self.headers(index), "Content-Length": str(len(body))}.items():
                conn.putheader(name, value)
            conn.endheaders(body[: len(body) // 2])
            conns.append((index, conn))
        time.sleep(0.5)  # the workers are inside the app now, reading the rest of each body
        kill()
        cut_off = 0
        for index, conn in conns:
            body = self.bodies[index]
            try:
                conn.send(body[len(body) // 2 :])
                response = conn.getresponse()
                status: int | str = response.status
                response.read()
            except OSError as exc:
                status = type(exc).__name__
            finally:
                conn.close()
            self.statuses[str(status)] += 1
            if status in (200, 202):
                self.accepted[index] = time.time()
                self.answered_202.update({index} if status == 202 else set())
                continue
            cut_off += 1
            while self.post(index) not in (200, 202):
                time.sleep(0.5)
        return cut_off


@dataclass
class ReadyProbe:
    url: str
    samples: list[tuple[float, int]] = field(default_factory=list)
    stop: bool = False

    def run(self) -> None:
        while not self.stop:
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = 0
            self.samples.append((time.time(), status))
            time.sleep(0.2)

    def seen_between(self, start: float, end: float) -> set[int]:
        return {status for at, status in self.samples if start <= at <= end}

    def first_ok_after(self, moment: float) -> float | None:
        return next((at for at, status in self.samples if at >= moment and status == 200), None)


def _processes(env: dict[str, str], root: Path, web_port: int) -> tuple[subprocess.Popen, ...]:
    log = (root / "processes.log").open("ab")
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "python:connector.gunicorn_conf",
         "--bind", f"127.0.0.1:{web_port}", "--workers", "2", "--threads", "4",
         "--graceful-timeout", "5", "connector:create_app()"],
        cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True,
    )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "huey.bin.huey_consumer", "connector.consumer.huey",
         "--workers", "2", "--worker-type", "thread", "--max-delay", "1", "-g", "TERM"],
        cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True,
    )  # fmt: skip
    _wait_for_port(web_port)
    return web, worker


def _gunicorn_workers(master_pid: int) -> list[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [int(pid) for pid in children]


def _billed_keys(app: object) -> tuple[Counter[str], set[str]]:
    """Invoices in the books per draft key, and the timesheet ids with every draft drafted."""
    from sqlalchemy import select

    from connector import db
    from connector.models import Draft, LocalInvoice, Timesheet

    with app.app_context():  # type: ignore[attr-defined]
        per_key = Counter(db.session.scalars(select(LocalInvoice.key)))
        rows = db.session.execute(
            select(Timesheet.timesheet_id, Draft.status).join(
                Draft, Draft.timesheet_pk == Timesheet.id
            )
        ).all()
        db.session.remove()
    drafted = Counter(ts for ts, status in rows if status == "drafted")
    complete = {ts for ts, n in drafted.items() if n == CUSTOMERS_PER_APPROVAL}
    return per_key, complete


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--approvals", type=int, default=240)
    parser.add_argument("--rate", type=float, default=8.0, help="approvals sent per second")
    parser.add_argument("--down", type=float, default=4.0, help="seconds each dependency is down")
    parser.add_argument("--pg-port", type=int, default=5201)
    parser.add_argument("--redis-port", type=int, default=5202)
    parser.add_argument("--web-port", type=int, default=5203)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="chaos-infra-"))
    postgres, redis = Postgres(root, args.pg_port), Redis(root, args.redis_port)
    postgres.init()
    postgres.start()
    redis.start()
    subprocess.run(
        _as_postgres([_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(args.pg_port), "-U",
                      "postgres", "-qc", "CREATE DATABASE chaos"]),
        check=True,
    )  # fmt: skip
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": postgres.url,
        "QUEUE_URL": redis.url,
        "REDIS_URL": redis.url,
        "INSTANCE_PATH": str(root),
        "JOB_RETRY_BASE_SECONDS": "0.5",
        "JOB_RETRY_MAX_SECONDS": "4",
        "JOB_MAX_ATTEMPTS": "1000",
        "LOG_LEVEL": "WARNING",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{args.web_port}",
    }
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "QUEUE_URL", "REDIS_URL", "APP_ENV")})
    os.environ.update(INSTANCE_PATH=str(root), LOG_LEVEL="WARNING")
    from connector import create_app, db, migrate
    from connector.connections.store import secret_box
    from connector.workspaces import create_workspace
    from tests.helpers import event, map_clients_locally

    app = create_app({"WORKER_IMMEDIATE": False})
    with app.app_context():
        migrate.upgrade()
        with db.session_scope() as s:
            created = create_workspace(
                s, secret_box(app.config), name="Chaos", tracker_workspace_id="4242",
                auto_invoicing=True,
            )  # fmt: skip
            token, secret = created.workspace.endpoint_token, created.signing_secret
        map_clients_locally(created.workspace.id)
    base = event("timesheet_approved__three_customers")
    bodies = []
    slow = list(range(args.approvals, args.approvals + SLOW_REQUESTS))
    for i in range(args.approvals + SLOW_REQUESTS):
        doc = copy.deepcopy(base)
        doc["data"]["timesheet"]["id"] = f"ts_infra_{i:04d}"
        bodies.append(json.dumps(doc).encode())

    web, worker = _processes(env, root, args.web_port)
    base_url = f"http://127.0.0.1:{args.web_port}"
    sender = Sender(f"{base_url}/webhooks/webwork/{token}", secret, bodies, args.rate)
    probe = ReadyProbe(f"{base_url}/readyz")
    threads = [
        threading.Thread(target=sender.run, args=(args.approvals,), daemon=True),
        threading.Thread(target=probe.run, daemon=True),
    ]
    for thread in threads:
        thread.start()
    outages: list[tuple[str, float, float]] = []  # (what, went down, back up)
    started = time.time()
    try:
        time.sleep(3)
        down = time.time()
        postgres.stop()
        time.sleep(args.down)
        postgres.start()
        outages.append(("PostgreSQL", down, time.time()))
        print(f"PostgreSQL restarted ({args.down:g} s down)", flush=True)
        time.sleep(6)
        down = time.time()
        redis.kill()
        time.sleep(args.down)
        redis.start()
        outages.append(("Redis", down, time.time()))
        print(f"Redis restarted ({args.down:g} s down, queue emptied)", flush=True)
        time.sleep(4)
        victim = _gunicorn_workers(web.pid)[0]
        killed_at = time.time()
        cut_off = sender.slow_posts(slow, args.web_port, lambda: os.kill(victim, signal.SIGKILL))
        print(
            f"gunicorn worker {victim} SIGKILLed with {len(slow)} requests half-sent "
            f"({cut_off} cut off, then re-sent)",
            flush=True,
        )
        while len(sender.accepted) < len(bodies) and time.time() - started < args.timeout:
            time.sleep(0.5)
        sender.stop = True
        wanted = {f"ts_infra_{i:04d}" for i in sender.accepted}
        while time.time() - started < args.timeout:
            per_key, complete = _billed_keys(app)
            if wanted <= complete:
                break
            time.sleep(1)
        finished = time.time()
        web_alive, worker_alive = web.poll() is None, worker.poll() is None
    finally:
        sender.stop = probe.stop = True
        for proc in (web, worker):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        redis.kill()

    per_key, complete = _billed_keys(app)
    postgres.stop()
    got_202 = {f"ts_infra_{i:04d}" for i in sender.answered_202}
    accepted = {f"ts_infra_{i:04d}" for i in sender.accepted}
    lost = len(accepted - complete)
    lost_202 = len(got_202 - complete)
    duplicated = sum(n - 1 for n in per_key.values() if n > 1)
    print(
        f"\nload: {args.approvals} approvals x {CUSTOMERS_PER_APPROVAL} customers at "
        f"{args.rate:g}/s; web 2 gunicorn workers x 4 threads, worker 1 consumer x 2 threads"
    )
    print(f"sender saw: {dict(sender.statuses)}")
    ok = lost == 0 and duplicated == 0 and web_alive and worker_alive
    for what, went_down, back in outages:
        statuses = probe.seen_between(went_down + 0.5, back - 0.5)
        ready_at = probe.first_ok_after(back)
        billed_after = min((t for t in sender.accepted.values() if t >= back), default=None)
        recover = f"{ready_at - back:.1f} s" if ready_at else "never"
        first = f"{billed_after - back:.1f} s" if billed_after else "none"
        print(
            f"{what}: down {back - went_down:.1f} s; /readyz while down {sorted(statuses)}; "
            f"/readyz 200 again {recover} after restart; next approval accepted {first} after"
        )
        ok = ok and 503 in statuses and 200 not in statuses and ready_at is not None
    after_kill = sum(t > killed_at for t in sender.accepted.values())
    print(
        f"gunicorn worker SIGKILL: {cut_off} of {len(slow)} half-sent requests cut off and "
        f"re-sent; approvals accepted after it {after_kill}"
    )
    print(
        f"accepted {len(accepted)} (202: {len(got_202)}), billed {len(complete)}, "
        f"lost {lost} (of the 202s: {lost_202}), duplicated {duplicated}; invoices "
        f"{sum(per_key.values())}; web master alive {web_alive}, consumer alive {worker_alive}; "
        f"all billed {finished - started:.0f} s after the start"
    )
    print("RESULT:", "nothing lost, nothing duplicated" if ok else "FAILED")
    shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
