"""WebWork Time Tracker: the v1 event contract (schema, parser) and the timesheet normalizer.

Fixtures in ``fixtures/`` are named after the event they capture (``<event>__<variant>.json``);
they are the documented examples and the tests' input at once.
"""

SOURCE = "webwork"
