"""Asking the stats endpoints about a test's own runs; their cache headers, entries and leases."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import urlencode

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from runstats_app.degraded import RateLimitedWarning
from runstats_app.stats.admission import ScanAdmission
from runstats_app.stats.cache import StatsCache

STATS = "/api/pipeline_runs/stats"
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
    return client.get(f"{STATS}?{urlencode(query)}", headers=dict(headers or {}))


def redis_of(stats_cache: Any) -> Any:
    """The Redis client behind a test's stats cache."""
    return stats_cache.shared.client


def max_age(response: TestResponse) -> int:
    """The answer's Cache-Control max-age (and that it says nothing else)."""
    match = re.fullmatch(r"max-age=(\d+)", response.headers["Cache-Control"])
    assert match, response.headers["Cache-Control"]
    return int(match.group(1))


def set_ttl_left(stats_cache: StatsCache, key: str, milliseconds: int) -> None:
    """Age the shared entry at `key` so that `milliseconds` of its TTL are left (negative:
    that far past the TTL, within the grace). Redis' PTTL is the cache's clock."""
    redis_of(stats_cache).pexpire(key, stats_cache.settings.grace_ms + milliseconds)


@contextmanager
def lease_held(stats_cache: StatsCache, key: str) -> Iterator[None]:
    """Another worker computing `key` meanwhile: its lease is held."""
    lease = redis_of(stats_cache).lock(f"{key}:lease", timeout=30, blocking=False)
    assert lease.acquire()
    try:
        yield
    finally:
        lease.release()


class StatsCaches:
    """Stats caches of a test's own (key prefix, local store), each in place of the app's."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.original: StatsCache = app.extensions["runstats_stats_cache"]
        self.prefixes: list[str] = []

    def install(self) -> StatsCache:
        prefix = f"test-{uuid.uuid4().hex}:"
        self.prefixes.append(prefix)
        cache = StatsCache(
            self.original.settings, self.app.extensions["runstats_redis"], key_prefix=prefix
        )
        self.app.extensions["runstats_stats_cache"] = cache
        return cache

    def restore(self) -> None:
        self.app.extensions["runstats_stats_cache"] = self.original
        client = self.app.extensions["runstats_redis"]
        for prefix in self.prefixes if client is not None else []:
            for key in client.scan_iter(match=f"{prefix}*", count=500):
                client.delete(key)


def hold_every_slot(cache: StatsCache, client: Any) -> ExitStack:
    """Every shared scan slot of `cache`'s bound, held (until the stack closes) by other
    processes' scans through `client`, as in a flood."""
    others = ScanAdmission(
        per_process=cache.admission.total,
        total=cache.admission.total,
        lease_ms=cache.settings.lease_ms,
        client=client,
        breaker=None,
        warn=RateLimitedWarning(logging.getLogger(__name__)),
    )
    stack = ExitStack()
    for n in range(cache.admission.total):
        assert stack.enter_context(others.admit(f"other-{n}", shared=True)) is None
    return stack
