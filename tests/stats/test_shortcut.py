"""Fresh stats hits answered in front of the app (stats/shortcut.py); the rest handed on."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from runstats_app.metrics import http_request_seconds
from runstats_app.stats.cache import StatsCache
from runstats_app.stats.shortcut import StatsShortcut

from ..support.app import make_app
from ..support.contract import CREATED_BY
from ..support.metrics import observed_count
from ..support.stats import STATS

MINE = {
    "filter_query": json.dumps({"and": [{"value_equals": {"key": CREATED_BY, "value": "me"}}]}),
    "current_user": "alice",
}
# Headers that differ between two answers of the same request by design.
PER_ANSWER = {"X-Request-ID", "X-Cache", "Cache-Control"}


def _headers(response: Any) -> dict[str, str]:
    return {name: value for name, value in response.headers if name not in PER_ANSWER}


def test_a_fresh_hit_is_answered_without_the_app(
    client: FlaskClient, app_calls: list[int]
) -> None:
    first = client.get(STATS, query_string=MINE)
    second = client.get(STATS, query_string=MINE)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    assert len(app_calls) == 1
    assert second.data == first.data


def test_the_shortcut_answers_what_the_app_answers_for_a_hit(
    client: FlaskClient, auth: Callable[..., dict[str, str]], app_calls: list[int]
) -> None:
    client.get(STATS, query_string=MINE)
    by_shortcut = client.get(STATS, query_string={**MINE, "current_user": "alice"})
    by_app = client.get(STATS, query_string=MINE, headers=auth("alice", "reader"))
    assert by_app.headers["X-Cache"] == by_shortcut.headers["X-Cache"] == "hit"
    assert len(app_calls) == 2  # the miss, and the request that carried a token
    assert by_shortcut.status_code == by_app.status_code == 200
    assert by_shortcut.data == by_app.data
    assert _headers(by_shortcut) == _headers(by_app)
    assert by_shortcut.headers["Cache-Control"].startswith("max-age=")


def test_it_honours_an_incoming_request_id_and_logs_one_line(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    client.get(STATS, query_string=MINE)
    caplog.set_level(logging.INFO, logger="runstats_app.access")
    answer = client.get(STATS, query_string=MINE, headers={"X-Request-ID": "homepage-42"})
    assert answer.headers["X-Cache"] == "hit"
    assert answer.headers["X-Request-ID"] == "homepage-42"
    lines = [r.getMessage() for r in caplog.records if "request_id=homepage-42" in r.getMessage()]
    assert len(lines) == 1
    assert "method=GET route=/api/pipeline_runs/stats status=200" in lines[0]


def test_it_records_the_request_latency_under_the_route(client: FlaskClient) -> None:
    client.get(STATS, query_string=MINE)
    sample = http_request_seconds.labels(route=STATS, method="GET", status="200")
    before = observed_count(sample)
    assert client.get(STATS, query_string=MINE).headers["X-Cache"] == "hit"
    assert observed_count(sample) == before + 1


def test_a_query_string_never_validated_goes_to_the_app(
    client: FlaskClient, app_calls: list[int]
) -> None:
    answer = client.get(STATS, query_string={"filter_qurey": "{}"})
    assert answer.status_code == 400
    assert client.get(STATS, query_string={"filter_qurey": "{}"}).status_code == 400
    assert len(app_calls) == 2


def test_a_stale_result_goes_to_the_app(
    client: FlaskClient, stats_cache: StatsCache, app_calls: list[int]
) -> None:
    client.get(STATS, query_string=MINE)
    for key in stats_cache.shared.client.scan_iter(match=f"{stats_cache.key_prefix}*"):  # type: ignore[union-attr]
        if not key.endswith((b":gen", b":lease")):
            stats_cache.shared.client.pexpire(key, stats_cache.settings.grace_ms - 1000)  # type: ignore[union-attr]
    answer = client.get(STATS, query_string=MINE)
    assert answer.headers["X-Cache"] in {"miss", "stale"}
    assert len(app_calls) == 2


def test_with_redis_unusable_the_app_answers(
    client: FlaskClient, stats_cache: StatsCache, app_calls: list[int]
) -> None:
    client.get(STATS, query_string=MINE)
    for _ in range(stats_cache.settings.breaker_threshold):
        stats_cache.shared.breaker.failure()
    answer = client.get(STATS, query_string=MINE)
    assert answer.status_code == 200
    assert answer.headers["X-Cache"] == "bypass"
    assert len(app_calls) == 2


def test_other_paths_and_methods_go_to_the_app(client: FlaskClient) -> None:
    client.get(STATS, query_string=MINE)
    assert client.post(STATS, query_string=MINE).status_code == 405
    assert client.get(STATS + "/", query_string=MINE).status_code == 404


def _layers(app: Flask) -> list[Any]:
    """The WSGI layers in front of Flask's own wsgi_app, outermost first, then it."""
    layers = [app.wsgi_app]
    while hasattr(layers[-1], "app"):
        layers.append(layers[-1].app)
    return layers


def test_not_installed_when_reads_require_a_token(tmp_path: Any) -> None:
    open_reads = make_app(f"sqlite:///{tmp_path / 'a.sqlite'}")
    closed_reads = make_app(f"sqlite:///{tmp_path / 'b.sqlite'}", require_auth_for_reads=True)
    assert any(isinstance(layer, StatsShortcut) for layer in _layers(open_reads))
    assert not any(isinstance(layer, StatsShortcut) for layer in _layers(closed_reads))


def test_the_app_keeps_its_own_wsgi_app_behind_the_shortcut(app: Flask) -> None:
    *_, shortcut, own = _layers(app)
    assert isinstance(shortcut, StatsShortcut)
    assert own.__func__ is Flask.wsgi_app
