"""Every Stripe API call of one account: the SDK client, the shared limiter, errors translated."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import stripe  # the SDK: absolute import, this module's own name only shadows it as a submodule
from stripe.oauth_error import OAuthError

from connector import observability, ratelimit
from connector.providers.base import (
    AccountingCustomer,
    ProviderError,
    RateLimiter,
    ReconnectNeeded,
    Rejected,
    RetryLater,
    Throttled,
)
from connector.providers.stripe.errors import Replayed, header, wait_seconds

log = logging.getLogger(__name__)
T = TypeVar("T")


# The one place the API version is pinned: the version stripe-python 16.1.0 was generated for
# (stripe._api_version._ApiVersion.CURRENT); a test fails if an SDK upgrade changes it.
STRIPE_API_VERSION = "2026-10-28.endive"


DEFAULT_API_BASE_URL = "https://api.stripe.com"


DEFAULT_CONNECT_BASE_URL = "https://connect.stripe.com"


DASHBOARD_URL = "https://dashboard.stripe.com"


DEFAULT_TIMEOUT_SECONDS = 30.0


CONNECT_TIMEOUT_SECONDS = 10.0


# Stripe allows 25 req/s in test mode and 100 in live; the shared limiter is a fixed window,
# so keep a margin.
RATE_LIMITS: dict[str, tuple[tuple[int, float], ...]] = {
    "test": ((20, 1.0),),
    "live": ((80, 1.0),),
}


META_PENDING = "pending_drafts"


META_CURRENCIES = "customer_currencies"


class StripeClient:
    """The calls and the connection's meta, shared by every part of the provider."""

    # -- plumbing
    @property
    def limiter(self) -> RateLimiter:
        if self._limiter is None:
            self._limiter = ratelimit.shared_limiter()
        return self._limiter

    @property
    def bucket(self) -> str:
        return f"stripe:{self.account_id or f'workspace-{self.workspace_id}'}"

    def _call(self, what: str, fn: Callable[..., T], *args: Any, mutating: bool = False) -> T:
        """Rate-limit, call the SDK, translate every Stripe exception (none may escape)."""
        self.limiter.acquire(self.bucket, RATE_LIMITS[self.environment])
        try:
            result = fn(*args)
        except stripe.StripeError as exc:
            observability.count_provider_call("stripe", exc.http_status)
            raise self._translate(exc, what=what, mutating=mutating) from exc
        observability.count_provider_call("stripe", 200)
        return result

    def _reconnect(self, reason: str, exc: stripe.StripeError) -> ReconnectNeeded:
        try:
            self.store.mark_reconnect_needed(reason)
        except Exception:  # the jobs still wait on ReconnectNeeded
            log.exception("could not mark the Stripe connection of workspace %s", self.workspace_id)
        return ReconnectNeeded(reason, code=exc.code, detail=exc.user_message)

    def _translate(self, exc: stripe.StripeError, *, what: str, mutating: bool) -> ProviderError:
        message = exc.user_message or str(exc)
        code = exc.code or (exc.error.code if exc.error is not None else None)
        if isinstance(exc, OAuthError) or code == "account_invalid":
            return self._reconnect(
                "Stripe no longer lets this app act on the account (it was disconnected or "
                "deauthorized): reconnect Stripe.",
                exc,
            )
        if isinstance(exc, stripe.AuthenticationError):
            return self._reconnect(
                "Stripe rejected the API key (revoked, rolled or expired): reconnect Stripe.", exc
            )
        if isinstance(exc, stripe.PermissionError):
            return self._reconnect(
                f"The Stripe key lacks a permission needed to {what}: {message} "
                "Create a key with the permissions in docs/stripe.md and reconnect.",
                exc,
            )
        if isinstance(exc, stripe.RateLimitError):
            if code == "lock_timeout":
                # One object is being changed by another request: not an account-wide limit.
                return RetryLater(
                    f"Stripe is busy with this object ({what})",
                    retry_after=wait_seconds(exc.headers),
                    code=code,
                    detail=message,
                )
            # Every worker's calls to this account wait, not only this job's.
            wait = wait_seconds(exc.headers)
            self.limiter.pause(self.bucket, wait)
            return Throttled(
                f"Stripe is rate limiting requests ({what})",
                retry_after=wait,
                code=code or "rate_limit",
                detail=message,
            )
        if isinstance(exc, stripe.IdempotencyError):
            # Callers that send keys handle this themselves; reaching here is a programming error
            # the admin can still read.
            return Rejected(message, code="idempotency_error")
        if isinstance(exc, (stripe.InvalidRequestError, stripe.CardError)):
            param = getattr(exc, "param", None)
            return Rejected(
                message,
                code=code or "invalid_request",
                detail=f"parameter {param}" if param else None,
            )
        # APIConnectionError (timeout, reset), APIError (5xx, 409 concurrent key use) and anything
        # unforeseen: transient, and for a POST the request may have been committed.
        replayed = (header(exc.headers, "Idempotent-Replayed") or "").lower() == "true"
        cls = Replayed if replayed and mutating else RetryLater
        return cls(
            f"Stripe could not be reached or failed ({what})",
            outcome_unknown=mutating,
            code=code or type(exc).__name__,
            detail=message,
        )

    # -- connection meta (cache and pending drafts), serialized across processes
    def _meta(self, name: str) -> dict[str, Any]:
        return dict(self.store.meta().get(name) or {})

    def _update_meta(self, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        try:
            with self.store.lock("meta", timeout=10.0):
                values = self._meta(name)
                before = dict(values)
                change(values)
                if values != before:
                    self.store.update_meta(**{name: values})
        except Exception:  # a cache/bookkeeping write must not fail a draft
            log.exception("could not update Stripe connection meta %s", name)

    def _remember_currencies(self, customers: Sequence[AccountingCustomer]) -> None:
        locked = {c.id: c.currency.lower() for c in customers if c.currency}
        if locked:
            self._update_meta(META_CURRENCIES, lambda cache: cache.update(locked))

    def _set_pending(self, key: str, invoice_id: str, customer_id: str) -> None:
        record = {"invoice": invoice_id, "customer": customer_id, "at": int(time.time())}
        self._update_meta(META_PENDING, lambda pending: pending.update({key: record}))

    def _clear_pending(self, key: str) -> None:
        self._update_meta(META_PENDING, lambda pending: pending.pop(key, None))
