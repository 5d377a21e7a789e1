"""The homepage in Chromium against a live runstats: cards, filters, chart, table, admin actions.

The cards are checked against the stats API for the same filter. Each
worker of the server keeps its own per-process cache (no Redis here) with a
TTL of two seconds, so a comparison polls until the page and the API agree:
the page refreshes every TTL, and the data only changes when a test changes it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips, or fails in CI, saying why
    expect = None

from ..support.browser import STATS_TTL_SECONDS, LiveSite, publish_docs_screenshot, screenshot
from ..support.contract import CREATED_AT, CREATED_BY, NAME
from ..support.homepage import PLACEHOLDER, open_home, open_run

pytestmark = pytest.mark.browser

CARDS = {
    "active": ("RUNNING", "PENDING", "QUEUED"),
    "succeeded": ("SUCCEEDED",),
    "failed": ("FAILED", "SYSTEM_ERROR"),
    "cancelled": ("CANCELLED",),
}


# --- helpers ----------------------------------------------------------------------------------


def card_numbers(page: Any) -> dict[str, int]:
    texts = page.eval_on_selector_all(
        ".card", "cards => cards.map(c => [c.dataset.card, c.querySelector('.num').textContent])"
    )
    return {name: int(text.replace(",", "")) for name, text in texts if text != PLACEHOLDER}


def expected_cards(stats: Mapping[str, Any]) -> dict[str, int]:
    counts = stats["counts_by_status"]
    cards = {name: sum(counts[s] for s in statuses) for name, statuses in CARDS.items()}
    cards["total"] = stats["total_runs"]
    return cards


def eventually(check: Callable[[], Any], timeout: float = 4 * STATS_TTL_SECONDS + 4) -> Any:
    """Retry `check` (which asserts) until it passes or the timeout ends."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def assert_cards_match_api(page: Any, site: LiveSite, **params: Any) -> dict[str, int]:
    def check() -> dict[str, int]:
        shown = card_numbers(page)
        expected = expected_cards(site.api("/stats", **params))
        assert shown == expected
        return shown

    return eventually(check)


def chart_total(page: Any) -> int:
    return int(page.get_attribute("#chart svg", "data-total"))


def row_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("#runs-body tr", "rows => rows.map(r => r.dataset.id)")


def name_contains(text: str) -> str:
    return json.dumps({"and": [{"value_contains": {"key": NAME, "value_substring": text}}]})


def use_token(page: Any, token: str) -> None:
    """Enter a token where the page offers it: in the run dialog when open, else at the top."""
    if page.locator("#run-dialog").is_visible():
        page.fill("#dialog-token-input", token)
        page.click("#dialog-token-form button[type=submit]")
        expect(page.locator("#dialog-token-form")).to_be_hidden()
    else:
        page.fill("#token-input", token)
        page.click("#token-save")
    expect(page.locator("#token-state")).to_be_attached()
    assert page.evaluate("sessionStorage.getItem('runstats.token')") == token


# --- the cards --------------------------------------------------------------------------------


def test_each_card_shows_the_stats_api_number_for_the_same_filter(page, live_site):
    open_home(page, live_site)
    cards = assert_cards_match_api(page, live_site)
    assert cards["total"] >= 300
    expect(page.locator("#updated")).to_have_text(re.compile(r"^updated \d+ s ago$"))
    page.wait_for_timeout(300)
    path = screenshot(page, "homepage-desktop")
    publish_docs_screenshot(path)
    screenshot(page, "homepage-desktop-full", full_page=True)


def test_cards_are_refreshed_every_cache_ttl(page, live_site):
    open_home(page, live_site)
    updated = page.locator("#updated")
    expect(updated).to_have_attribute("data-cached-at", re.compile(".+"))
    first = updated.get_attribute("data-cached-at")
    expect(updated).not_to_have_attribute(
        "data-cached-at", first, timeout=(3 * STATS_TTL_SECONDS + 3) * 1000
    )


def test_updated_ago_counts_up_from_cached_at(page, live_site):
    open_home(page, live_site)
    expect(page.locator("#updated")).to_have_text(re.compile(r"^updated \d+ s ago$"))
    cached_at = page.get_attribute("#updated", "data-cached-at")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", cached_at)


def _answer_busy(route: Any) -> None:
    route.fulfill(
        status=503,
        headers={"Retry-After": "2", "Content-Type": "application/json"},
        body=json.dumps(
            {
                "code": 503,
                "status": "Service Unavailable",
                "message": "Too many stats computations are running; retry shortly.",
            }
        ),
    )


def test_busy_stats_keep_the_cards_say_busy_and_retry_after_retry_after(page, live_site, problems):
    problems.allow("503")
    open_home(page, live_site)
    shown = card_numbers(page)
    stats_url = re.compile(r".*/api/pipeline_runs/stats\?.*")
    page.route(stats_url, _answer_busy)
    page.fill("input[name=name]", "train")
    expect(page.locator("#updated")).to_have_text(re.compile(r"^busy, retrying in \d s$"))
    expect(page.locator("#runs-body .run-name").first).to_contain_text("train")
    assert card_numbers(page) == shown
    page.unroute(stats_url)
    expect(page.locator("#updated")).to_have_text(
        re.compile(r"^updated \d+ s ago$"), timeout=6_000
    )
    assert_cards_match_api(page, live_site, filter_query=name_contains("train"))


# --- filters ----------------------------------------------------------------------------------


def test_a_name_filter_changes_cards_chart_and_table_and_goes_in_the_url(page, live_site):
    open_home(page, live_site)
    before_total = assert_cards_match_api(page, live_site)["total"]
    before_chart = chart_total(page)
    page.fill("input[name=name]", "train")
    page.wait_for_url(re.compile(r"\?name=train$"))
    cards = assert_cards_match_api(page, live_site, filter_query=name_contains("train"))
    assert 0 < cards["total"] < before_total
    history = live_site.api("/stats/history", filter_query=name_contains("train"))
    expected_chart = sum(bucket["total_runs"] for bucket in history["buckets"])
    expect(page.locator("#chart svg")).to_have_attribute("data-total", str(expected_chart))
    assert expected_chart < before_chart
    names = page.locator("#runs-body .run-name")
    expect(names.first).to_contain_text("train")
    assert all("train" in name for name in names.all_text_contents())
    screenshot(page, "filtered-by-name")


def test_a_shared_url_restores_the_filters(page, live_site):
    today = datetime.now(UTC).date()
    start, end = today - timedelta(days=60), today + timedelta(days=1)
    query = f"?name=etl&status=SUCCEEDED&status=FAILED&from={start}&to={today}"
    open_home(page, live_site, query)
    expect(page.locator("input[name=name]")).to_have_value("etl")
    expect(page.locator("input[name=from]")).to_have_value(str(start))
    pressed = page.locator("#status-chips .chip[aria-pressed=true]")
    expect(pressed).to_have_count(2)
    filter_query = {
        "and": [
            {"value_contains": {"key": NAME, "value_substring": "etl"}},
            {
                "time_range": {
                    "key": CREATED_AT,
                    "start_time": f"{start}T00:00:00Z",
                    "end_time": f"{end}T00:00:00Z",
                }
            },
        ]
    }
    assert_cards_match_api(
        page, live_site, filter_query=json.dumps(filter_query), status=["SUCCEEDED", "FAILED"]
    )
    statuses = page.eval_on_selector_all(
        "#runs-body tr", "rows => rows.map(r => r.dataset.status)"
    )
    assert statuses and set(statuses) <= {"SUCCEEDED", "FAILED"}
    expect(page.locator("#chart .bar")).to_have_count(61)


def test_status_chips_filter_and_go_in_the_url(page, live_site):
    open_home(page, live_site)
    page.click("#status-chips .chip[data-status=FAILED]")
    page.wait_for_url(re.compile(r"status=FAILED"))
    assert_cards_match_api(page, live_site, status="FAILED")
    expect(page.locator("#runs-body tr").first).to_have_attribute("data-status", "FAILED")
    statuses = page.eval_on_selector_all(
        "#runs-body tr", "rows => rows.map(r => r.dataset.status)"
    )
    assert set(statuses) == {"FAILED"}


def test_clear_filters_returns_to_every_run_and_keeps_the_user(page, live_site):
    open_home(page, live_site, "?name=etl&status=FAILED")
    page.fill("#user-input", "bob")
    page.check("input[name=by][value=me]")
    page.wait_for_url(re.compile(r"by=me"))
    page.click("#filters-reset")
    page.wait_for_url(re.compile(r"/$"))
    expect(page.locator("#user-input")).to_have_value("bob")
    expect(page.locator("#status-chips .chip[aria-pressed=true]")).to_have_count(0)
    assert_cards_match_api(page, live_site)


def test_created_by_me_uses_the_user_field_as_current_user(page, live_site):
    open_home(page, live_site)
    page.fill("#user-input", "alice")
    page.check("input[name=by][value=me]")
    page.wait_for_url(re.compile(r"by=me"))
    mine = json.dumps({"and": [{"value_equals": {"key": CREATED_BY, "value": "me"}}]})
    assert_cards_match_api(page, live_site, filter_query=mine, current_user="alice")
    expect(page.locator("#runs-body tr").first).to_contain_text("alice")
    created_by = page.eval_on_selector_all(
        "#runs-body td[data-label='Created by']", "cells => cells.map(c => c.textContent)"
    )
    assert set(created_by) == {"alice"}


def test_the_hour_bucket_draws_48_bars(page, live_site):
    open_home(page, live_site)
    page.click(".bucket-toggle button[data-bucket=hour]")
    expect(page.locator("#chart-title")).to_have_text("Runs per hour")
    expect(page.locator("#chart .bar")).to_have_count(48)
    assert parse_qs(urlparse(page.url).query)["bucket"] == ["hour"]


# --- the runs table ---------------------------------------------------------------------------


def test_load_more_appends_the_next_page_of_runs(page, live_site):
    open_home(page, live_site)
    expect(page.locator("#runs-body tr")).to_have_count(25)
    page.click("#load-more")
    expect(page.locator("#runs-body tr")).to_have_count(50)
    expected = [run["id"] for run in live_site.api("/", page_size=50)["pipeline_runs"]]
    assert row_ids(page) == expected
    expect(page.locator("#runs-count")).to_have_text("50 shown")


def test_clicking_a_run_shows_its_status_history(page, live_site):
    open_home(page, live_site, "?status=SUCCEEDED")
    first = page.locator("#runs-body tr").first
    run_id = first.get_attribute("data-id")
    first.locator(".run-name").click()
    expect(page.locator("#run-dialog")).to_be_visible()
    changes = live_site.api(f"/{run_id}/history")
    assert changes
    expect(page.locator("#run-history tr")).to_have_count(len(changes))
    expect(page.locator("#run-history tr").last).to_contain_text("succeeded")
    screenshot(page, "run-dialog")


# --- admin actions ----------------------------------------------------------------------------


def test_cancel_needs_a_token_and_shows_api_errors_plainly(page, live_site, problems):
    problems.allow("status of 403")
    run = open_run(page, live_site, "browser-not-yours", "RUNNING")
    page.click("#run-cancel")
    expect(page.locator("#run-error")).to_contain_text("Enter a token")
    use_token(page, live_site.tokens["alice"])
    page.click("#run-cancel")
    expect(page.locator("#run-error")).to_have_text(
        "403 Forbidden: Only the run's creator or an admin may change this run."
    )
    assert live_site.api(f"/{run['id']}")["status"] == "RUNNING"


def test_cancel_a_run_with_an_admin_token_changes_its_status(page, live_site):
    run_id = open_run(page, live_site, "browser-cancel-target", "RUNNING")["id"]
    use_token(page, live_site.tokens["root"])
    page.click("#run-cancel")
    expect(page.locator("#run-notice")).to_have_text("Status is now CANCELLING.")
    expect(page.locator("#run-fields .badge")).to_have_text("cancelling")
    expect(page.locator(f"#runs-body tr[data-id='{run_id}'] .badge")).to_have_text("cancelling")
    assert live_site.api(f"/{run_id}")["status"] == "CANCELLING"
    screenshot(page, "run-cancelled")


def test_the_token_is_kept_for_the_tab_and_can_be_forgotten(page, live_site):
    open_home(page, live_site)
    use_token(page, live_site.tokens["root"])
    page.reload()
    expect(page.locator("#token-state")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('runstats.token')") == live_site.tokens["root"]
    page.click("#token-forget")
    expect(page.locator("#token-input")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('runstats.token')") is None


def test_set_and_remove_an_annotation(page, live_site):
    run_id = open_run(page, live_site, "browser-notes")["id"]
    use_token(page, live_site.tokens["root"])
    page.fill("#annotation-form input[name=key]", "review/owner")
    page.fill("#annotation-form input[name=value]", "carol")
    page.click("#annotation-form button[type=submit]")
    expect(page.locator("#run-notice")).to_have_text("Annotation review/owner set.")
    expect(page.locator("#run-annotations")).to_contain_text("review/owner=carol")
    row = page.locator(f"#runs-body tr[data-id='{run_id}']")
    expect(row).to_contain_text("review/owner=carol")
    assert live_site.api(f"/{run_id}")["annotations"] == {"review/owner": "carol"}
    page.click("#run-annotations button.remove[data-key='review/owner']")
    expect(page.locator("#run-notice")).to_have_text("Annotation review/owner removed.")
    expect(row).not_to_contain_text("review/owner")
    assert live_site.api(f"/{run_id}")["annotations"] == {}


# --- the page itself --------------------------------------------------------------------------


def test_the_page_is_served_with_a_strict_csp_and_needs_no_token(live_site):
    response = requests.get(f"{live_site.url}/", timeout=10)
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy


def test_phone_width_fits_without_horizontal_scrolling(phone_page, live_site):
    open_home(phone_page, live_site)
    assert_cards_match_api(phone_page, live_site)
    scroll_width, inner_width = phone_page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width
    phone_page.wait_for_timeout(300)
    screenshot(phone_page, "homepage-phone")
    phone_page.locator("#runs-body .run-name").first.click()
    expect(phone_page.locator("#run-dialog")).to_be_visible()
    expect(phone_page.locator("#run-history tr").first).to_be_visible()
    box = phone_page.locator("#run-dialog").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= inner_width
    screenshot(phone_page, "run-dialog-phone")
