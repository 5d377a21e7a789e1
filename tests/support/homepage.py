"""Steps on the homepage that more than one browser test module takes."""

from __future__ import annotations

from typing import Any

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips, or fails in CI, saying why
    expect = None

from .browser import LiveSite

PLACEHOLDER = "\u2013"  # a card before its first number


def open_home(page: Any, site: LiveSite, query: str = "") -> None:
    """Load `/` + `query` and wait until the cards, the chart and the runs table are filled."""
    page.goto(f"{site.url}/{query}")
    expect(page.locator(".card[data-card=total] .num")).not_to_have_text(PLACEHOLDER)
    expect(page.locator("#chart svg")).to_be_attached()
    expect(page.locator("#runs-body tr").first).to_be_visible()


def open_run(page: Any, site: LiveSite, name: str, status: str = "QUEUED") -> dict[str, Any]:
    """Open the dialog of a run of bob's named `name` (created on first use)."""
    run = site.run(name, status)
    open_home(page, site, f"?name={name}")
    page.locator("#runs-body tr", has_text=name).locator(".run-name").click()
    expect(page.locator("#run-dialog")).to_be_visible()
    expect(page.locator("#run-title")).to_have_text(name)
    return run
