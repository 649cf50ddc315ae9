"""Clockify: approval webhooks (``APPROVAL_REQUEST_STATUS_UPDATED``) and a reconciling poll of
approved requests, normalized into the same billing input as every tracker.

Fixtures in ``fixtures/`` are named after the event they capture (``<event>__<variant>.json``);
they are the documented examples and the tests' input at once. See docs/clockify.md for what
was confirmed about Clockify's API and what is assumed.
"""

SOURCE = "clockify"
