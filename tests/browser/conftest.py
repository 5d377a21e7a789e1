"""A live runstats with demo data under gunicorn, and Debian's Chromium driven by Playwright.

Without /usr/bin/chromium (or the playwright package) the browser tests skip,
saying why, except in CI (the CI variable set), where they fail: CI installs
chromium and must never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from runstats_app.auth import Role
from runstats_app.auth import create_token as make_token
from runstats_app.extensions import db

from ..conftest import make_app, migrate_to_head
from ..servers import ROOT, GunicornServer, flask_command, fresh_database

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


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class LiveSite:
    url: str
    env: dict[str, str]
    tokens: dict[str, str]
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def api(self, path: str, **params: Any) -> Any:
        response = requests.get(f"{self.url}/api/pipeline_runs{path}", params=params, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def run(self, name: str, status: str = "QUEUED") -> dict[str, Any]:
        """A run of bob's named `name`, created on first use (so screenshots show demo data)."""
        if name not in self.runs:
            response = requests.post(
                f"{self.url}/api/pipeline_runs/",
                json={"name": name, "status": status, "created_by": "bob"},
                headers=self.headers("root"),
                timeout=10,
            )
            assert response.status_code == 201, response.text
            self.runs[name] = response.json()
        return self.runs[name]


def _migrate_and_make_tokens(url: str, roles: dict[str, Role]) -> dict[str, str]:
    """Schema and tokens in process: two fewer interpreters to start than the CLI."""
    app = make_app(url)
    with app.app_context():
        migrate_to_head()
        session = db.session()
        tokens = {user: make_token(session, user, role) for user, role in roles.items()}
        session.commit()
        db.session.remove()
        db.engine.dispose()
    return tokens


@pytest.fixture(scope="session")
def live_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    """300 demo runs (seed 1), an admin token (root) and a writer token (alice).

    Session-scoped: under xdist each worker that gets a browser test starts one
    server and one Chromium, however the tests are interleaved with others.
    """
    tmp_path = tmp_path_factory.mktemp("browser")
    with fresh_database("sqlite", tmp_path, None) as url:
        env = {
            "RUNSTATS_DATABASE_URL": url,
            "RUNSTATS_SECRET_KEY": "browser-test-secret",
            "RUNSTATS_STATS_CACHE_TTL": str(STATS_TTL_SECONDS),
        }
        tokens = _migrate_and_make_tokens(url, {"root": Role.admin, "alice": Role.writer})
        flask_command(env, "demo-data", "--runs", "300", "--seed", "1")
        with GunicornServer(env, workers=2, log_path=tmp_path / "gunicorn.log") as server:
            site = LiveSite(server.url, env, tokens)
            yield site


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


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


def open_context(browser: Any, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport, device_scale_factor=1)
    context.add_init_script(COLLECT_CSP_VIOLATIONS)
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


def watch(page: Any, problems: PageProblems) -> Any:
    page.on(
        "console",
        lambda message: (
            problems.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: problems.page_errors.append(str(error)))
    return page


def assert_clean(page: Any, problems: PageProblems) -> None:
    violations = page.evaluate("window.__cspViolations || []")
    assert violations == [], f"CSP violations: {violations}"
    assert problems.unexpected() == [], f"console errors: {problems.unexpected()}"


@contextmanager
def _checked_page(browser: Any, viewport: dict[str, int], problems: PageProblems) -> Iterator[Any]:
    """A page of that size; fails the test on console errors or CSP violations."""
    context = open_context(browser, viewport)
    tab = watch(context.new_page(), problems)
    try:
        yield tab
        assert_clean(tab, problems)
    finally:
        context.close()


@pytest.fixture
def page(browser: Any, live_site: LiveSite, problems: PageProblems) -> Iterator[Any]:
    """A desktop-sized page; fails the test on console errors or CSP violations."""
    with _checked_page(browser, DESKTOP, problems) as tab:
        yield tab


@pytest.fixture
def phone_page(browser: Any, live_site: LiveSite, problems: PageProblems) -> Iterator[Any]:
    with _checked_page(browser, PHONE, problems) as tab:
        yield tab


@pytest.fixture(params=list(VIEWPORTS))
def sized_page(
    request: pytest.FixtureRequest, browser: Any, live_site: LiveSite, problems: PageProblems
) -> Iterator[Any]:
    """The test runs twice: on a desktop-sized page, then on a phone-sized one."""
    with _checked_page(browser, VIEWPORTS[request.param], problems) as tab:
        yield tab


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
