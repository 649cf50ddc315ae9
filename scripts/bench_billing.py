"""Benchmark bill() on a synthetic 100,000-row timesheet (not a test).

Usage: .venv/bin/python scripts/bench_billing.py [rows] [grouping]

Without a grouping, every grouping (project, project_day, task, detailed) is measured, each in
its own child process, and the targets are checked per grouping; the exit status is 0 only if
all are met. Timing runs without tracemalloc (it slows allocation-heavy code several-fold); a
second run under tracemalloc measures the peak memory bill() itself allocates, and ru_maxrss
reports the whole process (inputs included).
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from datetime import date, timedelta
from decimal import Decimal

from connector.billing import (
    GROUPINGS,
    BillingSettings,
    Client,
    Customer,
    Mappings,
    Member,
    Money,
    RateEntry,
    RateTable,
    Task,
    TimeRow,
    TimesheetInput,
    bill,
)

TARGET_SECONDS = 1.0
TARGET_MB = 200


def build(
    n_rows: int, grouping: str
) -> tuple[TimesheetInput, BillingSettings, Mappings, RateTable]:
    rng = random.Random(42)
    start = date(2026, 1, 1)
    days = [start + timedelta(days=i) for i in range(365)]
    customers = [
        Customer(f"cu{i}", f"Customer {i}", "JPY" if i == 3 else "USD", billing_increment=None)
        for i in range(8)
    ]
    projects = [(f"p{i}", f"Project {i}") for i in range(200)]
    tasks = [Task(f"t{i}", f"Task {i}") for i in range(20)]
    clients = [Client(f"cl{i}", f"Client {i}") for i in range(10)]
    # 150 projects mapped directly, the rest through their client.
    project_map = {pid: customers[i % 8] for i, (pid, _) in enumerate(projects[:150])}
    client_map = {c.id: customers[i % 8] for i, c in enumerate(clients)}
    entries = [RateEntry(Decimal("50"), "USD")]
    entries += [RateEntry(Decimal("8000"), "JPY", customer_id="cu3")]
    for i, (pid, _) in enumerate(projects[:100]):
        currency = "JPY" if project_map[pid].id == "cu3" else "USD"
        base = Decimal(8000 + i) if currency == "JPY" else Decimal("60") + Decimal(i) / 4
        entries.append(RateEntry(base, currency, project_id=pid))
        entries.append(RateEntry(base + 10, currency, days[180], project_id=pid))  # mid-year raise
    for i in range(0, 50, 5):
        entries.append(RateEntry(Decimal("99.99"), "USD", days[90], contract_id=f"k{i}"))
    row_rate = Money(Decimal("75"), "USD")
    rows = []
    for _ in range(n_rows):
        pid, pname = projects[rng.randrange(len(projects))]
        is_usd = (project_map.get(pid) or client_map[f"cl{int(pid[1:]) % 10}"]).currency == "USD"
        rows.append(
            TimeRow(
                date=days[rng.randrange(len(days))],
                project_id=pid,
                project_name=pname,
                minutes=rng.randrange(1, 240),
                contract_id=f"k{rng.randrange(60)}" if is_usd and rng.random() < 0.5 else None,
                billable=False if rng.random() < 0.05 else None,
                rate=row_rate if is_usd and rng.random() < 0.02 else None,
                client=clients[int(pid[1:]) % 10],
                task=tasks[rng.randrange(len(tasks))],
            )
        )
    sheet = TimesheetInput("ts-bench", Member("m1", "Ada Lovelace"), days[0], days[-1], tuple(rows))
    settings = BillingSettings("ws-bench", grouping, billing_increment=6)
    return sheet, settings, Mappings(project_map, client_map), RateTable(tuple(entries))


def measure(n_rows: int, grouping: str) -> dict:
    """Time bill() (best of 3) and measure its memory, for one grouping, in this process."""
    sheet, settings, mappings, table = build(n_rows, grouping)

    timings = []
    result = None
    for _ in range(3):
        del result  # keep one result alive at a time, as a caller would
        began = time.perf_counter()
        result = bill(sheet, settings, mappings, table)
        timings.append(time.perf_counter() - began)
    best = min(timings)
    # Before tracemalloc, whose own bookkeeping would inflate the process's RSS.
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    tracemalloc.start()
    bill(sheet, settings, mappings, table)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    return {
        "rows": n_rows,
        "grouping": grouping,
        "drafts": len(result.drafts),
        "lines": sum(len(d.lines) for d in result.drafts),
        "holds": len(result.holds),
        "runs": len(timings),
        "seconds": best,
        "peak_mb": peak / 2**20,
        "maxrss_mb": maxrss_mb,
        "ok": best < TARGET_SECONDS and maxrss_mb < TARGET_MB,
    }


def report(m: dict) -> None:
    print(
        f"rows: {m['rows']}  grouping: {m['grouping']}  drafts: {m['drafts']}  "
        f"lines: {m['lines']}  holds: {m['holds']}"
    )
    print(
        f"  bill(): best {m['seconds']:.3f} s of {m['runs']} ({m['rows'] / m['seconds']:,.0f} "
        f"rows/s); target < {TARGET_SECONDS:.0f} s"
    )
    print(
        f"  peak memory allocated by bill() (tracemalloc): {m['peak_mb']:.1f} MB; "
        f"process max RSS incl. inputs: {m['maxrss_mb']:.1f} MB; target < {TARGET_MB} MB"
    )
    print("  targets met" if m["ok"] else "  TARGETS MISSED")


def measure_in_child(n_rows: int, grouping: str) -> dict:
    # A fresh interpreter per grouping: ru_maxrss is a high-water mark for the whole process, so
    # measuring every grouping in one process would charge each with the largest before it.
    child = subprocess.run(
        [sys.executable, __file__, "--json", str(n_rows), grouping],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(child.stdout)


def main() -> int:
    args = sys.argv[1:]
    as_json = "--json" in args
    if as_json:
        args.remove("--json")
    n_rows = int(args[0]) if args else 100_000
    groupings = [args[1]] if len(args) > 1 else list(GROUPINGS)
    for grouping in groupings:
        if grouping not in GROUPINGS:
            raise SystemExit(f"unknown grouping {grouping!r}; expected one of {GROUPINGS}")

    if as_json:  # the child side of measure_in_child()
        print(json.dumps(measure(n_rows, groupings[0])))
        return 0
    if len(groupings) == 1:
        results = [measure(n_rows, groupings[0])]
    else:
        results = [measure_in_child(n_rows, grouping) for grouping in groupings]
    for m in results:
        report(m)
    if len(results) > 1:
        print()
        print(
            f"{'grouping':<12} {'lines':>7} {'seconds':>8} {'rows/s':>9} {'peak MB':>8} "
            f"{'RSS MB':>7}  targets"
        )
        for m in results:
            print(
                f"{m['grouping']:<12} {m['lines']:>7} {m['seconds']:>8.3f} "
                f"{m['rows'] / m['seconds']:>9,.0f} {m['peak_mb']:>8.1f} {m['maxrss_mb']:>7.1f}  "
                f"{'met' if m['ok'] else 'MISSED'}"
            )
    ok = all(m["ok"] for m in results)
    print(
        "all targets met"
        if ok
        else "TARGETS MISSED for: " + ", ".join(m["grouping"] for m in results if not m["ok"])
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
