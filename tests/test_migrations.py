"""Migrations build the schema from empty on SQLite and PostgreSQL, match the models, and revert."""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from connector import db
from connector import migrate as migrations

PG_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1/postgres")


def _pg_available() -> bool:
    try:
        with create_engine(PG_URL).connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def _fresh_urls(tmp_path) -> list[str]:  # type: ignore[no-untyped-def]
    urls = [f"sqlite:///{tmp_path / 'fresh.db'}"]
    if _pg_available() or os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"):
        urls.append(PG_URL)
    return urls


@pytest.fixture
def restore_engine(database_url: str):  # type: ignore[no-untyped-def]
    yield
    db.init_engine(database_url)


def test_upgrade_from_empty_matches_models_and_downgrades(tmp_path, restore_engine) -> None:
    urls = _fresh_urls(tmp_path)
    if os.environ.get("CI") and len(urls) < 2:
        pytest.fail("CI must check migrations on PostgreSQL too, but it is not reachable")
    for url in urls:
        engine = db.init_engine(url)
        schema = None
        if engine.dialect.name == "postgresql":
            # A private schema so this test never touches the suite's own tables.
            schema = "migration_check"
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            engine.dispose()
            engine = db.init_engine(
                url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
            )
        migrations.upgrade()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.Base.metadata)
            assert diff == [], f"models and migrations differ on {engine.dialect.name}: {diff}"
            tables = set(inspect(conn).get_table_names())
        assert {"workspaces", "deliveries", "jobs", "drafts", "timesheets"} <= tables
        migrations.downgrade("base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        if schema:
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
