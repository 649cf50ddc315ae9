"""The console works in Chromium under its Content-Security-Policy: no violation on any page,
the stylesheet applies, forms (sign-in, settings, sign-out) still submit, and it cannot be framed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.admin.events import approval
from tests.browser.conftest import shot

pytestmark = pytest.mark.browser


def test_console_pages_work_under_the_csp(
    page: Any, live_server: str, workspace: Any, make_admin: Any, post_event: Any
) -> None:
    make_admin(workspace, email="ada@example.com", password="correct horse battery")
    assert post_event(workspace, approval()).status_code == 202
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    ws = f"/workspaces/{workspace.id}"

    page.goto("/login")
    assert (
        "default-src 'self'"
        in page.context.request.get(f"{live_server}/login").headers["content-security-policy"]
    )
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/workspaces**")

    for path in (
        ws,
        f"{ws}/approvals",
        f"{ws}/mappings",
        f"{ws}/rates",
        f"{ws}/connections",
        f"{ws}/deliveries",
        f"{ws}/settings",
        f"{ws}/tokens",
    ):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        # admin.css is applied: the header gets its panel background from the stylesheet.
        background = page.locator("header.site").evaluate(
            "el => getComputedStyle(el).backgroundColor"
        )
        assert background not in ("rgba(0, 0, 0, 0)", "transparent"), path
    shot(page, "csp-settings")

    page.goto(f"{ws}/settings")
    page.get_by_role("button", name="Save").first.click()
    page.wait_for_load_state()
    assert page.url.endswith(f"{ws}/settings")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login**")
    assert violations == [], violations

    # Another site cannot frame the console (clickjacking): the frame stays empty.
    page.set_content(f'<iframe id="f" src="{live_server}/login"></iframe>')  # waits for "load"
    assert page.frame_locator("#f").get_by_label("Email").count() == 0
    assert any("frame-ancestors" in text for text in violations), violations
