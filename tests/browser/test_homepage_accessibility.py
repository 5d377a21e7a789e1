"""The homepage under axe-core (Deque's engine): no serious or critical WCAG 2 A or AA violation.

axe-core reaches the browser from the PyPI package axe-playwright-python, in the dev
extras of setup.cfg. Its wheel ships axe-core's own `axe.min.js`, so the
`pip install -e '.[dev]'` that `make test` and `.ci/run` already do brings the engine:
no Node toolchain, no package.json to keep beside setup.cfg, nothing fetched while the
tests run. Only that file is used; the test calls `axe.run` itself, to choose the rules
(the WCAG 2.0, 2.1 and 2.2 A and AA tags) and to word the failure. Each failure names
the axe-core version that found it, since a newer wheel may bring a newer engine.

The script goes in through `page.evaluate`, which Chromium's DevTools protocol runs in
the page without consulting its CSP; `add_script_tag` would add an inline script, which
the page's `script-src 'self'` blocks. The page fixtures fail a test on any CSP
violation, so every test here also shows that axe itself trips none.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

try:
    from axe_playwright_python.base import AXE_SCRIPT
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips, or fails in CI, saying why
    AXE_SCRIPT = expect = None

from ..support.browser import LiveSite
from ..support.homepage import open_home, open_run

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("badge_runs")]

WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
BLOCKING = ("serious", "critical")
RUN_AXE = """async (tags) => {
  const results = await axe.run(document, {
    runOnly: { type: "tag", values: tags },
    resultTypes: ["violations"],
  });
  return {
    version: axe.version,
    nodes: results.violations.flatMap((rule) => rule.nodes.map((node) => ({
      id: rule.id,
      impact: node.impact || rule.impact,
      target: node.target.flat().join(" "),
      summary: node.failureSummary.replace(/\\s+/g, " "),
    }))),
  };
}"""

# How a new (QUEUED) run reaches each status through allowed transitions.
PATHS = {
    "QUEUED": [],
    "PENDING": ["PENDING"],
    "RUNNING": ["PENDING", "RUNNING"],
    "CANCELLING": ["RUNNING", "CANCELLING"],
    "SUCCEEDED": ["RUNNING", "SUCCEEDED"],
    "FAILED": ["RUNNING", "FAILED"],
    "SYSTEM_ERROR": ["SYSTEM_ERROR"],
    "CANCELLED": ["CANCELLED"],
    "SKIPPED": ["SKIPPED"],
}
BADGE_RUN = "a11y-badge-"
FILTERED = f"?name={BADGE_RUN}&akey=team&aval=a11y&" + "&".join(f"status={s}" for s in PATHS)


def serious_violations(page: Any) -> tuple[str, list[str]]:
    """axe-core's version, and one line per element with a serious or critical violation."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE_SCRIPT)
    report = page.evaluate(RUN_AXE, WCAG_A_AA)
    lines = [
        f"{node['id']} ({node['impact']}) at {node['target']}: {node['summary']}"
        for node in report["nodes"]
        if node["impact"] in BLOCKING
    ]
    return report["version"], lines


def assert_accessible(page: Any) -> None:
    version, lines = serious_violations(page)
    assert not lines, f"axe-core {version} found serious or critical violations:\n" + "\n".join(
        lines
    )


@pytest.fixture(scope="module")
def badge_runs(live_site: LiveSite) -> None:
    """One run of bob's in each status, named a11y-badge-<STATUS>, annotated team=a11y.

    Each is put in live_site.runs, so that open_run opens it rather than making another.

    They are the newest runs once made, so this module is named to run after
    test_homepage.py, whose screenshots (docs/homepage.png among them) show demo data.
    """
    for status, path in PATHS.items():
        name = f"{BADGE_RUN}{status}"
        response = requests.post(
            f"{live_site.url}/api/pipeline_runs/",
            json={"name": name, "created_by": "bob", "annotations": {"team": "a11y"}},
            headers=live_site.headers("root"),
            timeout=10,
        )
        assert response.status_code == 201, response.text
        for step in path:
            response = requests.post(
                f"{live_site.url}/api/pipeline_runs/{response.json()['id']}/transitions",
                json={"status": step},
                headers=live_site.headers("root"),
                timeout=10,
            )
            assert response.status_code == 200, response.text
        assert response.json()["status"] == status
        live_site.runs[name] = response.json()


def test_the_filtered_homepage_with_every_status_badge_has_no_serious_violation(
    sized_page, live_site
):
    open_home(sized_page, live_site, FILTERED)
    expect(sized_page.locator("#runs-body .badge")).to_have_count(len(PATHS))
    expect(sized_page.locator("#status-chips .chip[aria-pressed=true]")).to_have_count(len(PATHS))
    sized_page.click(".query summary")
    expect(sized_page.locator("#filter-query-text")).to_be_visible()
    assert_accessible(sized_page)


def test_the_run_dialog_with_history_annotations_and_an_error_has_no_serious_violation(
    sized_page, live_site
):
    open_run(sized_page, live_site, f"{BADGE_RUN}RUNNING")
    expect(sized_page.locator("#run-history tr")).to_have_count(len(PATHS["RUNNING"]))
    expect(sized_page.locator("#run-annotations .remove")).to_have_count(1)
    sized_page.click("#run-cancel")
    expect(sized_page.locator("#run-error")).to_contain_text("Enter a token")
    assert_accessible(sized_page)


def test_the_check_fails_on_a_badge_below_the_contrast_minimum(page, live_site):
    open_home(page, live_site, FILTERED)
    page.eval_on_selector(
        "#runs-body tr[data-status=SKIPPED] .badge",
        """badge => {
          badge.id = "faint-badge";
          badge.style.color = "#6b7280";
          badge.style.background = "#f3f4f6";
        }""",
    )
    with pytest.raises(AssertionError) as failure:
        assert_accessible(page)
    message = str(failure.value)
    assert "color-contrast (serious) at #faint-badge: " in message
    assert "insufficient color contrast of 4.39" in message
