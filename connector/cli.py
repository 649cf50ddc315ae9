"""Operator commands: ``flask --app connector ...``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from connector import migrate

db_cli = AppGroup("db", help="Create or upgrade the database schema.")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head). Safe to run on every deploy."""
    migrate.upgrade(revision)
    click.echo(f"database upgraded to {revision}")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    migrate.downgrade(revision)


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models."""
    migrate.revision(message)


@db_cli.command("current")
def db_current() -> None:
    migrate.current()


def register_cli(app: Flask) -> None:
    app.cli.add_command(db_cli)
