"""Alembic environment: runs against connector.db's engine and the models' metadata."""

from __future__ import annotations

from alembic import context

import connector.models  # noqa: F401 - registers every table on Base.metadata
import mappings  # noqa: F401
from connector import db

target_metadata = db.Base.metadata


def run_migrations_online() -> None:
    connectable = context.config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    with db.engine().connect() as connection:
        _run(connection)


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    # Migrations must not import the app's column types: render them as their plain SQL types.
    from connector.db import DecimalString
    from connector.models import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, DecimalString):
        return "sa.String(length=40)"
    return False


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        render_item=_render_item,
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()


run_migrations_online()
