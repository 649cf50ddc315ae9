"""Operator commands: ``flask --app connector ...``.

db upgrade|downgrade|revision|current     schema migrations (Alembic)
workspaces create|list|rotate-secret|auto-invoicing|token
events send-sample|replay                 signed sample approval; replay a stored delivery
drafts show|invoices                      an approval's drafts; a workspace's invoices
jobs failed|retry                         list failed jobs and retry them
config                                    every environment variable with its default
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import requests
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connector import db, metrics, trackers, worker
from connector.admin.admins_cli import admins_cli
from connector.auth import issue_api_token
from connector.config import settings_table_markdown
from connector.connections.store import secret_box
from connector.drafts_cli import drafts_cli
from connector.models import Connection, Delivery, Job, JobState, Workspace
from connector.providers import PROVIDER_NAMES, declared_settings
from connector.status_sync import provider_status_cli
from connector.workspaces import (
    create_workspace,
    retire_old_signing_secrets,
    rotate_signing_secret,
    signing_secrets,
    webhook_url,
)
from mappings.mappings_cli import mappings_cli
from webhooks.inbox import replay_delivery
from webhooks.tracker_cli import tracker_cli

db_cli = AppGroup("db", help="Create or upgrade the database schema.")
workspaces_cli = AppGroup("workspaces", help="Create and manage workspaces.")
events_cli = AppGroup("events", help="Send a signed sample event; replay stored deliveries.")
jobs_cli = AppGroup("jobs", help="Inspect and retry background jobs.")
secrets_cli = AppGroup("secrets", help="Encryption-key rotation for stored secrets.")
metrics_cli = AppGroup("metrics", help="Prometheus metrics for operators.")


# --- db ---------------------------------------------------------------------------------------
@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head). Safe to run on every deploy."""
    from connector import migrate  # alembic is imported only by the commands that use it

    migrate.upgrade(revision)
    click.echo(f"database upgraded to {revision}")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ("base" empties the database)."""
    from connector import migrate

    migrate.downgrade(revision)


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models."""
    from connector import migrate

    migrate.revision(message)


@db_cli.command("current")
def db_current() -> None:
    """Show the schema revision the database is at."""
    from connector import migrate

    migrate.current()


# --- workspaces ---------------------------------------------------------------------------------
def _box() -> Any:

    return secret_box(current_app.config)


def _workspace(s: Any, workspace_id: int) -> Workspace:
    ws = s.get(Workspace, workspace_id)
    if ws is None:
        raise click.ClickException(f"no workspace with id {workspace_id}")
    return ws


@workspaces_cli.command("create")
@click.argument("name")
@click.option("--tracker-workspace-id", required=True, help="The tracker's workspace id.")
@click.option(
    "--tracker",
    "tracker_source",
    default=None,
    help="The time tracker the approvals come from (default: the first registered source).",
)
@click.option("--auto-invoicing/--no-auto-invoicing", default=False, show_default=True)
@click.option(
    "--provider",
    type=click.Choice(PROVIDER_NAMES),
    default="local",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def workspaces_create(
    name: str,
    tracker_workspace_id: str,
    tracker_source: str | None,
    auto_invoicing: bool,
    provider: str,
    as_json: bool,
) -> None:
    """Create a workspace; prints its webhook URL, signing secret and an API token (once)."""
    if tracker_source is not None and not trackers.is_source(tracker_source):
        known = ", ".join(trackers.SOURCES) or "none"
        raise click.BadParameter(
            f"{tracker_source!r} is not a tracker (registered: {known})", param_hint="--tracker"
        )
    # The console's check too: an id the tracker can never send is refused before anything is kept.
    problem = trackers.workspace_id_problem(
        tracker_source or trackers.default_source(), tracker_workspace_id
    )
    if problem:
        raise click.BadParameter(problem, param_hint="--tracker-workspace-id")
    try:
        with db.session_scope() as s:
            created = create_workspace(
                s,
                _box(),
                name=name,
                tracker_workspace_id=tracker_workspace_id,
                tracker_source=tracker_source,
                auto_invoicing=auto_invoicing,
                provider=provider,
            )
            ws = created.workspace
            out = {
                "id": ws.id,
                "name": ws.name,
                "tracker": ws.tracker_source,
                "tracker_workspace_id": ws.tracker_workspace_id,
                "auto_invoicing": ws.auto_invoicing,
                "provider": ws.provider,
                "webhook_url": webhook_url(current_app.config["PUBLIC_BASE_URL"], ws),
                "signing_secret": created.signing_secret,
                "api_token": created.api_token,
            }
    except IntegrityError:
        raise click.ClickException(
            f"a workspace for tracker workspace {tracker_workspace_id!r} already exists"
        ) from None
    if "PUBLIC_BASE_URL" not in os.environ:  # flask has read .env by now, as honcho does
        click.echo(
            "Note: the webhook URL uses the default address "
            f"{current_app.config['PUBLIC_BASE_URL']}. "
            "If the server is reached at another one, put PUBLIC_BASE_URL=... in .env at the "
            "repository root (read by ./scripts/serve and every flask command), restart the "
            "server and run `flask --app connector workspaces list`.",
            err=True,
        )
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    for key, value in out.items():
        click.echo(f"{key:22} {value}")
    click.echo("\nKeep the signing secret and API token now: they are not shown again.")


@workspaces_cli.command("list")
def workspaces_list() -> None:
    """List workspaces."""

    for ws in db.session.scalars(select(Workspace).order_by(Workspace.id)):
        click.echo(
            f"{ws.id:4} {ws.name:30} tracker={ws.tracker_source}:{ws.tracker_workspace_id} "
            f"provider={ws.provider} "
            f"auto_invoicing={'on' if ws.auto_invoicing else 'off'} "
            f"{webhook_url(current_app.config['PUBLIC_BASE_URL'], ws)}"
        )


@workspaces_cli.command("rotate-secret")
@click.argument("workspace_id", type=int)
@click.option("--retire-old", is_flag=True, help="Drop every secret but the newest.")
def workspaces_rotate_secret(workspace_id: int, retire_old: bool) -> None:
    """Issue a new signing secret; the previous one stays valid until --retire-old."""

    with db.session_scope() as s:
        ws = _workspace(s, workspace_id)
        if retire_old:
            retire_old_signing_secrets(s, _box(), ws)
            click.echo("older signing secrets retired")
            return
        secret = rotate_signing_secret(s, _box(), ws)
    click.echo(secret)


@workspaces_cli.command("auto-invoicing")
@click.argument("workspace_id", type=int)
@click.argument("state", type=click.Choice(["on", "off"]))
def workspaces_auto_invoicing(workspace_id: int, state: str) -> None:
    """Turn automatic invoicing on or off."""
    with db.session_scope() as s:
        ws = _workspace(s, workspace_id)
        ws.auto_invoicing = state == "on"
    click.echo(f"automatic invoicing {state} for workspace {workspace_id}")


@workspaces_cli.command("token")
@click.argument("workspace_id", type=int)
@click.option("--name", default="cli", show_default=True)
def workspaces_token(workspace_id: int, name: str) -> None:
    """Issue another API token for the JSON API (printed once)."""

    with db.session_scope() as s:
        _workspace(s, workspace_id)
        token = issue_api_token(s, workspace_id, name)
    click.echo(token)


# --- events -------------------------------------------------------------------------------------
SECRET_ENV = "TSI_SIGNING_SECRET"


def _stored_signing_secret(source: str, tracker_workspace_id: str) -> str | None:
    """The newest signing secret of the workspace this server keeps for the tracker's id."""
    ws = db.session.scalars(
        select(Workspace).where(
            Workspace.tracker_source == source,
            Workspace.tracker_workspace_id == tracker_workspace_id,
        )
    ).first()
    secrets = signing_secrets(_box(), ws) if ws is not None else []
    return secrets[0] if secrets else None


def _refuse_secret_in_argv(_ctx: click.Context, _param: click.Parameter, value: Any) -> None:
    if value is not None:
        raise click.BadParameter(
            "a secret in argv ends up in shell history and process lists. Leave it out (the "
            "workspace's stored secret is used), pipe it to --secret-stdin, or set "
            f"{SECRET_ENV}.",
            param_hint="--secret",
        )


def _sample_source(url: str, name: str | None) -> trackers.Source:
    """The tracker whose sample is sent: ``--source``, else the one in the webhook URL's path
    (``/webhooks/<source>/<token>``), else the default source."""
    if name is None:
        parts = urlsplit(url).path.strip("/").split("/")
        found = parts[-2] if len(parts) >= 2 and parts[-3:-2] == ["webhooks"] else None
        name = found if found and trackers.is_source(found) else trackers.default_source()
    if not trackers.is_source(name):
        raise click.BadParameter(f"{name!r} is not a registered tracker", param_hint="--source")
    source = trackers.get_source(name)
    if source.contract is None or source.signature is None:
        raise click.ClickException(f"{source.display_name} has no sample events to send")
    return source


@events_cli.command("send-sample")
@click.option("--url", required=True, help="The workspace's webhook URL.")
@click.option(
    "--secret", hidden=True, expose_value=False, callback=_refuse_secret_in_argv, is_eager=True
)
@click.option(
    "--secret-stdin",
    is_flag=True,
    help=f"Read the signing secret (whsec_...) from standard input. Without it: ${SECRET_ENV}, "
    "else the secret this server stores for the workspace.",
)
@click.option("--tracker-workspace-id", required=True)
@click.option("--source", default=None, help="The tracker (default: the one in the URL).")
@click.option(
    "--sample", default=None, help="The source's sample to send (default: its approval sample)."
)
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Send this event file instead of a sample.",
)
def events_send_sample(
    url: str,
    secret_stdin: bool,
    tracker_workspace_id: str,
    source: str | None,
    sample: str | None,
    path: Path | None,
) -> None:
    """POST a signed sample approval (several customers) to a running server."""
    found = _sample_source(url, source)
    assert found.contract is not None and found.signature is not None
    if secret_stdin:
        secret = sys.stdin.readline().strip()
    else:
        secret = os.environ.get(SECRET_ENV, "").strip() or (
            _stored_signing_secret(found.name, tracker_workspace_id) or ""
        )
    if not secret:
        raise click.ClickException(
            f"no signing secret: no workspace here for tracker workspace "
            f"{tracker_workspace_id!r}; pipe the secret to --secret-stdin or set {SECRET_ENV}"
        )
    if path is None:
        name = sample or found.contract.default_sample
        if name not in found.contract.samples:
            known = ", ".join(sorted(found.contract.samples))
            raise click.BadParameter(
                f"no sample {name!r} (samples: {known})", param_hint="--sample"
            )
        path = found.contract.samples[name]
    doc = found.contract.address(json.loads(path.read_text()), tracker_workspace_id)
    body = json.dumps(doc).encode()
    headers = {"content-type": "application/json", **found.signature.sign(secret, body)}
    try:
        res = requests.post(url, data=body, headers=headers, timeout=30)
    except requests.RequestException as exc:
        raise click.ClickException(f"could not reach {url}: {exc}") from None
    click.echo(f"{res.status_code} {res.text.strip()}")
    if res.status_code >= 300:
        sys.exit(1)


@events_cli.command("replay")
@click.argument("delivery_id", type=int)
def events_replay(delivery_id: int) -> None:
    """Queue a stored delivery again (idempotency keys prevent duplicate drafts)."""

    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None:
        raise click.ClickException(f"no delivery with id {delivery_id}")
    job_id = replay_delivery(delivery.workspace_id, delivery_id)
    click.echo(f"delivery {delivery_id} queued again as job {job_id}")


# --- jobs ---------------------------------------------------------------------------------------
@jobs_cli.command("failed")
@click.option("--workspace", "workspace_id", type=int, default=None)
@click.option("--traceback", "show_traceback", is_flag=True, help="Print crashed jobs' tracebacks.")
def jobs_failed(workspace_id: int | None, show_traceback: bool) -> None:
    """List failed and waiting jobs with their last error."""
    stmt = select(Job).where(Job.state.in_([JobState.FAILED, JobState.WAITING]))
    if workspace_id is not None:
        stmt = stmt.where(Job.workspace_id == workspace_id)
    rows = list(db.session.scalars(stmt.order_by(Job.id)))
    if not rows:
        click.echo("no failed or waiting jobs")
    for job in rows:
        why = job.wait_reason or "failed"
        first_line, _, rest = (job.last_error or "").partition("\n")
        click.echo(
            f"{job.id:6} ws={job.workspace_id} {job.kind:17} {job.state:8} {why:17} "
            f"attempts={job.attempts} {first_line}"
        )
        if show_traceback and rest.strip():
            click.echo(rest.strip("\n"))


@jobs_cli.command("retry")
@click.argument("job_ids", type=int, nargs=-1)
@click.option("--all-failed", is_flag=True, help="Retry every failed job.")
def jobs_retry(job_ids: tuple[int, ...], all_failed: bool) -> None:
    """Retry failed (or waiting) jobs with fresh attempts."""
    ids = list(job_ids)
    if all_failed:
        ids += list(db.session.scalars(select(Job.id).where(Job.state == JobState.FAILED)))
    if not ids:
        raise click.UsageError("name job ids or pass --all-failed")
    for job_id in ids:
        ok = worker.retry_job(job_id)
        click.echo(f"job {job_id}: {'queued again' if ok else 'not retryable (done or unknown)'}")


# --- secrets -------------------------------------------------------------------------------------
@secrets_cli.command("reencrypt")
def secrets_reencrypt() -> None:
    """Re-encrypt every stored secret under the first TOKEN_ENCRYPTION_KEYS key.

    Rotate by prepending a new key, deploying, running this, then dropping the old key.
    """

    box = _box()
    count = 0
    with db.session_scope() as s:
        for ws in s.scalars(select(Workspace)):
            ws.signing_secrets_encrypted = box.rotate(ws.signing_secrets_encrypted)
            count += 1
        for conn in s.scalars(select(Connection)):
            if conn.credentials_encrypted:
                conn.credentials_encrypted = box.rotate(conn.credentials_encrypted)
                count += 1
            # Encrypted values kept in meta (a Stripe status sync endpoint's signing secret).
            encrypted = {k: v for k, v in (conn.meta or {}).items() if k.endswith("_encrypted")}
            if any(encrypted.values()):
                conn.meta = {
                    **conn.meta,
                    **{k: box.rotate(v) for k, v in encrypted.items() if v},
                }
                count += sum(1 for v in encrypted.values() if v)
    click.echo(f"re-encrypted {count} secret(s) under the newest key")


@metrics_cli.command("serve")
@click.option("--host", default=None, help="Listen address (default METRICS_HOST).")
@click.option("--port", default=None, type=int, help="Listen port (default METRICS_PORT).")
def metrics_serve(host: str | None, port: int | None) -> None:
    """Serve /metrics without a token on an internal address (for a Prometheus next to us)."""

    host = host or str(current_app.config["METRICS_HOST"])
    port = port or int(current_app.config["METRICS_PORT"])
    click.echo(f"metrics on http://{host}:{port}/metrics (Ctrl+C stops)")
    metrics.serve(host, port)


@metrics_cli.command("show")
def metrics_show() -> None:
    """Print the metrics text once (what a scrape would get)."""

    click.echo(metrics.render_metrics().decode(), nl=False)


def config_command() -> click.Command:
    @click.command("config")
    def show_config() -> None:
        """Print every environment variable, its default and meaning (Markdown)."""
        declared = current_app.extensions.get("declared_settings", declared_settings())
        click.echo(settings_table_markdown(declared))

    return show_config


def register_cli(app: Flask) -> None:
    for group in (db_cli, workspaces_cli, events_cli, jobs_cli, secrets_cli, metrics_cli):
        app.cli.add_command(group)
    app.cli.add_command(config_command())

    app.cli.add_command(mappings_cli)
    app.cli.add_command(drafts_cli)
    app.cli.add_command(tracker_cli)

    app.cli.add_command(provider_status_cli)

    app.cli.add_command(admins_cli)
