"""Every environment variable the service reads, its default and its meaning, in one place.

The README's configuration table is generated from ``SETTINGS`` (``flask --app connector config``),
so the two cannot drift apart.
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = Path(os.environ.get("INSTANCE_PATH", PROJECT_ROOT / "instance"))

# Development defaults. In production they are refused: see ``production_problems``.
DEV_SECRET_KEY = "dev-only-insecure-secret-key"
DEV_TOKEN_KEY = "ZGV2LW9ubHktaW5zZWN1cmUtdG9rZW4ta2V5LTMyYnk="


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    meaning: str
    secret: bool = False
    required_in_production: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "APP_ENV",
        "development",
        "Exactly `development`, `test` or `production`: anything else (`Production`, `prod`, "
        "` production`) refuses to start, web and worker, naming the value. Production refuses "
        "to start (web and worker exit non-zero) with default, missing or weak secrets and "
        "names each one, and sends HSTS.",
    ),
    Setting(
        "DATABASE_URL",
        f"sqlite:///{INSTANCE_DIR}/timesheet-invoicer.db",
        "SQLAlchemy URL of the database. `postgres://` and `postgresql://` URLs (Heroku style) "
        "are used with psycopg 3.",
    ),
    Setting(
        "QUEUE_URL",
        f"sqlite:///{INSTANCE_DIR}/queue.db",
        "Where huey keeps its queue: `sqlite:///path`, `redis://host:port/db` or `memory://` "
        "(tests). Falls back to `REDIS_URL` when unset.",
    ),
    Setting(
        "REDIS_URL",
        None,
        "Heroku-style Redis URL; used as the queue when `QUEUE_URL` is unset, "
        "and for the shared provider rate limiter and failed sign-in counters.",
    ),
    Setting(
        "SECRET_KEY",
        DEV_SECRET_KEY,
        "Signs admin sessions and CSRF tokens. Production wants at least 32 random characters.",
        secret=True,
        required_in_production=True,
    ),
    Setting(
        "TOKEN_ENCRYPTION_KEYS",
        DEV_TOKEN_KEY,
        "Comma-separated Fernet keys (`python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'`). The first encrypts; all decrypt, so keys "
        "rotate by prepending a new one and running `flask --app connector secrets reencrypt`.",
        secret=True,
        required_in_production=True,
    ),
    Setting(
        "PUBLIC_BASE_URL",
        "http://127.0.0.1:5000",
        "The address the world reaches this service at: webhook URLs and OAuth redirect URIs "
        "are built from it.",
        required_in_production=True,
    ),
    Setting(
        "ADMIN_LOGIN_FAILURES_PER_ACCOUNT",
        "10 per 15 minutes",
        "Failed console sign-ins allowed per account (email) in a window; more are refused "
        "with 429 until it ends, even with the right password. Counted in Redis when "
        "`REDIS_URL` is set, else in the database, so every process shares the count.",
    ),
    Setting(
        "ADMIN_LOGIN_FAILURES_PER_ADDRESS",
        "30 per 15 minutes",
        "Failed console sign-ins allowed per client address in a window (any accounts).",
    ),
    Setting(
        "TRUSTED_PROXY_HOPS",
        "0",
        "How many proxies in front of the app set `X-Forwarded-For`/`-Proto` (1 on Heroku or "
        "behind one load balancer). 0 trusts none: the client address is the socket's peer.",
    ),
    Setting("WEBHOOK_MAX_BODY_BYTES", "1048576", "Largest inbound event accepted (413 above it)."),
    Setting("WEBHOOK_TOLERANCE_SECONDS", "300", "How far a `webhook-timestamp` may be from now."),
    Setting(
        "JOB_LEASE_SECONDS",
        "20",
        "How long a job's lease lasts without a heartbeat. A live worker renews it every third "
        "of this, however long the job takes; a killed worker's job is handed to the next free "
        "worker at most this long (plus `JOB_POLL_SECONDS`) after its last heartbeat.",
    ),
    Setting("JOB_MAX_ATTEMPTS", "15", "Attempts before a job fails for good (it can be retried)."),
    Setting(
        "JOB_RETRY_BASE_SECONDS", "10", "First retry delay; doubles each attempt, with jitter."
    ),
    Setting("JOB_RETRY_MAX_SECONDS", "3600", "Longest delay between two attempts."),
    Setting(
        "JOB_POLL_SECONDS",
        "1",
        "How often each worker process looks for due jobs and jobs whose worker died "
        "(the jobs table, not the queue, is the source of truth).",
    ),
    Setting(
        "WORKER_IMMEDIATE",
        "false",
        "`true` runs queued tasks inline in the web process "
        "(development without a worker; no delayed retries).",
    ),
    Setting(
        "STATUS_RECONCILE_MINUTES",
        "60",
        "How often each workspace's open drafts are read again from the provider (webhooks get "
        "lost); `0` turns the periodic reconcile off.",
    ),
    Setting("LOG_LEVEL", "INFO", "Python logging level."),
    Setting(
        "LOG_FORMAT",
        "text",
        "`text`, or `json` for one JSON object per line carrying the workspace, delivery, job "
        "and timesheet ids of the work being done (never secrets).",
    ),
    Setting(
        "METRICS_TOKEN",
        None,
        "Bearer token that `GET /metrics` (Prometheus) requires on the web app; unset, the web "
        "app answers 404 there and `flask --app connector metrics serve` serves the metrics "
        "on an internal address instead.",
        secret=True,
    ),
    Setting(
        "METRICS_HOST",
        "127.0.0.1",
        "Address `flask --app connector metrics serve` listens on (keep it internal).",
    ),
    Setting("METRICS_PORT", "9464", "Port `flask --app connector metrics serve` listens on."),
    Setting(
        "PROMETHEUS_MULTIPROC_DIR",
        None,
        "An empty directory shared by every web and worker process of one machine (emptied "
        "before they start): each process writes its counters there so any scrape adds them "
        "up. Unset, each process counts alone.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def _get(env: Mapping[str, str], name: str, setting: Setting | None = None) -> str | None:
    value = env.get(name)
    if value is None or value == "":
        return (setting or _BY_NAME[name]).default
    return value


def normalize_database_url(url: str) -> str:
    # Heroku and many hosts hand out postgres:// URLs; SQLAlchemy wants an explicit driver.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def load_config(
    env: Mapping[str, str] | None = None, extra: Sequence[Setting] = ()
) -> dict[str, Any]:
    """Read the environment into a flat dict usable as Flask config and by the worker.

    ``extra``: settings declared elsewhere (each provider declares its own; the composition root
    passes them, so this module needs no registry)."""
    env = os.environ if env is None else env
    queue_url = env.get("QUEUE_URL") or env.get("REDIS_URL") or _get(env, "QUEUE_URL")
    config: dict[str, Any] = {
        "APP_ENV": _get(env, "APP_ENV"),
        "DATABASE_URL": normalize_database_url(str(_get(env, "DATABASE_URL"))),
        "QUEUE_URL": queue_url,
        "REDIS_URL": env.get("REDIS_URL") or None,
        "SECRET_KEY": _get(env, "SECRET_KEY"),
        "TOKEN_ENCRYPTION_KEYS": [
            k.strip() for k in str(_get(env, "TOKEN_ENCRYPTION_KEYS")).split(",") if k.strip()
        ],
        "PUBLIC_BASE_URL": str(_get(env, "PUBLIC_BASE_URL")).rstrip("/"),
        "ADMIN_LOGIN_FAILURES_PER_ACCOUNT": _get(env, "ADMIN_LOGIN_FAILURES_PER_ACCOUNT"),
        "ADMIN_LOGIN_FAILURES_PER_ADDRESS": _get(env, "ADMIN_LOGIN_FAILURES_PER_ADDRESS"),
        "TRUSTED_PROXY_HOPS": int(str(_get(env, "TRUSTED_PROXY_HOPS"))),
        "WEBHOOK_MAX_BODY_BYTES": int(str(_get(env, "WEBHOOK_MAX_BODY_BYTES"))),
        "WEBHOOK_TOLERANCE_SECONDS": int(str(_get(env, "WEBHOOK_TOLERANCE_SECONDS"))),
        "JOB_LEASE_SECONDS": int(str(_get(env, "JOB_LEASE_SECONDS"))),
        "JOB_MAX_ATTEMPTS": int(str(_get(env, "JOB_MAX_ATTEMPTS"))),
        "JOB_RETRY_BASE_SECONDS": float(str(_get(env, "JOB_RETRY_BASE_SECONDS"))),
        "JOB_RETRY_MAX_SECONDS": float(str(_get(env, "JOB_RETRY_MAX_SECONDS"))),
        "JOB_POLL_SECONDS": float(str(_get(env, "JOB_POLL_SECONDS"))),
        "WORKER_IMMEDIATE": _truthy(_get(env, "WORKER_IMMEDIATE")),
        "STATUS_RECONCILE_MINUTES": float(str(_get(env, "STATUS_RECONCILE_MINUTES"))),
        "LOG_LEVEL": _get(env, "LOG_LEVEL"),
        "LOG_FORMAT": _get(env, "LOG_FORMAT"),
        "METRICS_TOKEN": _get(env, "METRICS_TOKEN"),
        "METRICS_HOST": _get(env, "METRICS_HOST"),
        "METRICS_PORT": int(str(_get(env, "METRICS_PORT"))),
    }
    for setting in extra:
        config[setting.name] = _get(env, setting.name, setting)
    # The prefixes of the settings the providers and tracker sources declare: their other
    # variables pass through untouched too.
    prefixes = tuple({setting.name.split("_", 1)[0] + "_" for setting in extra})
    # Base URLs may be overridden (tests, local fakes): pass through any *_BASE_URL / *_URL
    # variable under the declared prefixes untouched.
    for name, value in env.items():
        if prefixes and name.startswith(prefixes) and name not in config:
            config[name] = value
    return config


APP_ENVS = ("development", "test", "production")
# A secret a person typed ("changeme", "secret-key-12345", "aaaa...", "0123456789" x 4) fails one
# of these; 32 random characters from any of the usual alphabets pass all of them.
MIN_SECRET_KEY_LENGTH = 32
MIN_DISTINCT_CHARACTERS = 10
MIN_SECRET_BITS = 128
# Keys published in this repository: anyone can sign a session with them.
PUBLIC_SECRET_KEYS = frozenset({DEV_SECRET_KEY, "test-secret-key", "change-me", "changeme"})
_CHARACTER_CLASSES = (
    (str.isdigit, 10),
    (str.islower, 26),
    (str.isupper, 26),
)


def _smallest_period(text: str) -> int:
    """The length of the shortest block ``text`` repeats (its own length when it repeats none)."""
    for period in range(1, len(text) // 2 + 1):
        if all(text[i] == text[i - period] for i in range(period, len(text))):
            return period
    return len(text)


def _predictable(secret: str, i: int) -> bool:
    """Whether character ``i`` follows from the ones before it: it repeats the previous one,
    continues an arithmetic run one or two apart ("abc", "9876", "aAbBcC"), or ends a
    three-character block seen before ("x7Kp...x7Kp")."""
    code = [ord(c) for c in secret[: i + 1]]
    if i >= 1 and code[i] == code[i - 1]:
        return True
    for lag in (1, 2):
        if i >= 2 * lag and code[i] - code[i - lag] == code[i - lag] - code[i - 2 * lag]:
            return True
    return i >= 3 and secret[i - 2 : i + 1] in secret[:i]


def estimated_bits(secret: str) -> float:
    """A cautious estimate of a secret's entropy: each character is worth log2 of the alphabet
    its classes span (digits 10, lower 26, upper 26, anything else 33), except one that follows
    from those before it (:func:`_predictable`), which is worth one bit."""
    if not secret:
        return 0.0
    pool = sum(size for test, size in _CHARACTER_CLASSES if any(test(c) for c in secret))
    if any(not (c.isascii() and c.isalnum()) for c in secret):
        pool += 33
    per_char = math.log2(max(pool, 2))
    return sum(1.0 if _predictable(secret, i) else per_char for i in range(len(secret)))


def _secret_key_problem(secret: str) -> str | None:
    if not secret or secret in PUBLIC_SECRET_KEYS:
        return "SECRET_KEY is missing or still the development default"
    fix = (
        f"use at least {MIN_SECRET_KEY_LENGTH} random characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
    )
    if len(secret) < MIN_SECRET_KEY_LENGTH:
        return f"SECRET_KEY is too short ({len(secret)} characters): {fix}"
    if _smallest_period(secret) < len(secret):
        return f"SECRET_KEY repeats a pattern: {fix}"
    if len(set(secret)) < MIN_DISTINCT_CHARACTERS or estimated_bits(secret) < MIN_SECRET_BITS:
        return f"SECRET_KEY is predictable (runs, repeats or too few kinds of character): {fix}"
    return None


def _weak_fernet_key(key: str) -> bool:
    """Not a Fernet key, or 32 bytes nobody drew at random (b"\\0" * 32, a repeated pattern)."""
    try:
        raw = base64.urlsafe_b64decode(key.encode())
    except (ValueError, TypeError):
        return True
    return len(raw) != 32 or len(set(raw)) < 16


def production_problems(config: Mapping[str, Any]) -> list[str]:
    """Why this configuration must not run in production (empty when it may)."""
    problems = []
    secret_problem = _secret_key_problem(str(config.get("SECRET_KEY") or ""))
    if secret_problem:
        problems.append(secret_problem)
    keys = config.get("TOKEN_ENCRYPTION_KEYS") or []
    if not keys or DEV_TOKEN_KEY in keys:
        problems.append("TOKEN_ENCRYPTION_KEYS is missing or still holds the development default")
    elif any(_weak_fernet_key(key) for key in keys):
        problems.append(
            "TOKEN_ENCRYPTION_KEYS holds a key that is not a random Fernet key "
            "(python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        )
    base = str(config.get("PUBLIC_BASE_URL") or "")
    if not base or base == _BY_NAME["PUBLIC_BASE_URL"].default:
        problems.append("PUBLIC_BASE_URL is missing or still the development default")
    elif not base.startswith("https://"):
        problems.append("PUBLIC_BASE_URL must be an https:// address in production")
    return problems


class ConfigurationError(RuntimeError):
    pass


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse to start (web and worker: both build their app with ``create_app``) when
    ``APP_ENV`` is not exactly one of :data:`APP_ENVS`, or production has unsafe settings.

    "Production", "prod" or " production" must not quietly mean development with its public
    secrets: anything but the three exact names is refused, and named.
    """
    app_env = config.get("APP_ENV")
    if app_env not in APP_ENVS:
        raise ConfigurationError(
            f"Refusing to start: APP_ENV is {app_env!r}; it must be exactly 'development', "
            "'test' or 'production' (lower case, no spaces). See README, Configuration."
        )
    if app_env != "production":
        return
    problems = production_problems(config)
    if problems:
        raise ConfigurationError(
            "Refusing to start in production: "
            + "; ".join(problems)
            + ". See README, Configuration."
        )


def settings_table_markdown(extra: Sequence[Setting] = ()) -> str:
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for s in (*SETTINGS, *extra):
        default = "(none)" if s.default is None else f"`{s.default}`"
        if s.name in {"DATABASE_URL", "QUEUE_URL"}:
            default = default.replace(str(INSTANCE_DIR), "instance")
        if s.secret and s.default:
            default = "development-only value (refused in production)"
        rows.append(f"| `{s.name}` | {default} | {s.meaning} |")
    return "\n".join(rows)
