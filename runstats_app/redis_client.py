"""The Redis client every shared structure uses: short timeouts, one retry.

A sick Redis must cost a request milliseconds, not seconds: the stats cache
falls back to per-process answers when Redis is unusable, so waiting on it
longer buys nothing. Three ways to reach it (config.py allows one):

- a server (RUNSTATS_REDIS_URL);
- the master that Sentinels name (RUNSTATS_REDIS_SENTINELS and
  RUNSTATS_REDIS_SENTINEL_SERVICE): each new connection asks a Sentinel where
  the master is, and a connection to a master that was demoted is dropped, so
  the client follows a failover without a restart;
- a Redis Cluster (RUNSTATS_REDIS_CLUSTER_URL, one node's URL), built on first
  use (redis_cluster.py).
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from .config import Settings
from .redis_cluster import LazyCluster

CONNECT_TIMEOUT_SECONDS = 0.25
COMMAND_TIMEOUT_SECONDS = 0.25

RedisClient = redis.Redis | RedisCluster | LazyCluster
"""What the shared structures are given: each supports the commands, scripts and locks
they use (every multi-key script's keys share one hash slot)."""


def _timeouts() -> dict[str, Any]:
    return {
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": COMMAND_TIMEOUT_SECONDS,
    }


def _options() -> dict[str, Any]:
    return {
        **_timeouts(),
        "retry": Retry(NoBackoff(), 1),
        "health_check_interval": 0,
        "client_name": "runstats",
    }


def make_redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, **_options())


def make_sentinel_client(sentinels: tuple[tuple[str, int], ...], service: str) -> redis.Redis:
    """The master of `service`, found through the Sentinels, with the same short timeouts
    for the Sentinels as for the master."""
    sentinel = Sentinel(list(sentinels), sentinel_kwargs=_timeouts(), **_timeouts())
    return sentinel.master_for(service, **_options())


def make_cluster_client(url: str) -> LazyCluster:
    return LazyCluster(url, **_options())


def client_for(settings: Settings) -> RedisClient | None:
    """The client the settings name, or None without Redis."""
    if settings.redis_sentinels:
        return make_sentinel_client(settings.sentinel_addresses, settings.redis_sentinel_service)
    if settings.redis_cluster_url:
        return make_cluster_client(settings.redis_cluster_url)
    if settings.redis_url:
        return make_redis_client(settings.redis_url)
    return None


def init_app(app: Any, settings: Settings) -> None:
    """The app's Redis client (None when no Redis is configured); tests may pass their own."""
    client = app.config.get("RUNSTATS_REDIS_CLIENT")
    if client is None:
        client = client_for(settings)
    app.extensions["runstats_redis"] = client
