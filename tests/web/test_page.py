"""The homepage as Flask serves it: public, a strict CSP, nothing inline (no browser needed).

tests/browser drives the same page in Chromium.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask

from runstats_app.web.routes import CONTENT_SECURITY_POLICY

from ..support.app import make_app

EXPECTED_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
STATIC = Path(__file__).resolve().parents[2] / "runstats_app" / "web" / "static"


class _Inline(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, styles and handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.assets: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}=…>")
        if tag == "style":
            self.problems.append("<style>")
        if tag == "script":
            if not names.get("src"):
                self.problems.append("inline <script>")
            else:
                self.assets.append(str(names["src"]))
            self._in_script = True
        if tag == "link" and names.get("href"):
            self.assets.append(str(names["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("script body")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'page.sqlite'}"
    return make_app(url, require_auth_for_reads=True, stats_cache_ttl=17)


def test_the_page_is_public_even_when_reads_need_a_token(app):
    response = app.test_client().get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert app.test_client().get("/api/pipeline_runs/stats").status_code == 401


def test_the_page_has_the_strict_content_security_policy(app):
    response = app.test_client().get("/")
    assert CONTENT_SECURITY_POLICY == EXPECTED_POLICY
    assert response.headers["Content-Security-Policy"] == EXPECTED_POLICY
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_has_no_inline_script_style_or_event_handler(app):
    parser = _Inline()
    parser.feed(app.test_client().get("/").get_data(as_text=True))
    assert parser.problems == []
    assert parser.assets


def test_the_scripts_set_no_inline_style_or_handler():
    for path in STATIC.rglob("*.js"):
        text = path.read_text()
        assert not re.search(r"\.innerHTML\s*=|setAttribute\(\s*[\"'](style|on\w+)", text), path
        assert "eval(" not in text and "new Function" not in text, path


def test_every_asset_the_page_names_is_served(app):
    client = app.test_client()
    parser = _Inline()
    parser.feed(client.get("/").get_data(as_text=True))
    for asset in parser.assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        response.close()


def test_every_module_the_page_imports_is_served_as_javascript(app):
    """Follows `import … from "./x.js"` from the page's scripts through the whole graph."""
    client = app.test_client()
    parser = _Inline()
    parser.feed(client.get("/").get_data(as_text=True))
    pending = [asset for asset in parser.assets if asset.endswith(".js")]
    served: set[str] = set()
    while pending:
        module = pending.pop()
        if module in served:
            continue
        response = client.get(module)
        assert response.status_code == 200, module
        assert response.mimetype in ("text/javascript", "application/javascript"), module
        imported = re.findall(r'from "\./([\w.-]+\.js)"', response.get_data(as_text=True))
        response.close()
        pending += [module.rsplit("/", 1)[0] + "/" + name for name in imported]
        served.add(module)
    on_disk = {path.name for path in (STATIC / "js").glob("*.js")}
    assert {module.rsplit("/", 1)[1] for module in served} == on_disk


def test_the_page_carries_the_cache_ttl_and_the_read_policy(app):
    html = app.test_client().get("/").get_data(as_text=True)
    assert 'data-stats-ttl="17"' in html
    assert 'data-reads-need-token="1"' in html
