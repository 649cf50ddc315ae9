"""The OAuth2 authorization-code client every connection uses: the authorize URL, the code
exchange, refresh and revoke, on the wire through Authlib (``docs/oauth.md`` says why).

A provider or tracker describes its OAuth app once as an :class:`OAuthApp` (URLs, how the client
authenticates, scopes, what its token answer carries besides the standard fields) and calls the
four functions here. What they add to Authlib is what every caller needs and no library gives:

* every request bounded by a (connect, read) timeout;
* one error type, :class:`OAuthError`, saying whether only a new consent can help (``permanent``:
  ``invalid_grant``, a refused client) or a later try may (unreachable, 5xx, 429, with the
  provider's ``Retry-After`` read by :mod:`connector.retry_after`);
* the credentials dict we store, with absolute expiry times, whatever the provider sends.

No ``requests`` or Authlib exception leaves this module. It reads no table and no Flask state:
providers (below the pipeline) and tracker sources import it alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from connector.retry_after import retry_after

ClientAuth = Literal["client_secret_basic", "client_secret_post"]
# invalid_grant: the code or refresh token is spent, expired or revoked. The others: this app's
# keys or request are refused. Trying again cannot help; an admin must consent again (or an
# operator fix the keys).
PERMANENT_ERRORS = frozenset(
    {
        "invalid_grant",
        "invalid_client",
        "unauthorized_client",
        "invalid_request",
        "invalid_scope",
        "unsupported_grant_type",
        "access_denied",
    }
)
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class OAuthApp:
    """One OAuth2 app registered with a provider: everything the wire calls need.

    ``label`` names the provider in messages (e.g. "Intuit"). ``keep_fields``: fields of
    the token answer kept in the credentials besides the standard ones (an ``id_token``, say).
    ``refresh_scope``: send the scopes again on refresh (some servers want it). ``revoke_body``:
    RFC 7009 says form-encoded; Intuit documents JSON. ``refresh_lifetime_field`` names the answer's
    refresh-token lifetime (Intuit: ``x_refresh_token_expires_in``); ``refresh_lifetime`` is the
    documented one when the answer does not say.
    """

    label: str
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    revoke_url: str | None = None
    scopes: tuple[str, ...] = ()
    client_auth: ClientAuth = "client_secret_basic"
    refresh_scope: bool = False
    revoke_body: Literal["form", "json"] = "form"
    default_expires_in: float = 3600.0
    refresh_lifetime_field: str | None = None
    refresh_lifetime: float | None = None
    keep_fields: tuple[str, ...] = ()
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    read_timeout: float = 30.0

    @property
    def timeout(self) -> tuple[float, float]:
        return (CONNECT_TIMEOUT, self.read_timeout)


class OAuthError(Exception):
    """The provider's token or revoke endpoint refused or failed.

    ``permanent``: only a new consent (or new app keys) can help. ``error``: the OAuth error code
    when the provider sent one. ``retry_after``: seconds the provider asked us to wait, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        error: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.error = error
        self.status = status
        self.retry_after = retry_after


def _session(app: OAuthApp) -> OAuth2Session:
    return OAuth2Session(
        client_id=app.client_id,
        client_secret=app.client_secret,
        token_endpoint_auth_method=app.client_auth,
        revocation_endpoint_auth_method=app.client_auth,
    )


def authorize_url(
    app: OAuthApp, *, redirect_uri: str, state: str, code_verifier: str | None = None
) -> str:
    """Where to send the admin to consent. ``code_verifier``: PKCE (S256) when given."""
    session = OAuth2Session(
        client_id=app.client_id,
        scope=" ".join(app.scopes) or None,
        redirect_uri=redirect_uri,
        code_challenge_method="S256" if code_verifier else None,
    )
    with session:
        url, _ = session.create_authorization_url(
            app.authorize_url, state=state, code_verifier=code_verifier, **app.authorize_params
        )
    return str(url)


def exchange_code(
    app: OAuthApp, *, code: str, redirect_uri: str, code_verifier: str | None = None
) -> dict[str, Any]:
    """Trade the callback's authorization code for tokens: the credentials dict to store."""
    extra = {"code_verifier": code_verifier} if code_verifier else {}
    return _token_call(
        app,
        lambda s: s.fetch_token(
            app.token_url,
            grant_type="authorization_code",
            code=code,
            redirect_uri=redirect_uri,
            timeout=app.timeout,
            **extra,
        ),
    )


def refresh(app: OAuthApp, refresh_token: str) -> dict[str, Any]:
    """New tokens for a refresh token. The refresh token may rotate: store the answer BEFORE the
    new access token is used (``connector.oauth.tokens`` does), the old one may be dead already.
    A provider that does not rotate keeps the refresh token it had."""
    extra = {"scope": list(app.scopes)} if app.refresh_scope and app.scopes else {}
    credentials = _token_call(
        app,
        lambda s: s.refresh_token(
            app.token_url, refresh_token=refresh_token, timeout=app.timeout, **extra
        ),
    )
    credentials.setdefault("refresh_token", refresh_token)
    return credentials


def revoke(app: OAuthApp, token: str) -> None:
    """End the grant at the provider (revoking the refresh token revokes the whole grant)."""
    if not app.revoke_url:
        raise OAuthError(f"{app.label} has no revoke endpoint.", permanent=True)
    try:
        if app.revoke_body == "json":
            response = requests.post(
                app.revoke_url,
                json={"token": token},
                auth=(app.client_id, app.client_secret),
                headers={"Accept": "application/json"},
                timeout=app.timeout,
            )
        else:
            with _session(app) as session:
                response = session.revoke_token(app.revoke_url, token=token, timeout=app.timeout)
    except requests.RequestException as exc:
        raise OAuthError(
            f"{app.label}'s revoke endpoint could not be reached ({type(exc).__name__}).",
            permanent=False,
        ) from None
    if response.status_code != 200:
        raise _http_error(app, response, "revoke")


def _token_call(app: OAuthApp, call: Callable[[OAuth2Session], object]) -> dict[str, Any]:
    """Run one token-endpoint call; the credentials dict, or OAuthError with its answer's status."""
    answers: list[requests.Response] = []

    def remember(response: requests.Response) -> requests.Response:
        answers.append(response)
        return response

    with _session(app) as session:
        session.register_compliance_hook("access_token_response", remember)
        session.register_compliance_hook("refresh_token_response", remember)
        try:
            call(session)
            # The provider's own answer, not Authlib's copy (which fills in what it lacked).
            body: Any = answers[-1].json()
        except requests.RequestException as exc:
            response = getattr(exc, "response", None)
            if response is not None:  # raised by Authlib for a 5xx or a non-JSON answer
                raise _http_error(app, response, "token") from None
            raise OAuthError(
                f"{app.label}'s token endpoint could not be reached ({type(exc).__name__}).",
                permanent=False,
            ) from None
        except AuthlibBaseError as exc:  # the answer was an OAuth error object
            answer = answers[-1] if answers else None
            raise _refusal(app, exc.error, exc.description, answer) from None
        except ValueError:  # a JSON answer that is not an object
            if answers:
                raise _http_error(app, answers[-1], "token") from None
            raise OAuthError(
                f"{app.label}'s token endpoint sent an unreadable answer.", permanent=False
            ) from None
    if not isinstance(body, dict) or not body.get("access_token"):
        raise OAuthError(
            f"{app.label}'s token endpoint answered without an access token.",
            permanent=False,
            status=answers[-1].status_code if answers else None,
        )
    return credentials_from(app, body)


def _refusal(
    app: OAuthApp, error: str | None, description: str | None, response: Any
) -> OAuthError:
    status = getattr(response, "status_code", None)
    throttled = status == 429 or (status is not None and status >= 500)
    words = f"{app.label} refused the token request: {error}" + (
        f" ({description})" if description else ""
    )
    return OAuthError(
        words,
        permanent=not throttled and (error in PERMANENT_ERRORS or status in (400, 401)),
        error=error,
        status=status,
        retry_after=retry_after(getattr(response, "headers", None)),
    )


def _http_error(app: OAuthApp, response: requests.Response, endpoint: str) -> OAuthError:
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    error = str(body.get("error") or "") if isinstance(body, dict) else ""
    if error:
        description = str(body.get("error_description") or body.get("message") or "")
        return _refusal(app, error, description or None, response)
    return OAuthError(
        f"{app.label}'s {endpoint} endpoint answered HTTP {status}.",
        permanent=400 <= status < 500 and status not in (408, 429),
        status=status,
        retry_after=retry_after(response.headers),
    )


def credentials_from(
    app: OAuthApp, body: Mapping[str, Any], now: float | None = None
) -> dict[str, Any]:
    """What we store of a token answer: tokens and absolute expiry times (seconds since epoch)."""
    now = time.time() if now is None else now
    credentials: dict[str, Any] = {
        "access_token": str(body["access_token"]),
        "token_type": str(body.get("token_type") or "bearer"),
        "expires_at": now + _seconds(body.get("expires_in"), app.default_expires_in),
    }
    if body.get("refresh_token"):
        credentials["refresh_token"] = str(body["refresh_token"])
        lifetime = body.get(app.refresh_lifetime_field) if app.refresh_lifetime_field else None
        if lifetime or app.refresh_lifetime:
            seconds = _seconds(lifetime, app.refresh_lifetime or 0.0)
            credentials["refresh_expires_at"] = now + seconds
    if body.get("scope"):
        credentials["scope"] = str(body["scope"])
    for name in app.keep_fields:
        if name in body:
            credentials[name] = body[name]
    return credentials


def _seconds(value: Any, default: float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if 0 < seconds < 10 * 365 * 86400 else default
