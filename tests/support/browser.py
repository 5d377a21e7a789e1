"""Driving the homepage in Chromium: the live site it opens, pages that report their
problems, and screenshots."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .servers import ROOT, LiveApp

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS_SCREENSHOT = ROOT / "docs" / "homepage.png"
# Short, so that the page's refresh every TTL is seen within a test.
STATS_TTL_SECONDS = 2
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}

COLLECT_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@dataclass
class LiveSite(LiveApp):
    """The live app with demo data, and runs of bob's the tests add by name."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def run(self, name: str, status: str = "QUEUED") -> dict[str, Any]:
        """A run of bob's named `name`, created on first use (so screenshots show demo data)."""
        if name not in self.runs:
            self.runs[name] = self.create_run("root", name=name, status=status, created_by="bob")
        return self.runs[name]


@dataclass
class PageProblems:
    """What the page reported: console errors, uncaught exceptions and CSP violations."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def allow(self, fragment: str) -> None:
        """Expect console errors containing `fragment` (a 403 the test provokes, say)."""
        self.allowed.append(fragment)

    def unexpected(self) -> list[str]:
        return [
            message
            for message in self.console_errors
            if not any(fragment in message for fragment in self.allowed)
        ] + self.page_errors


def _open_context(browser: Any, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport, device_scale_factor=1)
    context.add_init_script(COLLECT_CSP_VIOLATIONS)
    context.set_default_timeout(10_000)
    return context


def _watch(page: Any, problems: PageProblems) -> Any:
    page.on(
        "console",
        lambda message: (
            problems.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: problems.page_errors.append(str(error)))
    return page


def _assert_clean(page: Any, problems: PageProblems) -> None:
    violations = page.evaluate("window.__cspViolations || []")
    assert violations == [], f"CSP violations: {violations}"
    assert problems.unexpected() == [], f"console errors: {problems.unexpected()}"


@contextmanager
def checked_page(browser: Any, viewport: dict[str, int], problems: PageProblems) -> Iterator[Any]:
    """A page of that size; fails the test on console errors or CSP violations."""
    context = _open_context(browser, viewport)
    tab = _watch(context.new_page(), problems)
    try:
        yield tab
        _assert_clean(tab, problems)
    finally:
        context.close()


def screenshot(page: Any, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def publish_docs_screenshot(path: Path) -> None:
    """With RUNSTATS_UPDATE_DOCS_SCREENSHOT=1, the README's picture is replaced by `path`."""
    if os.environ.get("RUNSTATS_UPDATE_DOCS_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOT)
