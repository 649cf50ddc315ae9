"""``/favicon.ico``: browsers ask for it on every site whatever the page's ``<link rel=icon>``
says; answering with the console's icon (an SVG, which current browsers take at this address)
keeps a 404 out of every page load and every log."""

from __future__ import annotations

from typing import Any

from flask import send_from_directory

from connector.admin import bp
from connector.auth import PUBLIC_ENDPOINTS

ICON_MAX_AGE = 86400  # a day: the icon changes with a release, rarely


@bp.get("/favicon.ico")
def favicon() -> Any:
    response = send_from_directory(
        bp.static_folder or "", "favicon.svg", mimetype="image/svg+xml", max_age=ICON_MAX_AGE
    )
    return response


PUBLIC_ENDPOINTS.add("admin.favicon")  # no data in it: the sign-in page shows it too
