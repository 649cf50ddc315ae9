"""Health probes and configuration rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connector import create_app, worker
from connector.config import (
    DEV_SECRET_KEY,
    ConfigurationError,
    check_config,
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
        check_config(config)
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
    check_config(config)
    assert config["SECRET_KEY"] != DEV_SECRET_KEY


def test_create_app_refuses_production_with_defaults(database_url) -> None:
    with pytest.raises(ConfigurationError):
        create_app({"APP_ENV": "production", "DATABASE_URL": database_url})


def test_readme_configuration_table_is_the_generated_one() -> None:
    """The README's table is `flask --app connector config`'s output: a variable added to
    connector/config.py without regenerating the README fails here, not in a user's deployment."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    from connector.app import tracker_settings
    from connector.providers import declared_settings

    declared = (*declared_settings(), *tracker_settings())
    assert settings_table_markdown(declared).strip() in readme


# --- issue 20 item 6: APP_ENV exactly, and no predictable secret in production ------------------
@pytest.mark.parametrize("app_env", ["Production", "prod", " production", "production ", "staging"])
def test_an_app_env_that_is_not_exactly_one_of_three_refuses_to_start(
    database_url: str, app_env: str
) -> None:
    from tests.app_fixtures import app_overrides

    with pytest.raises(ConfigurationError) as err:
        create_app({**app_overrides(database_url), "APP_ENV": app_env})
    assert repr(app_env) in str(err.value)  # named as it was given, spaces and all
    assert "'development', 'test' or 'production'" in str(err.value)


@pytest.mark.parametrize(
    ("secret", "words"),
    [
        ("0123456789" * 4, "repeats a pattern"),
        ("abcdefghijklmnopqrstuvwxyz0123456789", "predictable"),
        ("aAbBcCdDeEfFgGhHiIjJkKlLmMnNoOpPqQ", "predictable"),
        ("Password1Password2Password3Pass!", "predictable"),
        (DEV_SECRET_KEY, "development default"),
        ("test-secret-key", "development default"),  # the test suite's, public too
        ("x" * 31, "too short"),
    ],
)
def test_production_refuses_a_predictable_secret_key(secret: str, words: str) -> None:
    import base64

    from connector.config import production_problems

    problems = production_problems(
        {
            "SECRET_KEY": secret,
            "TOKEN_ENCRYPTION_KEYS": [base64.urlsafe_b64encode(bytes(range(32))).decode()],
            "PUBLIC_BASE_URL": "https://invoicer.example.com",
        }
    )
    assert len(problems) == 1 and problems[0].startswith("SECRET_KEY") and words in problems[0]


def test_random_secret_keys_pass() -> None:
    import secrets

    from connector.config import production_problems

    for _ in range(200):
        for key in (secrets.token_urlsafe(48), secrets.token_urlsafe(24), secrets.token_hex(32)):
            config = {
                "SECRET_KEY": key,
                "TOKEN_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
                "PUBLIC_BASE_URL": "https://invoicer.example.com",
            }
            assert production_problems(config) == [], key


@pytest.mark.slow
def test_the_worker_refuses_an_app_env_that_is_not_exactly_one_of_three(tmp_path) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {
        **os.environ,
        "APP_ENV": "prod",
        "QUEUE_URL": f"sqlite:///{tmp_path / 'queue.db'}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "huey.bin.huey_consumer", "connector.consumer.huey", "-w", "1"],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "APP_ENV is 'prod'" in result.stderr + result.stdout
