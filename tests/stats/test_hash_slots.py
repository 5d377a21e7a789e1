"""Every script call touches one Redis Cluster hash slot: the keys of each call, as the
cache and the scan admission make them, recorded from a client and hashed by redis-py's
own key_slot. A script whose keys straddle slots fails on a Cluster (CROSSSLOT)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any

import fakeredis
import pytest
from redis.cluster import key_slot
from redis.commands.core import Script

from runstats_app.stats import scripts
from runstats_app.stats.cache import CacheSettings, StatsCache
from runstats_app.stats.canonical import cache_key, history_cache_key
from runstats_app.stats.result import SCAN, Computed

SETTINGS = CacheSettings(ttl_ms=1000, grace_ms=2000, lease_ms=500, wait_ms=1500)
SOURCES = {
    Script(fakeredis.FakeRedis(), path.read_bytes()).sha: path.name
    for path in resources.files(scripts).iterdir()
    if path.name.endswith(".lua")
}


class RecordingRedis(fakeredis.FakeRedis):
    """Records the keys of every script call (EVALSHA and EVAL), by script."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, list[bytes | str]]] = []

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        self.calls.append((sha, list(keys_and_args[:numkeys])))
        return super().evalsha(sha, numkeys, *keys_and_args)


class _Scan:
    source = SCAN

    def __call__(self) -> Computed:
        return Computed(b'{"n": 1}', datetime(2026, 3, 19, tzinfo=UTC), SCAN)


def _slot(key: bytes | str) -> int:
    return key_slot(key.encode() if isinstance(key, str) else key)


@pytest.fixture
def recorded() -> list[tuple[str, list[bytes | str]]]:
    """The script calls of a miss, a hit, a recompute past the TTL, under a key prefix."""
    client = RecordingRedis()
    cache = StatsCache(SETTINGS, client, key_prefix="tenant:")
    key = cache_key(None, None)
    cache.get(key, _Scan())
    cache.get(key, _Scan())
    client.pexpire(f"tenant:{key}", SETTINGS.grace_ms - 100)
    cache.get(key, _Scan())
    return client.calls


def test_every_script_call_keeps_its_keys_in_one_slot(recorded):
    spread = [(sha, keys) for sha, keys in recorded if len({_slot(k) for k in keys}) != 1]
    assert recorded and spread == []


def test_the_calls_recorded_cover_every_script_of_the_app(recorded):
    called = {SOURCES.get(sha) for sha, _ in recorded}
    assert set(SOURCES.values()) <= called


@pytest.mark.parametrize(
    "key",
    [
        cache_key(None, None),
        history_cache_key(
            None, None, "hour", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
        ),
    ],
)
def test_a_result_and_its_lease_and_generation_share_a_slot(key):
    slots = {key_slot(f"{key}{suffix}".encode()) for suffix in ("", ":lease", ":gen")}
    assert len(slots) == 1
