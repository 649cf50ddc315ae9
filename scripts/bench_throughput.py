"""Benchmark: drafts per minute against QuickBooks' speed limit, from approval to draft.

Not a test: it prints figures. A local fake QuickBooks Online (an HTTP server on 127.0.0.1 in
this process) answers every request after ``--latency`` seconds (150 ms) and enforces Intuit's
limits per company: 10 requests in any second and 500 in any minute, else 429. The real worker
(``huey_consumer connector.consumer.huey``, ``--threads`` worker threads) turns N signed approvals,
each with three customers, into 3N drafts. Reported per phase:

  * drafts/minute, and as a fraction of the 500/min/company bound (goal: >= 90 % for one company)
  * requests per draft (every request the fake received, 429s included, divided by drafts)
  * 429s received, approval-to-draft latency p50 / p95
  * duplicates (two invoices under one key: must be 0) and lost drafts (must be 0)

Phases: ``single`` (one company), ``multi`` (``--companies`` companies at once: aggregate rate).

    .venv/bin/python scripts/bench_throughput.py                      # SQLite, both phases
    .venv/bin/python scripts/bench_throughput.py --phase single --approvals 150
    .venv/bin/python scripts/bench_throughput.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1/bench --redis-url redis://127.0.0.1:6379/5

A PostgreSQL database given with ``--database-url`` is EMPTIED first (schema dropped); the Redis
db given with ``--redis-url`` is flushed. Every run stops by itself (``--timeout``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PER_MINUTE = 500
PER_SECOND = 10
LIMITS = {"per_second": PER_SECOND}  # --per-second changes what the fake enforces
CUSTOMERS = {  # tracker client -> QuickBooks customer id
    "cl-globex": ("1", "Globex Corporation"),
    "cl-initech": ("2", "Initech"),
    "cl-umbrella": ("3", "Umbrella Ltd"),
}
THROTTLE_XML = (
    '<?xml version="1.0" encoding="UTF-8"?><IntuitResponse xmlns="http://schema.intuit.com/'
    'finance/v3"><Fault type="ValidationFault"><Error code="003001"><Message>message='
    "ThrottleExceeded; errorCode=003001; statusCode=429</Message></Error></Fault>"
    "</IntuitResponse>"
)


# --- the fake QuickBooks Online -----------------------------------------------------------------
class Company:
    def __init__(self, realm: str):
        self.realm = realm
        self.lock = threading.Lock()
        self.admitted: deque[float] = deque()  # arrival times of requests let through
        self.requests = 0  # everything received, 429s included
        self.throttled = 0
        self.kinds: Counter[str] = Counter()  # requests received by kind, for the report
        self.items: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.by_request_id: dict[str, dict[str, Any]] = {}
        self.keys: Counter[str] = Counter()  # invoices per tsi-key marker
        self.created_at: dict[str, float] = {}  # tsi-key -> when its first invoice was created
        self.next_id = 1000

    def admit(self, now: float) -> bool:
        """Intuit's limits over sliding windows: 10 in any second, 500 in any minute."""
        with self.lock:
            self.requests += 1
            while self.admitted and self.admitted[0] <= now - 60:
                self.admitted.popleft()
            last_second = sum(1 for t in reversed(self.admitted) if t > now - 1)
            if len(self.admitted) >= PER_MINUTE or last_second >= LIMITS["per_second"]:
                self.throttled += 1
                return False
            self.admitted.append(now)
            return True


class FakeQuickBooks:
    def __init__(self, port: int, latency: float):
        self.latency = latency
        self.companies: dict[str, Company] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.handle(self, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fake.handle(self, json.loads(self.rfile.read(length) or b"{}"))

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                # The worker is stopped at the end of each phase: its kept-alive connections
                # are reset, which is not worth a traceback.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def company(self, realm: str) -> Company:
        with self.lock:
            return self.companies.setdefault(realm, Company(realm))

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, h: BaseHTTPRequestHandler, body: Any) -> None:
        url = urlparse(h.path)
        m = re.match(r"/v3/company/([^/]+)/(.*)", url.path)
        if not m:
            return self.send(h, 404, {"error": "not found"})
        company = self.company(m.group(1))
        kind = m.group(2).split("/", 1)[0].split("?", 1)[0]
        if kind == "query":
            found = re.search(r"FROM (\w+)", parse_qs(url.query).get("query", [""])[0])
            kind = f"query {found.group(1) if found else '?'}"
        with company.lock:
            company.kinds[f"{h.command} {kind}"] += 1
        if not company.admit(time.monotonic()):
            return self.send(h, 429, THROTTLE_XML, content_type="application/xml")
        time.sleep(self.latency)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = m.group(2)
        if body is None:
            return self.send(h, 200, self.get(company, path, params))
        return self.send(h, 200, self.post(company, path, params, body))

    def send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: Any,
        content_type: str = "application/json",
    ) -> None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def get(self, c: Company, path: str, params: dict[str, str]) -> Any:
        if path.startswith("companyinfo/"):
            return {"CompanyInfo": {"Id": "1", "CompanyName": c.realm, "Country": "US"}}
        if path.startswith("customer/"):
            cid = path.split("/", 1)[1]
            name = next((n for i, n in CUSTOMERS.values() if i == cid), f"Customer {cid}")
            return {
                "Customer": {
                    "Id": cid,
                    "DisplayName": name,
                    "CurrencyRef": {"value": "USD"},
                    "Active": True,
                }
            }
        if path == "query":
            return {"QueryResponse": self.query(c, params["query"])}
        if path.startswith("invoice/"):
            row = c.invoices.get(path.split("/", 1)[1])
            return {"Invoice": row} if row else {}
        return {}

    def query(self, c: Company, statement: str) -> dict[str, Any]:
        entity = re.search(r"FROM (\w+)", statement).group(1)  # type: ignore[union-attr]
        if entity == "Item":
            name = re.search(r"Name = '([^']*)'", statement)
            rows = [i for i in c.items.values() if name and i["Name"] == name.group(1)]
        elif entity == "Account":
            rows = [{"Id": "1", "Name": "Services", "AccountType": "Income"}]
        elif entity == "Invoice":
            with c.lock:
                rows = list(c.invoices.values())
            customer = re.search(r"CustomerRef = '([^']*)'", statement)
            day = re.search(r"TxnDate = '([^']*)'", statement)
            if customer:
                rows = [r for r in rows if r["CustomerRef"]["value"] == customer.group(1)]
            if day:
                rows = [r for r in rows if r["TxnDate"] == day.group(1)]
        else:
            rows = []
        start = int((re.search(r"STARTPOSITION (\d+)", statement) or [0, 1])[1])
        size = int((re.search(r"MAXRESULTS (\d+)", statement) or [0, 100])[1])
        page = rows[start - 1 : start - 1 + size]
        return {entity: page} if page else {}

    def post(self, c: Company, path: str, params: dict[str, str], body: Any) -> Any:
        rid = params.get("requestid")
        with c.lock:
            if rid and rid in c.by_request_id:
                return c.by_request_id[rid]  # QuickBooks: a repeated requestid, same answer
            c.next_id += 1
            new_id = str(c.next_id)
            if path == "item":
                row = {**body, "Id": new_id, "Type": "Service", "Active": True}
                c.items[new_id] = row
                answer = {"Item": row}
            elif path == "invoice":
                total = sum(float(line["Amount"]) for line in body["Line"])
                row = {
                    **body,
                    "Id": new_id,
                    "SyncToken": "0",
                    "DocNumber": new_id,
                    "TotalAmt": total,
                    "Balance": total,
                }
                c.invoices[new_id] = row
                key = body.get("PrivateNote", "").rsplit("tsi-key: ", 1)[-1]
                c.keys[key] += 1
                c.created_at.setdefault(key, time.time())
                answer = {"Invoice": row}
            else:
                return {}
            if rid:
                c.by_request_id[rid] = answer
            return answer


# --- one phase ------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run_phase(args: argparse.Namespace, companies: int, tmp: Path, fake: FakeQuickBooks) -> dict:
    from sqlalchemy import select, text

    from connector import create_app, db, migrate
    from connector.books import books_key
    from connector.connections.store import DbCredentialStore, secret_box
    from connector.models import CustomerMapping, Draft, Workspace
    from connector.workspaces import create_workspace
    from tests.app_fixtures import signed_headers
    from tests.helpers import event

    database_url = args.database_url or f"sqlite:///{tmp / f'bench-{companies}.db'}"
    queue_url = args.redis_url or f"sqlite:///{tmp / f'queue-{companies}.db'}"
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "QUEUE_URL": queue_url,
        "INSTANCE_PATH": str(tmp),
        "QUICKBOOKS_CLIENT_ID": "bench",
        "QUICKBOOKS_CLIENT_SECRET": "bench",
        "QUICKBOOKS_API_BASE_URL": f"http://127.0.0.1:{args.port}",
        "LOG_LEVEL": "WARNING",
        "WORKER_IMMEDIATE": "false",
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
            "DATABASE_URL": database_url,
            "QUEUE_URL": queue_url,
            "REDIS_URL": args.redis_url,
            "WORKER_IMMEDIATE": False,
            "LOG_LEVEL": "WARNING",
        }
    )
    client = app.test_client()
    workspaces: list[tuple[int, str, str, str]] = []  # id, tracker id, webhook path, secret
    with app.app_context():
        engine = db.engine()
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        migrate.upgrade()
        for n in range(companies):
            tracker_id = f"90{n}"
            with db.session_scope() as s:
                created = create_workspace(
                    s,
                    secret_box(app.config),
                    name=f"Bench company {n}",
                    tracker_workspace_id=tracker_id,
                    auto_invoicing=True,
                )
                ws = created.workspace
                ws.provider = "quickbooks"
                workspaces.append((ws.id, tracker_id, f"/webhooks/webwork/{ws.endpoint_token}", ""))
                workspaces[-1] = (*workspaces[-1][:3], created.signing_secret)
                for client_id, (customer_id, name) in CUSTOMERS.items():
                    s.add(
                        CustomerMapping(
                            workspace_id=ws.id,
                            # the company connected below: mappings belong to its books
                            books=books_key("quickbooks", f"realm-{companies}-{n}", "sandbox"),
                            kind="client",
                            tracker_id=client_id,
                            customer_id=customer_id,
                            customer_name=name,
                            customer_currency="USD",
                        )
                    )
            DbCredentialStore(workspaces[-1][0], "quickbooks", secret_box(app.config)).connect(
                {
                    "access_token": "bench-access",
                    "refresh_token": "bench-refresh",
                    "expires_at": time.time() + 86400,
                },
                account_id=f"realm-{companies}-{n}",  # fresh at the fake each phase
                environment="sandbox",
            )
        db.session.remove()

    consumers = [
        subprocess.Popen(
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
            stderr=(tmp / f"consumer-{companies}-{n}.log").open("ab"),
        )
        for n in range(args.processes)
    ]
    time.sleep(2.0)  # let the consumer start its poller before the burst
    posted_at: dict[tuple[int, str], float] = {}
    base = event("timesheet_approved__three_customers")
    expected = 3 * args.approvals * companies
    requests_before = {r: c.requests for r, c in fake.companies.items()}
    kinds_before = {r: Counter(c.kinds) for r, c in fake.companies.items()}
    throttled_before = {r: c.throttled for r, c in fake.companies.items()}
    started = time.time()
    deadline = time.monotonic() + args.timeout
    drafted: list[tuple[int, str, str]] = []  # workspace id, timesheet id, draft key
    try:
        with app.app_context():
            # All approvals at once, companies interleaved (a Monday morning).
            for i in range(args.approvals):
                for ws_id, tracker_id, path, secret in workspaces:
                    doc = copy.deepcopy(base)
                    doc["data"]["workspace_id"] = tracker_id
                    doc["data"]["timesheet"]["id"] = f"ts_bench_{i:05d}"
                    body = json.dumps(doc).encode()
                    res = client.post(path, data=body, headers=signed_headers(secret, body))
                    assert res.status_code == 202, res.get_data(as_text=True)
                    posted_at[(ws_id, f"ts_bench_{i:05d}")] = time.time()
            posting = time.time() - started
            while time.monotonic() < deadline:
                time.sleep(1.0)
                if any(consumer.poll() is not None for consumer in consumers):
                    raise RuntimeError(f"a worker exited; see {tmp}/consumer-{companies}-*.log")
                rows = db.session.execute(
                    select(
                        Draft.workspace_id, Draft.key, Draft.updated_at, Draft.timesheet_pk
                    ).where(Draft.status == "drafted")
                ).all()
                db.session.remove()
                if len(rows) >= expected:
                    break
                print(
                    f"  t={time.time() - started:5.0f}s drafted {len(rows)}/{expected}", flush=True
                )
            from connector.models import Timesheet

            ts_ids = dict(db.session.execute(select(Timesheet.id, Timesheet.timesheet_id)).all())
            rows = db.session.execute(
                select(Draft.workspace_id, Draft.timesheet_pk, Draft.key, Draft.status)
            ).all()
            statuses = Counter(r.status for r in rows)
            drafted = [
                (r.workspace_id, ts_ids[r.timesheet_pk], r.key)
                for r in rows
                if r.status == "drafted"
            ]
            provider_names = set(db.session.scalars(select(Workspace.provider)))
            db.session.remove()
    finally:
        for consumer in consumers:
            os.killpg(consumer.pid, signal.SIGTERM)
        for consumer in consumers:
            try:
                consumer.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(consumer.pid, signal.SIGKILL)

    realms = [f"realm-{companies}-{n}" for n in range(companies)]
    # When each draft's invoice was created at the fake: the row's updated_at moves again later
    # (the provider status sync touches drafted rows), so it cannot time the draft.
    realm_of = {ws[0]: realm for ws, realm in zip(workspaces, realms, strict=True)}
    created = [fake.company(realm_of[ws_id]).created_at[key] for ws_id, _, key in drafted]
    latencies = [
        at - posted_at[(ws_id, ts)] for (ws_id, ts, _), at in zip(drafted, created, strict=True)
    ]
    last = max(created, default=started)
    elapsed = max(last - started, 1e-9)
    requests = sum(fake.company(r).requests - requests_before.get(r, 0) for r in realms)
    throttled = sum(fake.company(r).throttled - throttled_before.get(r, 0) for r in realms)
    kinds: Counter[str] = Counter()
    for r in realms:
        kinds.update(fake.company(r).kinds)
        kinds.subtract(kinds_before.get(r, Counter()))
    duplicates = sum(n - 1 for r in realms for n in fake.company(r).keys.values() if n > 1)
    unique_at_provider = sum(len(fake.company(r).keys) for r in realms)
    per_minute = len(drafted) / elapsed * 60
    return {
        "companies": companies,
        "approvals": args.approvals * companies,
        "expected": expected,
        "drafted": len(drafted),
        "statuses": dict(statuses),
        "elapsed_s": elapsed,
        "posting_s": posting,
        "drafts_per_min": per_minute,
        "fraction_of_bound": per_minute / (PER_MINUTE * companies),
        "requests": requests,
        "requests_per_draft": requests / max(len(drafted), 1),
        "throttled": throttled,
        "kinds": dict(sorted((+kinds).items())),
        "p50_s": percentile(latencies, 50),
        "p95_s": percentile(latencies, 95),
        "duplicates": duplicates,
        "lost": expected - unique_at_provider,
        "providers": sorted(provider_names),
    }


def report(label: str, r: dict) -> None:
    print(
        f"\n[{label}] {r['companies']} company(ies), {r['approvals']} approvals x 3 customers = "
        f"{r['expected']} drafts; drafted {r['drafted']} in {r['elapsed_s']:.1f} s "
        f"(approvals posted in {r['posting_s']:.1f} s); draft statuses {r['statuses']}"
    )
    print(
        f"  drafts/minute {r['drafts_per_min']:.0f} = {100 * r['fraction_of_bound']:.0f}% of the "
        f"{PER_MINUTE * r['companies']}/min bound | requests/draft {r['requests_per_draft']:.2f} "
        f"({r['requests']} requests) | 429s {r['throttled']}"
    )
    print(
        f"  approval-to-draft latency p50 {r['p50_s']:.1f} s, p95 {r['p95_s']:.1f} s | "
        f"duplicates {r['duplicates']} | lost {r['lost']}"
    )
    print("  requests by kind: " + ", ".join(f"{k} {n}" for k, n in r["kinds"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--approvals", type=int, default=150, help="approvals per company")
    parser.add_argument("--companies", type=int, default=5, help="companies in the multi phase")
    parser.add_argument("--phase", choices=["single", "multi", "both"], default="both")
    parser.add_argument("--threads", type=int, default=4, help="worker threads per process")
    parser.add_argument("--processes", type=int, default=1, help="worker (consumer) processes")
    parser.add_argument("--latency", type=float, default=0.15, help="fake QuickBooks answer time")
    parser.add_argument("--port", type=int, default=5141, help="fake QuickBooks port")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (EMPTIED first)")
    parser.add_argument("--redis-url", default=None, help="Redis URL for queue + limiter")
    parser.add_argument("--timeout", type=float, default=420, help="seconds per phase at most")
    parser.add_argument(
        "--per-second",
        type=int,
        default=PER_SECOND,
        help="per-second limit the fake enforces (raise it to see the per-minute bound alone)",
    )
    args = parser.parse_args()
    LIMITS["per_second"] = args.per_second

    tmp = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    os.environ["INSTANCE_PATH"] = str(tmp)
    fake = FakeQuickBooks(args.port, args.latency)
    fake.start()
    backend = "PostgreSQL + Redis" if args.database_url else "SQLite (database and queue)"
    print(
        f"backend: {backend}; {args.processes} worker process(es) x {args.threads} threads; "
        f"fake QuickBooks on 127.0.0.1:"
        f"{args.port}, {args.latency * 1000:.0f} ms per answer, {args.per_second}/s and "
        f"{PER_MINUTE}/min per company"
    )
    results = []
    try:
        if args.phase in ("single", "both"):
            results.append(("single", run_phase(args, 1, tmp, fake)))
            report(*results[-1])
        if args.phase in ("multi", "both"):
            results.append(("multi", run_phase(args, args.companies, tmp, fake)))
            report(*results[-1])
    finally:
        fake.stop()
    ok = all(r["duplicates"] == 0 and r["lost"] == 0 for _, r in results)
    print("\nRESULT:", "no duplicates, none lost" if ok else "FAILED: duplicates or lost drafts")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
