"""OAuth2 (authorization code) for every connection: accounting providers and time trackers.

* ``client.py``: the wire (authorize URL, code exchange, refresh, revoke) through Authlib, with
  timeouts and one error type; a provider describes its app once as an ``OAuthApp``.
* ``tokens.py``: a connection's access token, refreshed by one process at a time under the
  credential store's lock, the rotated refresh token stored before use.
* ``state.py``: the ``state`` of a connect flow, kept server-side, single use, bound to the
  admin and workspace, expiring.
* ``flow.py``: the console side: start (redirect to consent) and the callback page, handing a
  checked answer to the provider's own finish step.

``client`` and ``tokens`` read no table and no Flask state, so provider adapters may import them;
``state`` and ``flow`` are for the connect pages. This file imports none of them on purpose.
See docs/oauth.md (and how to add a provider's OAuth app).
"""
