"""Refusals answered in front of the app (stats/shortcut.py) while this process's scans are
refused: the same answers the app gives, without a worker's whole request."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from flask.testing import FlaskClient

from runstats_app.metrics import stats_scans_refused
from runstats_app.stats.admission import HOSTS
from runstats_app.stats.cache import StatsCache

from ..support.contract import CREATED_BY
from ..support.metrics import counted
from ..support.stats import STATS, hold_every_slot


def either(*users: str) -> dict[str, str]:
    """A filter only a scan answers (an `or`), one cache key per set of users; a query
    string of this test's own (the memo of resolved queries outlives a test)."""
    test = os.environ["PYTEST_CURRENT_TEST"].split(" ")[0]
    clauses = [{"value_equals": {"key": CREATED_BY, "value": user}} for user in users]
    clauses.append({"value_equals": {"key": "test", "value": test}})
    return {"filter_query": json.dumps({"or": clauses})}


MINE = {
    "filter_query": json.dumps({"and": [{"value_equals": {"key": CREATED_BY, "value": "me"}}]}),
    "current_user": "alice",
}
# Headers that differ between two answers of the same request by design.
PER_ANSWER = {"X-Request-ID", "Retry-After"}


@pytest.fixture
def slots_full(stats_cache: StatsCache) -> Iterator[None]:
    """Every shared scan slot held by other processes' scans, as in a flood."""
    with _slots_full(stats_cache):
        yield


def _headers(response: Any) -> dict[str, str]:
    return {name: value for name, value in response.headers if name not in PER_ANSWER}


def test_once_refused_a_known_scan_is_refused_in_front_as_the_app_refused_it(
    client: FlaskClient, slots_full: None, app_calls: list[int]
) -> None:
    refused = stats_scans_refused.labels(scope=HOSTS)
    by_app = client.get(STATS, query_string=either("ann", "bob"))
    before = counted(refused)
    in_front = client.get(STATS, query_string=either("ann", "bob"))
    assert len(app_calls) == 1
    assert by_app.status_code == in_front.status_code == 503
    assert in_front.data == by_app.data
    assert _headers(in_front) == _headers(by_app)
    assert 1 <= int(in_front.headers["Retry-After"]) <= 60
    assert counted(refused) == before + 1


def test_a_filter_the_counts_may_answer_is_never_refused_in_front(
    client: FlaskClient, slots_full: None, app_calls: list[int]
) -> None:
    """Reads of the counts need no slot (PostgreSQL answers "me" from them; SQLite scans,
    and only the app can say so)."""
    client.get(STATS, query_string=MINE)
    assert client.get(STATS, query_string=either("ann", "bob")).status_code == 503
    calls = len(app_calls)
    again = client.get(STATS, query_string=MINE)
    assert len(app_calls) == calls + 1 or (again.status_code, again.headers["X-Cache"]) == (
        200,
        "hit",
    )


def test_a_query_string_not_seen_yet_goes_to_the_app(
    client: FlaskClient, slots_full: None, app_calls: list[int]
) -> None:
    assert client.get(STATS, query_string=either("ann", "bob")).status_code == 503
    assert client.get(STATS, query_string=either("cat", "dan")).status_code == 503
    assert len(app_calls) == 2


def test_a_stale_result_is_answered_in_front(
    client: FlaskClient, stats_cache: StatsCache, app_calls: list[int]
) -> None:
    computed = client.get(STATS, query_string=either("ann", "bob"))
    assert computed.headers["X-Cache"] == "miss"
    for key in stats_cache.shared.client.scan_iter(match=f"{stats_cache.key_prefix}*"):  # type: ignore[union-attr]
        if not key.endswith((b":gen", b":lease")):
            stats_cache.shared.client.pexpire(key, stats_cache.settings.grace_ms - 1000)  # type: ignore[union-attr]
    with _slots_full(stats_cache):
        assert client.get(STATS, query_string=either("cat", "dan")).status_code == 503
        stale = client.get(STATS, query_string=either("ann", "bob"))
    assert len(app_calls) == 2
    assert stale.status_code == 200
    assert stale.headers["X-Cache"] == "stale"
    assert stale.data == computed.data


def test_a_token_is_checked_before_anything_is_answered_for_it(
    client: FlaskClient,
    slots_full: None,
    auth: Callable[..., dict[str, str]],
    app_calls: list[int],
) -> None:
    reader = auth("ann", "reader")
    assert client.get(STATS, query_string=either("ann", "bob"), headers=reader).status_code == 503
    again = client.get(STATS, query_string=either("ann", "bob"), headers=reader)
    assert again.status_code == 503
    assert len(app_calls) == 1
    forged = client.get(
        STATS, query_string=either("ann", "bob"), headers={"Authorization": "Bearer forged"}
    )
    malformed = client.get(
        STATS, query_string=either("ann", "bob"), headers={"Authorization": "Basic abc"}
    )
    assert (forged.status_code, malformed.status_code) == (401, 401)


def test_when_the_window_ends_the_app_computes_again(
    client: FlaskClient, stats_cache: StatsCache, app_calls: list[int]
) -> None:
    with _slots_full(stats_cache):
        assert client.get(STATS, query_string=either("ann", "bob")).status_code == 503
        window = stats_cache.admission.windows.open_for(None, time.monotonic())
    assert window is not None
    time.sleep(window[1] + 0.01)
    answer = client.get(STATS, query_string=either("ann", "bob"))
    assert answer.status_code == 200
    assert answer.headers["X-Cache"] == "miss"
    assert len(app_calls) == 2


def _slots_full(stats_cache: StatsCache) -> ExitStack:
    assert stats_cache.shared is not None
    return hold_every_slot(stats_cache, stats_cache.shared.client)
