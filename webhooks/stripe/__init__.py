"""Stripe: invoice status events (``invoice.paid``, ...) sent to ``POST /webhooks/stripe``.

Fixtures in ``fixtures/`` are named after the event they capture (``invoice_paid.json``); they
are the documented examples and the tests' input at once.
"""

SOURCE = "stripe"
