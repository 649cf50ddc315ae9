"""Health probes and configuration rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector import create_app, worker
from connector.config import (
    DEV_SECRET_KEY,
    ConfigurationError,
    check_production,
    load_config,
    normalize_database_url,
    settings_table_markdown,
)


def test_healthz_is_always_up(client) -> None:
    res = client.get("/healthz")
    assert res.status_code == 200 and res.json == {"status": "ok"}


def test_readyz_checks_database_and_queue(client) -> None:
    res = client.get("/readyz")
    assert res.status_code == 200
    assert res.json["checks"] == {"database": "ok", "queue": "ok"}


def test_readyz_is_503_naming_what_is_down(client, monkeypatch) -> None:
    def down() -> None:
        raise ConnectionError("queue down")

    monkeypatch.setattr(worker, "ping_queue", down)
    res = client.get("/readyz")
    assert res.status_code == 503
    assert res.json["checks"]["queue"].startswith("unreachable")


def test_defaults_are_embedded_sqlite() -> None:
    config = load_config({})
    assert config["DATABASE_URL"].startswith("sqlite:///") and "instance" in config["DATABASE_URL"]
    assert config["QUEUE_URL"].startswith("sqlite:///")


def test_heroku_style_urls_are_honoured() -> None:
    config = load_config({"DATABASE_URL": "postgres://u:p@h/db", "REDIS_URL": "redis://r:6379/0"})
    assert config["DATABASE_URL"] == "postgresql+psycopg://u:p@h/db"
    assert config["QUEUE_URL"] == "redis://r:6379/0"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_token_keys_are_a_list_for_rotation() -> None:
    config = load_config({"TOKEN_ENCRYPTION_KEYS": "k1, k2"})
    assert config["TOKEN_ENCRYPTION_KEYS"] == ["k1", "k2"]


def test_production_refuses_default_secrets_and_names_each() -> None:
    config = load_config({"APP_ENV": "production"})
    with pytest.raises(ConfigurationError) as err:
        check_production(config)
    message = str(err.value)
    for name in ("SECRET_KEY", "TOKEN_ENCRYPTION_KEYS", "PUBLIC_BASE_URL"):
        assert name in message


def test_production_starts_with_real_secrets() -> None:
    import secrets

    from cryptography.fernet import Fernet

    config = load_config(
        {
            "APP_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(48),  # "a" * 40 is refused as weak
            "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "PUBLIC_BASE_URL": "https://invoicer.example.com",
        }
    )
    check_production(config)
    assert config["SECRET_KEY"] != DEV_SECRET_KEY


def test_create_app_refuses_production_with_defaults(database_url) -> None:
    with pytest.raises(ConfigurationError):
        create_app({"APP_ENV": "production", "DATABASE_URL": database_url})


def test_readme_configuration_table_is_the_generated_one() -> None:
    """The README's table is `flask --app connector config`'s output: a variable added to
    connector/config.py without regenerating the README fails here, not in a user's deployment."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    from connector.providers import declared_settings

    assert settings_table_markdown(declared_settings()).strip() in readme
