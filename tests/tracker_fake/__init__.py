"""A second tracker source, "Tally", built only from the seam (``connector.trackers``), as a
new tracker's folder would be: the seam tests plug it in with one line (``TRACKER_SOURCES``).

Its webhooks carry a per-connection token in ``X-Tally-Token`` (no HMAC), its event types are
``sheet.approved`` / ``sheet.withdrawn``, and its reconciling poll goes through the shared
limiter. State lives in :data:`TALLY` (what the tracker would answer), reset per test.
"""

SOURCE = "tally"
