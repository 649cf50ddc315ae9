"""What a tracker source declares beside its parser and normalizer (issue 24, "the seam").

Each part is optional at registration (a source that lacks one simply does not offer it): the
receiver asks :class:`Signature` how to authenticate a delivery, the pipeline asks the event
kinds what a stored event means, the API, the OpenAPI document and ``events send-sample`` read
the :class:`Contract`, the console's Connections page renders the :class:`Card`, the CLI's
``tracker`` group and the console's token form call :class:`Account`, and the shared poll
machinery (``webhooks/polling.py``) runs the :class:`Poller`. Nothing here imports a source:
a source fills these in from its ``setup.py`` (:func:`connector.trackers.register_source`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from connector.models import Connection

# What an event means to the pipeline: an approval bills (or replaces) a timesheet's drafts,
# a withdrawal takes them back. Any other event type a source sends is acknowledged and ignored.
EventKind = Literal["approval", "withdrawal"]
APPROVAL: EventKind = "approval"
WITHDRAWAL: EventKind = "withdrawal"


class SignatureRejected(Exception):
    """Forged, unsigned or stale: 401, and nothing is stored (checked before any parsing)."""


class ConnectRefused(Exception):
    """The tracker refused the credentials (or registering its webhooks failed): plain words
    for the admin, shown as they are by the console and the CLI."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class PollBusy(Exception):
    """Another process is polling this workspace's tracker right now (it wins; nothing to do)."""


class PollProblem(Exception):
    """A poll that could not finish. ``refused``: the tracker refused the account (the
    connection is held until it accepts it again or is reconnected); ``retry_after``: seconds
    the tracker asked us to wait (the next poll is not due before)."""

    def __init__(self, message: str, *, refused: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.refused = refused
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignedDelivery:
    """One webhook request as the receiver hands it to a source's :class:`Signature` check."""

    workspace_id: int  # our workspace (the endpoint token in the URL was already matched)
    tracker_workspace_id: str
    headers: Mapping[str, str]  # as received; look names up case-insensitively
    body: bytes  # the raw body, never parsed before the check passes
    # The workspace's Standard Webhooks secrets (decrypted, newest first). Sources that keep
    # their own secrets (a per-webhook token) read them from their connection instead.
    signing_secrets: tuple[str, ...]
    tolerance_seconds: int  # how old a signed timestamp may be (WEBHOOK_TOLERANCE_SECONDS)


@dataclass(frozen=True)
class Signature:
    """How a source's webhook deliveries are authenticated."""

    # The delivery's id (the dedupe key: at most 255 characters, no control characters; a
    # sender without an id header may use a hash of the body), or raise SignatureRejected.
    verify: Callable[[SignedDelivery], str]
    # (secret, body) -> the headers a sender puts on ``body`` (``events send-sample``, tests).
    sign: Callable[[str, bytes], dict[str, str]]
    # Whether deliveries are signed with the workspace's signing secret (the console then shows
    # it to paste into the tracker). False: the source keeps its own (e.g. registered on connect).
    uses_workspace_secret: bool = True


@dataclass(frozen=True)
class Contract:
    """The source's event JSON schema and its documented samples."""

    schema_path: Path  # JSON Schema of one event (draft 7; "definitions" for shared parts)
    samples: Mapping[str, Path]  # sample name -> fixture file, named after the event it shows
    default_sample: str  # what ``events send-sample`` sends (an approval with several customers)
    # (sample document, tracker workspace id) -> the document addressed to that workspace
    address: Callable[[dict[str, Any], str], dict[str, Any]]
    # The JSON pointer of the rows an approval must carry to be previewed (a thin event lacks it)
    rows_pointer: str = "/data"


@dataclass(frozen=True)
class Card:
    """The source's card on the console's Connections page."""

    template: str  # e.g. "<source>/card.html", found through the source's blueprint
    # (workspace id, its tracker connection row or None) -> the template's variables (``t.*``)
    context: Callable[[int, Connection | None], dict[str, Any]]


@dataclass(frozen=True)
class Account:
    """Connecting the workspace's tracker account (``tracker connect``, the console's form)."""

    token_label: str  # what the admin pastes: "personal access token", "API key"
    # (workspace id, token, connected by) -> one line saying who is connected; raises
    # ConnectRefused. Stores the credentials encrypted and schedules the first poll.
    connect_token: Callable[[int, str, str], str]
    # Forget the credentials and stop polling; False when nothing was connected.
    disconnect: Callable[[int], bool]
    # After connect_token succeeded (e.g. register the tracker's webhooks). Raising
    # ConnectRefused undoes the connection (disconnect is called) and reports the words.
    on_connect: Callable[[int], None] | None = None
    # Before disconnect (e.g. remove the tracker's webhooks). A failure never blocks the
    # disconnect: a ConnectRefused's words are shown to the admin (e.g. "delete the webhook in
    # the tracker's settings"), anything else is logged.
    on_disconnect: Callable[[int], None] | None = None


@dataclass(frozen=True)
class Disconnection:
    """What a disconnect did: ``done`` False when nothing was connected; ``warning``: words
    from the source's on-disconnect hook the admin should act on."""

    done: bool
    warning: str | None = None


@dataclass(frozen=True)
class Poller:
    """A reconciling poll of the tracker's approvals, run by the shared poll machinery
    (``webhooks/polling.py``: one pending job per connected workspace, the outcome recorded
    in plain words, a refusal held and re-checked, the next poll scheduled). Requests go
    through the shared limiter (``connector.ratelimit.shared_limiter()``) in the source's client.
    """

    job_kind: str  # the outbox job kind, e.g. "<source>_poll"
    interval_setting: str  # config key: seconds between polls (0 disables periodic polling)
    # (workspace id, config, refresh catalog) -> a one-line report in plain words.
    # Raises PollBusy, or PollProblem (refused / retry_after) when it could not finish.
    poll: Callable[[int, Mapping[str, Any], bool], str]
    default_interval: float = 300.0
    # A held connection: does the tracker accept it again? (None: it waits for a reconnect)
    recheck: Callable[[int], bool] | None = None
    recheck_seconds: float = 900.0  # how often a held connection is re-checked
    # The waits (``worker.WaitFor`` reasons) woken after a successful poll.
    wakes: tuple[str, ...] = ()
