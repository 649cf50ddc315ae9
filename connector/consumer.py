"""The worker process's composition root: ``huey_consumer connector.consumer.huey`` (Procfile).

huey's consumer imports this module and reads ``huey``. Importing it builds the app once, with
the app factory, exactly as the web process does: the configuration is read from the
environment and checked here (a refused production configuration makes the import fail, so
``huey_consumer`` exits non-zero and the platform sees a crashed worker rather than an idle one),
then the job handlers, tracker sources and provider event readers are wired, and the queue is
built from that configuration (``connector.worker.install``). Nothing below this module reads
the environment or builds a queue on import.
"""

from __future__ import annotations

from huey import Huey

from connector import observability
from connector.app import create_app

app = create_app()
huey: Huey = app.extensions["worker"].huey


@huey.on_startup()
def _one_log_handler() -> None:
    # huey_consumer sets up its logging after importing this module (see the function's words).
    observability.drop_foreign_handlers("huey")
