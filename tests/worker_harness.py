"""A huey consumer target for the crash test: the real worker, with a provider that hangs once.

The first ``create_draft`` commits the invoice (as a provider would), then touches a marker file
and hangs, so the test can SIGKILL the consumer after the provider committed but before the
connector recorded the result: the nastiest moment to die.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from connector.consumer import huey  # noqa: F401 - the consumer reads this attribute
from connector.providers.local import LocalProvider

MARKER = Path(os.environ["CRASH_TEST_MARKER"])
_original = LocalProvider.create_draft


def _create_then_hang(self, draft):  # type: ignore[no-untyped-def]
    created = _original(self, draft)
    if not MARKER.exists():
        MARKER.write_text(draft.key)
        time.sleep(300)  # killed here
    return created


LocalProvider.create_draft = _create_then_hang  # type: ignore[method-assign]
