"""The README's five-minute walkthrough, run as a new user runs it (issue 21).

The commands are read from README.md's walkthrough code block, so the test fails the day the
README drifts from what the commands print. A fresh database is migrated, the Procfile's web and
worker are started with honcho (what ./scripts/serve runs after installing), and each command
runs in a shell, in order, exactly as written except for:

* the placeholders ``<webhook_url>``, ``<signing_secret>`` and ``<api_token>``, taken from step 1's
  JSON as a reader copies them;
* the address ``http://127.0.0.1:5000``, which becomes this test's port (one of 5111-5119).

Configuration reaches the server and the commands only through ``.env`` in the directory they run
in (PUBLIC_BASE_URL, DATABASE_URL...), never through the commands' environment: the webhook URL
step 1 prints must come from the same configuration the server uses.

Each output the README shows under a command (``#  `` lines) must equal what the command printed,
line for line; an output containing "..." is illustrative and only step 1's is. The worker runs
beside the commands, so a command whose output is not yet the README's is run again for a while,
as a reader would a second later.

On PostgreSQL (TEST_DATABASE_URL) the walkthrough gets a schema of its own in that database, so its
ids start at 1 as on a fresh install; with TEST_REDIS_URL the queue is in Redis.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from connector.config import SETTINGS
from connector.providers import declared_settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
README_ADDRESS = "http://127.0.0.1:5000"
PORTS = range(5111, 5120)
RETRY_SECONDS = 30
SCHEMA = "readme_walkthrough"


@dataclass
class Step:
    command: str
    shown: list[str] = field(default_factory=list)  # what the README says it prints


def walkthrough_steps(readme: str) -> list[Step]:
    """The commands of the walkthrough's code block, each with the output shown under it."""
    section = readme.split("## Five-minute walkthrough", 1)[1]
    block = section.split("```sh\n", 1)[1].split("\n```", 1)[0]
    steps: list[Step] = []
    pending = ""  # a command continued with a backslash
    after_command = False
    for line in block.splitlines():
        if not line.strip():
            after_command = False
        elif line.startswith("#"):
            if after_command:
                steps[-1].shown.append(line[3:] if line.startswith("#  ") else line[1:])
        else:
            pending += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
            if not line.endswith("\\"):
                steps.append(Step(re.sub(r"\s+", " ", pending).strip()))
                pending, after_command = "", True
    return steps


def test_the_parser_reads_commands_and_their_output() -> None:
    readme = (
        "## Five-minute walkthrough\n\n```sh\n# 1. Do it\n#    twice.\nrun a \\\n    --b\n"
        "#  out 1\n#    out 2\n\n# 2. Next\nrun c\n```\n"
    )
    steps = walkthrough_steps(readme)
    assert [(s.command, s.shown) for s in steps] == [
        ("run a --b", ["out 1", "  out 2"]),
        ("run c", []),
    ]


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))  # the Procfile binds every interface
            except OSError:
                continue
            return port
    pytest.skip(f"no free port in {PORTS.start}-{PORTS.stop - 1} for the walkthrough's server")


def _database(tmp: Path) -> dict[str, str]:
    """DATABASE_URL (and the queue) of a fresh install on the backend this run tests."""
    url = os.environ.get("TEST_DATABASE_URL")
    out = {"QUEUE_URL": f"sqlite:///{tmp / 'queue.db'}"}
    if os.environ.get("TEST_REDIS_URL"):
        out["REDIS_URL"] = out["QUEUE_URL"] = os.environ["TEST_REDIS_URL"]
    if not url or not url.startswith("postgresql"):
        return {**out, "DATABASE_URL": f"sqlite:///{tmp / 'timesheet-invoicer.db'}"}
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
    engine.dispose()
    sep = "&" if "?" in url else "?"
    return {**out, "DATABASE_URL": f"{url}{sep}options=-csearch_path%3D{SCHEMA}"}


def _clean_environment() -> dict[str, str]:
    """This process's environment without any of the service's settings (the test process
    configures itself for tests): the commands must find theirs in .env."""
    names = {s.name for s in (*SETTINGS, *declared_settings())} | {
        "PORT",
        "PROMETHEUS_MULTIPROC_DIR",
    }
    env = {k: v for k, v in os.environ.items() if k not in names and not k.startswith("TEST_")}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}"
    return env


@dataclass
class Install:
    cwd: Path
    env: dict[str, str]
    base: str


@pytest.fixture
def install(tmp_path: Path) -> Iterator[Install]:
    """A checkout's directory with its .env, migrated, web and worker running."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed; the README's API step runs it")
    if not (ROOT / ".venv" / "bin" / "flask").exists():
        pytest.skip("no .venv at the repository root: the README's commands run .venv/bin/flask")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    cwd = tmp_path / "checkout"
    cwd.mkdir()
    for name in (".venv", "Procfile"):
        (cwd / name).symlink_to(ROOT / name)
    settings = {
        "PORT": str(port),
        "PUBLIC_BASE_URL": base,
        "APP_ENV": "development",
        "WEB_CONCURRENCY": "1",
        "WORKER_CONCURRENCY": "1",
        **_database(tmp_path),
    }
    (cwd / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    env = _clean_environment()
    subprocess.run(
        [".venv/bin/flask", "--app", "connector", "db", "upgrade"],
        cwd=cwd, env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [".venv/bin/honcho", "start", "web", "worker"],
        cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_until_up(base, server, tmp_path / "server.log")
        yield Install(cwd, env, base)
    finally:
        server.terminate()  # honcho stops web and worker
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait(timeout=5)
        log.close()
        _leave_no_trace(settings)


def _leave_no_trace(settings: dict[str, str]) -> None:
    """The walkthrough's schema and queue are its own: drop them for the tests that follow."""
    if "REDIS_URL" in settings:
        import redis

        redis.Redis.from_url(settings["REDIS_URL"]).flushdb()  # the tests' Redis db
    if settings["DATABASE_URL"].startswith("postgresql"):
        engine = sa.create_engine(os.environ["TEST_DATABASE_URL"])
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        engine.dispose()


def _wait_until_up(base: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited: {log.read_text()[-3000:]}")
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    pytest.fail(f"the server did not answer in 60 s: {log.read_text()[-3000:]}")


def _run(install: Install, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], cwd=install.cwd, env=install.env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_readme_walkthrough_prints_what_the_readme_shows(install: Install) -> None:
    steps = walkthrough_steps((ROOT / "README.md").read_text())
    assert len(steps) >= 5, "the walkthrough block lost its commands"
    values: dict[str, str] = {}
    for step in steps:
        command = step.command
        for name, value in values.items():
            command = command.replace(f"<{name}>", value)
        assert "<" not in command.replace("< ", ""), f"unfilled placeholder: {command}"
        command = command.replace(README_ADDRESS, install.base)
        shown = [line.replace(README_ADDRESS, install.base) for line in step.shown]
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            done = _run(install, command)
            printed = done.stdout.rstrip("\n").splitlines()
            illustrative = any("..." in line for line in shown)
            if done.returncode == 0 and (not shown or illustrative or printed == shown):
                break
            if time.monotonic() > deadline:
                assert printed == shown, (command, done.returncode, done.stderr[-2000:])
                pytest.fail(f"{command}: exit {done.returncode}: {done.stderr[-2000:]}")
            time.sleep(0.5)
        if "workspaces create" in command:  # what a reader copies into the next commands
            created: dict[str, Any] = json.loads(done.stdout)
            values.update({k: str(v) for k, v in created.items()})
            assert created["webhook_url"].startswith(install.base + "/webhooks/webwork/")
        if command.startswith("curl"):
            drafts = json.loads(done.stdout)["drafts"]
            assert sorted(d["status"] for d in drafts) == ["drafted"] * 3
    assert any("drafts show" in s.command and s.shown for s in steps)
