"""Asking the stats endpoints about a test's own runs, and reading their cache headers."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

STATS_URL = "/api/pipeline_runs/stats"
SUITE = "stats-suite"
"""The annotation key whose value (a test's `tag`) scopes the runs a test counts."""


def suite_filter(tag: str, *more: Mapping[str, Any]) -> dict[str, Any]:
    """A filter_query for the runs tagged `tag`, and'ed with `more`."""
    return {"and": [{"value_equals": {"key": SUITE, "value": tag}}, *more]}


def get_stats(
    client: FlaskClient,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str] | None = None,
) -> TestResponse:
    return client.get(f"{STATS_URL}?{urlencode(query)}", headers=dict(headers or {}))


def redis_of(stats_cache: Any) -> Any:
    """The Redis client behind a test's stats cache."""
    return stats_cache.shared.client


def max_age(response: TestResponse) -> int:
    """The answer's Cache-Control max-age (and that it says nothing else)."""
    match = re.fullmatch(r"max-age=(\d+)", response.headers["Cache-Control"])
    assert match, response.headers["Cache-Control"]
    return int(match.group(1))
