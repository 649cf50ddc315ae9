"""timesheet-invoicer: approved timesheets in, one draft invoice per customer out.

``create_app`` is the Flask application factory (``flask --app connector ...``, gunicorn
``connector:create_app()``). The worker builds the same app for its context.

The wiring lives in :mod:`connector.app`, the composition root: the one module (with the CLI it
registers) allowed to import every package. It is loaded on first use, so that importing a core
module (``connector.models``) does not load the console, the API and the inbound sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    from connector import app  # the composition root, loaded on demand (see above)

    return app.create_app(overrides)
