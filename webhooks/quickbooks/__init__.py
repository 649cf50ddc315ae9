"""QuickBooks Online: Invoice change notifications sent to ``POST /webhooks/quickbooks``.

Fixtures in ``fixtures/`` are named after the notification they capture
(``invoice_update.json`` in Intuit's legacy shape, ``invoice_update__cloudevents.json`` in the
CloudEvents shape Intuit is moving to).
"""

SOURCE = "quickbooks"
