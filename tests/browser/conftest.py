"""A live runstats with demo data under gunicorn, and Debian's Chromium driven by Playwright.

Without /usr/bin/chromium (or the playwright package) the browser tests skip,
saying why, except in CI (the CI variable set), where they fail: CI installs
chromium and must never pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from ..support.app import issue_token, migrated_app
from ..support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    STATS_TTL_SECONDS,
    VIEWPORTS,
    LiveSite,
    PageProblems,
    checked_page,
)
from ..support.databases import fresh_database
from ..support.servers import GunicornServer, flask_command


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def live_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    """300 demo runs (seed 1), an admin token (root) and a writer token (alice).

    Session-scoped: under xdist each worker that gets a browser test starts one
    server and one Chromium, however the tests are interleaved with others.
    Schema and tokens are made in process: two fewer interpreters to start than the CLI.
    """
    tmp_path = tmp_path_factory.mktemp("browser")
    with fresh_database("sqlite", tmp_path, None) as url:
        env = {
            "RUNSTATS_DATABASE_URL": url,
            "RUNSTATS_SECRET_KEY": "browser-test-secret",
            "RUNSTATS_STATS_CACHE_TTL": str(STATS_TTL_SECONDS),
        }
        with migrated_app(url) as app:
            tokens = {
                "root": issue_token(app, "root", "admin"),
                "alice": issue_token(app, "alice"),
            }
        flask_command(env, "demo-data", "--runs", "300", "--seed", "1")
        with GunicornServer(env, workers=2, log_path=tmp_path / "gunicorn.log") as server:
            yield LiveSite(server.url, env, tokens)


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


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(browser: Any, live_site: LiveSite, problems: PageProblems) -> Iterator[Any]:
    """A desktop-sized page; fails the test on console errors or CSP violations."""
    with checked_page(browser, DESKTOP, problems) as tab:
        yield tab


@pytest.fixture
def phone_page(browser: Any, live_site: LiveSite, problems: PageProblems) -> Iterator[Any]:
    with checked_page(browser, PHONE, problems) as tab:
        yield tab


@pytest.fixture(params=list(VIEWPORTS))
def sized_page(
    request: pytest.FixtureRequest, browser: Any, live_site: LiveSite, problems: PageProblems
) -> Iterator[Any]:
    """The test runs twice: on a desktop-sized page, then on a phone-sized one."""
    with checked_page(browser, VIEWPORTS[request.param], problems) as tab:
        yield tab
