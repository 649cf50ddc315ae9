"""The composition root: builds the Flask app and plugs every package into the core.

This module (and the CLI it registers) is the only place allowed to import every layer: the
console, the API, the inbound sources and mappings. The core (models, billing, providers, jobs,
pipeline) reaches them only through registries filled here (``connector.trackers``,
``connector.status_sync.EVENT_READERS``, ``connector.worker.HANDLERS``). The layers are
written down as import-linter contracts in ``pyproject.toml`` (``lint-imports``).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

from flask import Flask, g, has_app_context, request
from flask_wtf.csrf import CSRFProtect
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, RequestURITooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

# The job handlers register on import: pipeline (process_delivery, bill/rebill), status_sync.
from connector import (
    auth,
    books,
    db,
    health,
    metrics,
    observability,
    pipeline,
    ratelimit,
    security,
    status_sync,
    trackers,
    worker,
)
from connector.admin import bp as admin_bp
from connector.admin import connections as admin_connections
from connector.admin.errors import MAX_URL_CHARS, error_page
from connector.admin.mappings import bp as mappings_bp
from connector.api import bp as api_bp
from connector.auth import login_manager
from connector.cli import register_cli
from connector.config import INSTANCE_DIR, Setting, check_config, load_config
from connector.problems import Problem, problem_response
from connector.providers import PROVIDERS, declared_settings, web_kit
from connector.ratelimit import RedisRateLimiter
from connector.ratelimit_db import DatabaseRateLimiter
from connector.throttle import LoginThrottle, make_storage
from webhooks import polling, provider_receiver, tracker_cli
from webhooks.receiver import bp as webhooks_bp

__all__ = ["create_app", "csrf", "pipeline", "status_sync"]

csrf = CSRFProtect()
# The tracker sources: one line each, the module whose ``setup(app)`` registers the source
# (``connector.trackers``). The first is the default of a new workspace.
TRACKER_SOURCES = ("webhooks.webwork.setup", "webhooks.clockify.setup")
# What a 503 tells a client (a webhook sender, an API caller) to wait while a dependency restarts.
DEPENDENCY_RETRY_AFTER_SECONDS = 5


def tracker_settings() -> tuple[Setting, ...]:
    """The environment variables each tracker source declares (``<its package>.settings``)."""
    found: list[Setting] = []
    for module in TRACKER_SOURCES:
        package = module.rsplit(".", 1)[0]
        if importlib.util.find_spec(f"{package}.settings") is not None:
            found += importlib.import_module(f"{package}.settings").SETTINGS
    return tuple(found)


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    declared = (*declared_settings(), *tracker_settings())
    config = load_config(extra=declared)
    if overrides:
        config.update(overrides)
    check_config(config)

    app = Flask(__name__, instance_path=str(INSTANCE_DIR), instance_relative_config=False)
    app.config.update(config)
    app.extensions["declared_settings"] = declared  # ``flask config`` prints them
    app.config["MAX_CONTENT_LENGTH"] = config["WEBHOOK_MAX_BODY_BYTES"]
    # Flask defines both keys (SAMESITE as None), so setdefault would keep Flask's values.
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = config["PUBLIC_BASE_URL"].startswith("https://")
    app.config["WTF_CSRF_TIME_LIMIT"] = None  # tokens live as long as the session
    observability.configure_logging(config)

    db.init_engine(config["DATABASE_URL"])
    security.install(app)  # before any blueprint adds an <int:...> rule

    redis_url = config.get("REDIS_URL") or (
        config["QUEUE_URL"] if str(config["QUEUE_URL"]).startswith("redis") else None
    )
    ratelimit.configure(RedisRateLimiter(redis_url) if redis_url else DatabaseRateLimiter())
    app.extensions["login_throttle"] = LoginThrottle(
        make_storage(redis_url),
        per_account=str(config["ADMIN_LOGIN_FAILURES_PER_ACCOUNT"]),
        per_address=str(config["ADMIN_LOGIN_FAILURES_PER_ADDRESS"]),
    )
    hops = int(config.get("TRUSTED_PROXY_HOPS") or 0)
    if hops:
        # The client address (sign-in throttling, logs) and scheme from the proxies' headers.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    csrf.init_app(app)
    login_manager.init_app(app)

    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(mappings_bp)
    # Machine-to-machine routes authenticate by signature or bearer token, not cookies.
    csrf.exempt(webhooks_bp)
    csrf.exempt(api_bp)

    register_cli(app)
    # The queue and its tasks, built from this app's configuration (its own, not a copy).
    runtime = worker.install(app, lambda: nullcontext() if has_app_context() else app.app_context())

    @app.before_request
    def _serve_with_this_apps_worker() -> None:
        g.worker_runtime_token = runtime.activate()

    @app.teardown_request
    def _done_with_this_apps_worker(_exc: BaseException | None) -> None:
        token = g.pop("worker_runtime_token", None)
        if token is not None:
            runtime.deactivate(token)

    # Tracker sources plug themselves in (routes, the core's registry); their poll jobs and
    # their own CLI commands are then wired from what they registered.
    for module in TRACKER_SOURCES:
        importlib.import_module(module).setup(app)
    for name in trackers.SOURCES:
        polling.install(name)
    tracker_cli.add_source_commands()
    # Each provider plugs in its connect pages, its status-event receiver and how the core reads
    # which invoices a stored event names: one registry line each (connector/providers).
    kit = provider_web_kit()
    web_kit.install(app, kit)
    for info in PROVIDERS.values():
        if info.books_noun:
            books.register_noun(info.key, info.books_noun)
        if info.web:
            importlib.import_module(info.web).setup(app, kit)
    _register_error_handlers(app)

    @app.teardown_appcontext
    def _remove_session(_exc: BaseException | None) -> None:
        db.session.remove()

    return app


def provider_web_kit() -> web_kit.WebKit:
    """What a provider's web pieces get from the app instead of importing it (see web_kit)."""
    return web_kit.WebKit(
        csrf=csrf,
        allow_public=auth.allow_public,
        register_event_reader=status_sync.register_event_reader,
        register_openapi=provider_receiver.register_openapi,
        confirm_disconnect=admin_connections.confirm_disconnect,
        return_after_connect=admin_connections.return_after_connect,
        # Looked up when called, so a test (or a later re-wiring) replaces it in one place.
        connection_restored=lambda workspace_id: pipeline.on_connection_restored(workspace_id),
        read_body=provider_receiver.read_body,
        connected_workspaces=provider_receiver.connected_workspaces,
        accept_event=provider_receiver.accept,
        configured_secrets=provider_receiver.configured_secrets,
        malformed=provider_receiver.malformed,
        unauthorized=provider_receiver.unauthorized,
        ignored=provider_receiver.ignored,
    )


def _wants_problem_json() -> bool:
    return request.path.startswith(("/api/", "/webhooks/")) or (
        request.accept_mimetypes.best == "application/json"
    )


def _extra_headers(exc: HTTPException) -> list[tuple[str, str]]:
    return [(name, value) for name, value in exc.get_headers() if name.lower() != "content-type"]


def _register_error_handlers(app: Flask) -> None:
    @app.before_request
    def _refuse_long_urls() -> None:
        if len(request.full_path) > MAX_URL_CHARS and not _wants_problem_json():
            raise RequestURITooLarge()

    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Any:
        return exc.response()

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        if _wants_problem_json():
            response = problem_response(
                {
                    "type": "about:blank",
                    "title": exc.name,
                    "status": exc.code,
                    "detail": exc.description,
                },
                exc.code or 500,
            )
            # Keep what the exception says besides its body: Allow on 405, Retry-After on 429.
            for name, value in _extra_headers(exc):
                response.headers[name] = value
            return response
        if exc.code is None or exc.code < 400:
            return exc  # redirects raised as exceptions (e.g. RequestRedirect)
        own_words = exc.description if exc.description != type(exc).description else None
        page, status = error_page(exc.code, own_words)
        return (
            page,
            status,
            {**dict(_extra_headers(exc)), "Content-Type": "text/html; charset=utf-8"},
        )

    @app.errorhandler(OperationalError)
    @app.errorhandler(RedisConnectionError)
    @app.errorhandler(RedisTimeoutError)
    def _dependency_down(exc: Exception) -> Any:
        # The database or Redis is down or restarting: nothing of the request was kept, and the
        # pool reconnects by itself (pre-ping), so "try again shortly" is the truth, not a 500.
        app.logger.warning("dependency unavailable: %s", type(exc).__name__)
        db.session.rollback()
        headers = {"Retry-After": str(DEPENDENCY_RETRY_AFTER_SECONDS)}
        if _wants_problem_json():
            response = problem_response(
                {
                    "type": "about:blank",
                    "title": "Service unavailable",
                    "status": 503,
                    "detail": "The database or queue is briefly unreachable; nothing you sent "
                    "was kept. Send it again shortly.",
                },
                503,
            )
            response.headers.update(headers)
            return response
        page, status = error_page(503)
        return page, status, headers

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        # The route's pattern, not the path: webhook URLs carry their endpoint token.
        rule = request.url_rule.rule if request.url_rule else "(no route)"
        app.logger.exception("unhandled error on %s %s", request.method, rule)
        db.session.rollback()
        body = {
            "type": "about:blank",
            "title": "Internal error",
            "status": 500,
            "detail": "Something went wrong on our side; nothing you sent was lost.",
        }
        if _wants_problem_json():
            return problem_response(body, 500)
        return error_page(500)
