"""Migrations build the schema from empty on SQLite and PostgreSQL, match the models, and revert."""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

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


def _engines(tmp_path, schema_name: str = "migration_data_check"):  # type: ignore[no-untyped-def]
    """A fresh SQLite file, and a private PostgreSQL schema (so a test never touches the suite's
    own tables) when PostgreSQL is reachable."""
    for url in _fresh_urls(tmp_path):
        engine = db.init_engine(url)
        schema = None
        if engine.dialect.name == "postgresql":
            # Per process: two checkouts testing at once share the default database.
            schema = f"{schema_name}_{os.getpid()}"
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            engine.dispose()
            engine = db.init_engine(
                url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
            )
        yield engine
        if schema:
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def test_upgrade_from_empty_matches_models_and_downgrades(tmp_path, restore_engine) -> None:
    if os.environ.get("CI") and len(_fresh_urls(tmp_path)) < 2:
        pytest.fail("CI must check migrations on PostgreSQL too, but it is not reachable")
    for engine in _engines(tmp_path, "migration_check"):
        migrations.upgrade()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.Base.metadata)
            assert diff == [], f"models and migrations differ on {engine.dialect.name}: {diff}"
            tables = set(inspect(conn).get_table_names())
        assert {"workspaces", "deliveries", "jobs", "drafts", "timesheets", "invoices"} <= tables
        migrations.downgrade("base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}


# --- 0011: invoices as records, mappings bound to books (issue #18 item 6) ---------------------
NOW = "2026-11-30 09:00:00+00:00"


def _seed_0010(conn) -> None:  # type: ignore[no-untyped-def]
    """A QuickBooks workspace billing per timesheet and per period, as 0010 stored it."""
    run = lambda sql, **kw: conn.execute(text(sql), kw)  # noqa: E731
    run(
        "INSERT INTO workspaces (id, name, tracker_source, tracker_workspace_id, endpoint_token,"
        " signing_secrets_encrypted, auto_invoicing, provider, settings, created_at, updated_at)"
        " VALUES (1, 'Acme', 'webwork', '4242', 'tok', 'x', true, 'quickbooks', '{}', :t, :t)",
        t=NOW,
    )
    run(
        "INSERT INTO connections (id, workspace_id, provider, status, account_id, environment,"
        " account_name, meta, updated_at, connected_at) VALUES (1, 1, 'quickbooks', 'connected',"
        " '9130', 'sandbox', 'Company A', '{}', :t, :t)",
        t=NOW,
    )
    run(
        "INSERT INTO customer_mappings (id, workspace_id, kind, tracker_id, customer_id,"
        " customer_name, created_at, updated_at) VALUES (1, 1, 'client', 'cl-acme', '1',"
        " 'Amy', :t, :t)",
        t=NOW,
    )
    run("INSERT INTO customer_settings (id, workspace_id, customer_id) VALUES (1, 1, '1')")
    for pk, ts in ((1, "ts-1"), (2, "ts-2"), (3, "ts-3")):
        run(
            "INSERT INTO timesheets (id, workspace_id, source, timesheet_id, status, member,"
            " date_from, date_to, revision, summary, created_at, updated_at) VALUES (:pk, 1,"
            " 'webwork', :ts, 'approved', '{}', '2026-11-23', '2026-11-29', 'r', '{}', :t, :t)",
            pk=pk,
            ts=ts,
            t=NOW,
        )
    run(
        "INSERT INTO period_invoices (id, workspace_id, customer_id, currency, period_start,"
        " period_end, seq, key, provider, provider_id, status, created_at) VALUES (5, 1, '1',"
        " 'USD', '2026-11-23', '2026-11-29', 1, 'k-2', 'quickbooks', '301', 'open', :t)",
        t=NOW,
    )
    drafts = (
        # id, timesheet, key, status, total, provider_id, period invoice, provider_status
        (1, 1, "k-1", "drafted", "100.00", "300", None, "sent"),
        (2, 2, "k-2", "drafted", "27.50", "301", 5, "draft"),
        (3, 3, "k-3", "drafted", "13.75", "301", 5, "draft"),
        (4, 3, "k-4", "needs_mapping", None, None, None, None),
    )
    for id_, pk, key, status, total, pid, pinv, pstatus in drafts:
        run(
            "INSERT INTO drafts (id, workspace_id, timesheet_pk, revision, subject_key, key,"
            " status, customer_id, customer_name, currency, total, minutes, lines, provider,"
            " provider_id, attempts, provider_status, period_invoice_id, created_at, updated_at)"
            " VALUES (:id, 1, :pk, 'r', :subject, :key, :status, :cid, 'Amy', 'USD', :total, 60,"
            " '[]', 'quickbooks', :pid, :attempts, :pstatus, :pinv, :t, :t)",
            id=id_,
            pk=pk,
            subject=f"customer:1+{id_}",
            key=key,
            status=status,
            cid=None if status == "needs_mapping" else "1",
            total=total,
            pid=pid,
            attempts=1 if pid else 0,
            pstatus=pstatus,
            pinv=pinv,
            t=NOW,
        )


def test_0011_converts_both_consolidation_modes_without_loss_and_back(
    tmp_path, restore_engine
) -> None:
    for engine in _engines(tmp_path):
        migrations.upgrade("0010_oauth_states")
        with engine.begin() as conn:
            _seed_0010(conn)
        migrations.upgrade("0011_invoices_and_books")
        with engine.connect() as conn:
            invoices = conn.execute(
                text(
                    "SELECT id, mode, books, provider_id, status, total, key, provider_status"
                    " FROM invoices ORDER BY id"
                )
            ).all()
            drafts = dict(conn.execute(text("SELECT id, invoice_id FROM drafts")).all())
            books = conn.execute(text("SELECT books FROM customer_mappings")).scalars().all()
            settings = conn.execute(text("SELECT books FROM customer_settings")).scalars().all()
            named = conn.execute(text("SELECT key, name FROM accounting_books")).all()
        key = "quickbooks:sandbox:9130"
        assert [(i.id, i.mode, i.provider_id, i.status) for i in invoices] == [
            (5, "per_period", "301", "drafted"),  # the period invoice keeps its id
            (6, "per_timesheet", "300", "closed"),  # finance had sent it
        ], engine.dialect.name
        assert [str(i.total) for i in invoices] == ["41.25", "100.00"]
        assert {i.books for i in invoices} == {key} and invoices[0].key == "k-2"
        assert drafts == {1: 6, 2: 5, 3: 5, 4: None}
        assert books == [key] and settings == [key]
        assert named == [(key, "Company A")]
        with engine.begin() as conn:  # a new invoice gets a fresh id on every backend
            conn.execute(
                text(
                    "INSERT INTO invoices (workspace_id, mode, books, provider, customer_id,"
                    " customer_name, currency, period_start, period_end, seq, key, status, total,"
                    " minutes, needs_attention, created_at, updated_at) VALUES (1, 'per_period',"
                    " :b, 'quickbooks', '1', 'Amy', 'USD', '2026-12-01', '2026-12-07', 1, 'k-9',"
                    " 'pending', '0', 0, false, :t, :t)"
                ),
                {"b": key, "t": NOW},
            )

        migrations.downgrade("0010_oauth_states")
        with engine.connect() as conn:
            back = conn.execute(
                text("SELECT id, provider_id, status, key FROM period_invoices ORDER BY id")
            ).all()
            links = dict(conn.execute(text("SELECT id, period_invoice_id FROM drafts")).all())
        assert tuple(back[0]) == (5, "301", "open", "k-2")
        assert links == {1: None, 2: 5, 3: 5, 4: None}
        migrations.downgrade("base")


# --- 0012: customer-scoped rates bound to books (issue #18 follow-up) ----------------------------
def _seed_rates(conn) -> None:  # type: ignore[no-untyped-def]
    """Workspace 1 (QuickBooks company 9130, from _seed_0010) and a ledger workspace 2, each with
    a workspace default and a customer rate."""
    run = lambda sql, **kw: conn.execute(text(sql), kw)  # noqa: E731
    run(
        "INSERT INTO workspaces (id, name, tracker_source, tracker_workspace_id, endpoint_token,"
        " signing_secrets_encrypted, auto_invoicing, provider, settings, created_at, updated_at)"
        " VALUES (2, 'Ledger', 'webwork', '4343', 'tok2', 'x', true, 'local', '{}', :t, :t)",
        t=NOW,
    )
    for id_, ws, customer, amount in ((1, 1, None, "100"), (2, 1, "1", "200"), (3, 2, "6", "90")):
        run(
            "INSERT INTO rates (id, workspace_id, customer_id, amount, currency, created_at)"
            " VALUES (:id, :ws, :customer, :amount, 'USD', :t)",
            id=id_,
            ws=ws,
            customer=customer,
            amount=amount,
            t=NOW,
        )


def test_0012_binds_customer_rates_to_the_current_books_and_back(tmp_path, restore_engine) -> None:
    for engine in _engines(tmp_path):
        migrations.upgrade("0010_oauth_states")
        with engine.begin() as conn:
            _seed_0010(conn)
            _seed_rates(conn)
        migrations.upgrade("0012_rates_bound_to_books")
        with engine.connect() as conn:
            bound = dict(conn.execute(text("SELECT id, books FROM rates")).all())
        assert bound == {1: None, 2: "quickbooks:sandbox:9130", 3: "local"}, engine.dialect.name
        insert = (
            "INSERT INTO rates (id, workspace_id, customer_id, books, amount, currency, created_at)"
            " VALUES (:id, 1, :customer, :books, '1', 'USD', :t)"
        )
        for customer, books in (("1", None), (None, "local")):  # the check refuses both
            with pytest.raises(IntegrityError), engine.begin() as conn:
                conn.execute(
                    text(insert), {"id": 9, "customer": customer, "books": books, "t": NOW}
                )
        with engine.begin() as conn:  # the ledger's rate of workspace 1, from before a switch
            conn.execute(text(insert), {"id": 4, "customer": "6", "books": "local", "t": NOW})

        migrations.downgrade("0011_invoices_and_books")
        with engine.connect() as conn:
            left = conn.execute(text("SELECT id FROM rates ORDER BY id")).scalars().all()
        assert left == [1, 2, 3]  # unbound, the ledger's rate would price QuickBooks' "6"
        migrations.downgrade("base")
