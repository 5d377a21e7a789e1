"""A Redis Cluster client built on first use, whose failures are all Redis errors.

redis-py's RedisCluster connects (and raises) in its constructor, and some of
its failures (no reachable node, a slot not covered) are not RedisErrors.
Redis is optional to runstats: a Cluster down when a worker starts must cost
that worker the shared cache until it comes back, never its start, and every
failure must reach the stats cache's breaker as a RedisError.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.connection import Encoder
from redis.exceptions import ClusterError, RedisClusterException, RedisError
from redis.lock import Lock

ENCODER = Encoder("utf-8", "strict", False)


class LazyCluster:
    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.options = options
        self._cluster: RedisCluster | None = None
        self._lock = threading.Lock()

    def cluster(self) -> RedisCluster:
        """The RedisCluster, built now if it is not yet (a ClusterError if no node answers)."""
        with self._lock:
            if self._cluster is None:
                try:
                    self._cluster = RedisCluster.from_url(self.url, **self.options)
                except (RedisClusterException, RedisError) as exc:
                    raise ClusterError(f"Redis Cluster unreachable: {exc}") from exc
            return self._cluster

    def get_encoder(self) -> Any:
        """What scripts and locks hash their source with, known without a connection."""
        return ENCODER

    def register_script(self, script: bytes | str) -> Script:
        return Script(self, script)  # type: ignore[arg-type]

    def lock(self, name: str, **options: Any) -> Lock:
        return Lock(self, name, **options)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.cluster(), name)
        if not callable(attribute):
            return attribute
        return _as_redis_errors(attribute)


def _as_redis_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except RedisClusterException as exc:
            raise ClusterError(str(exc)) from exc

    return call
