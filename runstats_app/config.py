"""One Settings object, read from RUNSTATS_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A setting is invalid: the app refuses to start and says why."""


def _env_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"not a boolean: {value!r}")


def _entries(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def _address(entry: str) -> tuple[str, int]:
    host, colon, port = entry.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"RUNSTATS_REDIS_SENTINELS takes host:port entries separated by commas, got {entry!r}"
        )
    return host.strip("[]"), int(port)


def check_redis_settings(settings: Settings) -> None:
    """One way to Redis at most (a URL, Sentinels or a Cluster), each complete."""
    given = [
        name
        for name, value in (
            ("RUNSTATS_REDIS_URL", settings.redis_url),
            ("RUNSTATS_REDIS_SENTINELS", settings.redis_sentinels),
            ("RUNSTATS_REDIS_CLUSTER_URL", settings.redis_cluster_url),
        )
        if value
    ]
    if len(given) > 1:
        raise ConfigError(
            f"{' and '.join(given)} are set: choose one way to reach Redis "
            "(a server, Sentinels or a Cluster)"
        )
    if bool(settings.redis_sentinels) != bool(settings.redis_sentinel_service):
        raise ConfigError(
            "RUNSTATS_REDIS_SENTINELS and RUNSTATS_REDIS_SENTINEL_SERVICE go together: "
            "the Sentinels' addresses and the name of the master they monitor"
        )
    if settings.redis_sentinels and not settings.sentinel_addresses:
        raise ConfigError("RUNSTATS_REDIS_SENTINELS names no Sentinel")
    cluster = settings.redis_cluster_url
    if cluster and not cluster.startswith(("redis://", "rediss://")):
        raise ConfigError(
            "RUNSTATS_REDIS_CLUSTER_URL takes a redis:// or rediss:// URL of one of the "
            f"Cluster's nodes, got {cluster.split(':')[0]!r}"
        )
    if cluster and urlsplit(cluster).path not in ("", "/", "/0"):
        raise ConfigError("RUNSTATS_REDIS_CLUSTER_URL: a Redis Cluster has database 0 only")


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    redis_url: str | None = None
    redis_sentinels: str = ""
    redis_sentinel_service: str = ""
    redis_cluster_url: str = ""
    secret_key: str | None = None
    stats_cache_ttl: int = 30
    stats_cache_grace: int = 120
    require_auth_for_reads: bool = False
    statement_timeout_ms: int = 5000
    stats_lease_ms: int = 0
    stats_wait_ms: int = 0
    stats_scans_per_process: int = 2
    stats_scans_total: int = 2
    stats_scan_timeout_ms: int = 0
    trusted_proxies: int = 0
    database_replica_urls: str = ""
    replica_max_lag_ms: int = 5000
    test_scan_sleep_ms: int = 0
    log_level: str = "INFO"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.stats_cache_ttl <= 60:
            raise ConfigError(
                f"RUNSTATS_STATS_CACHE_TTL must be between 1 and 60 seconds, "
                f"got {self.stats_cache_ttl}"
            )
        if not 0 <= self.stats_cache_grace <= 3600:
            raise ConfigError(
                f"RUNSTATS_STATS_CACHE_GRACE must be between 0 and 3600 seconds, "
                f"got {self.stats_cache_grace}"
            )
        if self.statement_timeout_ms < 100:
            raise ConfigError(
                f"RUNSTATS_STATEMENT_TIMEOUT_MS must be at least 100, got "
                f"{self.statement_timeout_ms}"
            )
        if self.stats_scan_timeout_ms and self.stats_scan_timeout_ms < 100:
            raise ConfigError(
                f"RUNSTATS_STATS_SCAN_TIMEOUT_MS must be at least 100, got "
                f"{self.stats_scan_timeout_ms}"
            )
        if self.stats_lease_ms and self.stats_lease_ms <= self.query_timeout_ms:
            raise ConfigError(
                "RUNSTATS_STATS_LEASE_MS must exceed RUNSTATS_STATEMENT_TIMEOUT_MS and "
                f"RUNSTATS_STATS_SCAN_TIMEOUT_MS ({self.stats_lease_ms} <= "
                f"{self.query_timeout_ms}): a lease must outlive the query it guards"
            )
        if not 1 <= self.stats_scans_per_process <= 64:
            raise ConfigError(
                "RUNSTATS_STATS_SCANS_PER_PROCESS must be between 1 and 64, got "
                f"{self.stats_scans_per_process}"
            )
        if not 1 <= self.stats_scans_total <= 1024:
            raise ConfigError(
                f"RUNSTATS_STATS_SCANS_TOTAL must be between 1 and 1024, got "
                f"{self.stats_scans_total}"
            )
        if self.replica_max_lag_ms < 0:
            raise ConfigError(
                f"RUNSTATS_REPLICA_MAX_LAG_MS must be 0 or more, got {self.replica_max_lag_ms}"
            )
        for url in self.replica_urls:
            if not url.startswith("postgresql"):
                raise ConfigError(
                    "RUNSTATS_DATABASE_REPLICA_URLS takes PostgreSQL URLs (streaming "
                    f"replicas), got {url.split(':')[0]!r}"
                )
        check_redis_settings(self)
        if not 0 <= self.trusted_proxies <= 10:
            raise ConfigError(
                f"RUNSTATS_TRUSTED_PROXIES must be between 0 and 10, got {self.trusted_proxies}"
            )
        if self.stats_wait_ms and self.stats_wait_ms <= self.lease_ms:
            raise ConfigError(
                "RUNSTATS_STATS_WAIT_MS must exceed the stats lease "
                f"({self.stats_wait_ms} <= {self.lease_ms}): waiters must outlive a dead owner"
            )

    @property
    def sentinel_addresses(self) -> tuple[tuple[str, int], ...]:
        """The Sentinels' (host, port), in the order given (checked at startup)."""
        return tuple(_address(entry) for entry in _entries(self.redis_sentinels))

    @property
    def replica_urls(self) -> tuple[str, ...]:
        """The streaming replicas' URLs, in the order given."""
        return tuple(u.strip() for u in self.database_replica_urls.split(",") if u.strip())

    @property
    def scan_timeout_ms(self) -> int:
        """The statement timeout of stats scans (default: the one of every other query)."""
        return self.stats_scan_timeout_ms or self.statement_timeout_ms

    @property
    def query_timeout_ms(self) -> int:
        """The longest a stats computation's query may run."""
        return max(self.statement_timeout_ms, self.scan_timeout_ms)

    @property
    def lease_ms(self) -> int:
        """The stats lease: longer than the query it guards, shorter than a worker's timeout."""
        return self.stats_lease_ms or self.query_timeout_ms + 3000

    @property
    def wait_ms(self) -> int:
        """How long a request waits for someone else's result before a 503."""
        return self.stats_wait_ms or self.lease_ms + 4000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            name = f"RUNSTATS_{f.name.upper()}"
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            try:
                if f.type == "int":
                    values[f.name] = int(raw)
                elif f.type == "bool":
                    values[f.name] = _env_bool(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}") from exc
        return cls(**values)

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        known = {f.name for f in fields(self)}
        direct = {k: v for k, v in overrides.items() if k in known}
        extra = {k: v for k, v in overrides.items() if k not in known}
        return replace(self, **direct, extra={**self.extra, **extra})
