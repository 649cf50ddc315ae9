"""A huey consumer target for the scale-out test: the real worker, with a local provider that
takes a little time per draft (so two consumers overlap) and writes down which process made it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from connector.consumer import huey  # noqa: F401 - the consumer reads this attribute
from connector.providers.local import LocalProvider

RUN_LOG = Path(os.environ["SCALE_TEST_LOG"])
_original = LocalProvider.create_draft


def _slow_create(self, draft):  # type: ignore[no-untyped-def]
    time.sleep(0.05)  # a provider round trip, so jobs overlap across processes
    created = _original(self, draft)
    with RUN_LOG.open("a") as log:  # one short append per line: whole lines, any process
        log.write(f"{os.getpid()} {draft.key}\n")
    return created


LocalProvider.create_draft = _slow_create  # type: ignore[method-assign]
