"""Swagger UI at /api/docs works under its strict Content-Security-Policy.

The page loads its initialiser from a file (no inline script); the `page`
fixture fails the test on any CSP violation or console error.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from runstats_app.security import HTML_CONTENT_SECURITY_POLICY

from ..support.browser import LiveSite, screenshot

pytestmark = pytest.mark.browser


def test_swagger_ui_renders_every_operation_and_runs_a_request(
    page: Any, live_site: LiveSite
) -> None:
    document = requests.get(f"{live_site.url}/api/openapi.json", timeout=10).json()
    operations = sum(
        method in ("get", "post", "put", "patch", "delete")
        for methods in document["paths"].values()
        for method in methods
    )
    response = page.goto(f"{live_site.url}/api/docs")
    assert response.headers["content-security-policy"] == HTML_CONTENT_SECURITY_POLICY
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() == operations
    stats = page.locator(".opblock", has_text="/api/pipeline_runs/stats").first
    stats.locator(".opblock-summary").click()
    stats.locator("button.try-out__btn").click()
    stats.locator("button.execute").click()
    status = stats.locator(".live-responses-table .response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    screenshot(page, "api-docs")
