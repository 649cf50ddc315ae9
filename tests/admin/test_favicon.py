"""``/favicon.ico`` answers with the console's icon, signed in or not (issue 21 item 8)."""

from __future__ import annotations

from typing import Any


def test_favicon_is_served_without_a_session(client: Any) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.get_data().startswith(b"<svg")
    assert response.cache_control.max_age == 86400
