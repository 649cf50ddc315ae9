"""Xero: DRAFT sales invoices in one Xero organisation per workspace.

The folder, by what each file holds:

* ``settings.py``: addresses, keys, scopes and timeouts from the configuration (``XERO_*``)
* ``oauth.py``: the authorization code flow, token refresh and revocation, the organisations
  (``/connections``) a grant reaches
* ``client.py``: every Accounting API call (tenant header, Idempotency-Key, shared limits, token
  refresh, errors classified)
* ``errors.py``: Xero's error answers in plain words
* ``payloads.py``: the Invoice and Contact JSON (pure; checked against Xero's OpenAPI document)
* ``contacts.py``: contacts and the organisation's currencies, cached
* ``status.py``: Xero's invoice statuses as ours
* ``events.py``: Xero's webhook deliveries: the signature, the invoices they name
* ``provider.py``: the :class:`~connector.providers.base.AccountingProvider` itself and
  ``create`` (what the registry line points at)
* ``web/``: its connect pages (consent, organisation picker, posting codes, disconnect) and its
  status receiver (``/webhooks/xero``); ``web/setup.py`` plugs them in with the app's
  :class:`~connector.providers.web_kit.WebKit`, so nothing here imports above the core
* ``fixtures/``: Xero webhook deliveries, named after the event

Its tests, the stateful fake Xero and the part of Xero's OpenAPI description the payloads are
checked against live in ``tests/providers/xero/`` (tests may import the pipeline; this folder
may not).

See docs/xero.md.
"""
