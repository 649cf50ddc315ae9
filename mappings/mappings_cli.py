"""``flask --app connector mappings ...``: see and fix mappings from a terminal.

mappings list WORKSPACE_ID                 every client/project seen and where it bills
mappings create-customers WORKSPACE_ID     create the accounting customer of every unmapped
                                           client and map it (holds then release themselves)
mappings map-exact-matches WORKSPACE_ID    map every client/project with exactly one customer
                                           of the same name (or old customer's name) or email
mappings history WORKSPACE_ID              mappings made in other books (kept, not used)
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from connector import db
from connector.models import Workspace
from connector.providers import build_provider
from connector.providers.base import DuplicateCustomer, NewCustomer, ProviderError, Rejected
from connector.validation import iso_currency
from mappings import service

mappings_cli = AppGroup("mappings", help="List and create customer mappings.")


def _workspace(workspace_id: int) -> Workspace:
    ws = db.session.get(Workspace, workspace_id)
    if ws is None:
        raise click.ClickException(f"no workspace with id {workspace_id}")
    return ws


@mappings_cli.command("list")
@click.argument("workspace_id", type=int)
def list_mappings(workspace_id: int) -> None:
    """Every tracker client and project seen in approvals, with its accounting customer."""
    _workspace(workspace_id)
    rows = service.list_entities(db.session, workspace_id)
    if not rows:
        click.echo("no clients or projects seen yet: send an approval first")
    for row in rows:
        target = row.effective
        where = (
            f"-> {target.customer_name} ({target.customer_id})"
            + (" via its client" if row.mapping is None else "")
            if target
            else "unmapped"
        )
        click.echo(f"{row.kind:8} {row.tracker_id:16} {row.name:32} {where}")


@mappings_cli.command("create-customers")
@click.argument("workspace_id", type=int)
@click.option(
    "--currency",
    default=None,
    help="Currency of every new customer (ISO code). Default: each client's own, the currency "
    "its approved rows are priced in, else the workspace's default currency.",
)
def create_customers(workspace_id: int, currency: str | None) -> None:
    """Create (or link, if the name exists) a customer for every unmapped tracker client."""
    if currency is not None:
        try:
            currency = iso_currency(currency)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--currency") from None
    ws = _workspace(workspace_id)
    provider = build_provider(ws.id, ws.provider, current_app.config)
    created = 0
    refused: list[str] = []
    for row in service.list_entities(db.session, workspace_id):
        if row.kind != "client" or row.mapping is not None:
            continue
        wanted = (currency or "").strip().upper() or service.billing_currency(
            db.session, workspace_id, "client", row.tracker_id
        )
        try:
            customer = provider.create_customer(
                NewCustomer(
                    name=row.name, email=row.email, currency=wanted, tracker_id=row.tracker_id
                )
            )
        except DuplicateCustomer as exc:
            if exc.existing is None:
                refused.append(f"{row.name}: {exc}")
                continue
            customer = exc.existing
        except Rejected as exc:
            # One client the books refuse (e.g. a foreign currency with multicurrency off) must
            # not keep the others unmapped: say why, go on, and fail at the end.
            refused.append(f"{row.name}: {exc}")
            continue
        except ProviderError as exc:
            raise click.ClickException(f"{row.name}: {exc}") from None
        service.map_to(
            db.session,
            workspace_id,
            kind="client",
            tracker_id=row.tracker_id,
            customer=customer,
            currency=wanted,
        )
        db.session.commit()
        created += 1
        shown = customer.currency or wanted
        click.echo(f"client {row.tracker_id} -> {customer.name} ({customer.id}, {shown})")
    released = service.after_change(workspace_id) if created else 0
    click.echo(f"{created} client(s) mapped; {released} held approval(s) re-billed")
    if refused:
        raise click.ClickException("not created:\n  " + "\n  ".join(refused))


@mappings_cli.command("map-exact-matches")
@click.argument("workspace_id", type=int)
def map_exact_matches(workspace_id: int) -> None:
    """After a switch of books (or any time): map every unmapped client/project with exactly
    one customer of the same name (or its old customer's name) or email, in one step."""
    ws = _workspace(workspace_id)
    try:
        customers = service.fetch_customers(build_provider(ws.id, ws.provider, current_app.config))
        mapped = service.map_exact_matches(
            db.session, workspace_id, service.list_entities(db.session, workspace_id), customers
        )
    except (ProviderError, service.MappingError) as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    for row, customer in mapped:
        click.echo(f"{row.kind} {row.tracker_id} ({row.name}) -> {customer.name} ({customer.id})")
    released = service.after_change(workspace_id) if mapped else 0
    click.echo(f"{len(mapped)} mapped; {released} held approval(s) re-billed")


@mappings_cli.command("history")
@click.argument("workspace_id", type=int)
def history(workspace_id: int) -> None:
    """Mappings made in other books than the workspace bills to now."""
    _workspace(workspace_id)
    rows = service.history(db.session, workspace_id)
    if not rows:
        click.echo("no mappings of other books")
    for old in rows:
        m = old.mapping
        click.echo(
            f"{m.kind:8} {old.tracker_name} ({m.tracker_id}) -> {m.customer_name}"
            f" ({m.customer_id}) in {old.books}"
        )
