"""The Redis client every shared structure uses: short timeouts, one retry.

A sick Redis must cost a request milliseconds, not seconds: the stats cache
falls back to per-process answers when Redis is unusable, so waiting on it
longer buys nothing.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .config import Settings

CONNECT_TIMEOUT_SECONDS = 0.25
COMMAND_TIMEOUT_SECONDS = 0.25


def make_redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=0,
        client_name="runstats",
    )


def init_app(app: Any, settings: Settings) -> None:
    """The app's Redis client (None when no Redis is configured); tests may pass their own."""
    client = app.config.get("RUNSTATS_REDIS_CLIENT")
    if client is None and settings.redis_url:
        client = make_redis_client(settings.redis_url)
    app.extensions["runstats_redis"] = client
