"""The ways to Redis: one of a URL, Sentinels or a Cluster, refused at startup when
conflicting or malformed, and the client each one builds."""

from __future__ import annotations

import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from runstats_app.config import ConfigError, Settings
from runstats_app.redis_client import COMMAND_TIMEOUT_SECONDS, client_for
from runstats_app.redis_cluster import LazyCluster

from .support.servers import free_port

SENTINELS = {
    "RUNSTATS_REDIS_SENTINELS": "10.0.0.1:26379, sentinel-2:26380,[::1]:26381",
    "RUNSTATS_REDIS_SENTINEL_SERVICE": "runstats",
}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"RUNSTATS_REDIS_URL": "redis://r:6379/0", **SENTINELS},
            "RUNSTATS_REDIS_URL and RUNSTATS_REDIS_SENTINELS are set",
        ),
        (
            {"RUNSTATS_REDIS_URL": "redis://r/0", "RUNSTATS_REDIS_CLUSTER_URL": "redis://c/0"},
            "choose one way to reach Redis",
        ),
        ({"RUNSTATS_REDIS_SENTINELS": "s:26379"}, "go together"),
        ({"RUNSTATS_REDIS_SENTINEL_SERVICE": "runstats"}, "go together"),
        (
            {**SENTINELS, "RUNSTATS_REDIS_SENTINELS": "s1:26379,s2"},
            "host:port entries separated by commas, got 's2'",
        ),
        ({**SENTINELS, "RUNSTATS_REDIS_SENTINELS": "s1:70000"}, "got 's1:70000'"),
        ({**SENTINELS, "RUNSTATS_REDIS_SENTINELS": " , "}, "names no Sentinel"),
        ({"RUNSTATS_REDIS_CLUSTER_URL": "c1:7000"}, "takes a redis:// or rediss:// URL"),
        ({"RUNSTATS_REDIS_CLUSTER_URL": "redis://c1:7000/3"}, "database 0 only"),
    ],
)
def test_conflicting_or_malformed_redis_settings_refuse_to_start(env, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        Settings.from_env(env)


def test_sentinel_addresses_are_read_in_order():
    settings = Settings.from_env(SENTINELS)
    assert settings.sentinel_addresses == (
        ("10.0.0.1", 26379),
        ("sentinel-2", 26380),
        ("::1", 26381),
    )


def test_sentinels_give_a_client_of_the_services_master_with_short_timeouts():
    client = client_for(Settings.from_env(SENTINELS))
    assert isinstance(client, redis.Redis)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "runstats"
    assert pool.connection_kwargs["socket_timeout"] == COMMAND_TIMEOUT_SECONDS
    for sentinel in pool.sentinel_manager.sentinels:
        kwargs = sentinel.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == COMMAND_TIMEOUT_SECONDS


def test_a_cluster_client_connects_on_first_use_not_at_startup():
    url = f"redis://127.0.0.1:{free_port()}/0"
    client = client_for(Settings.from_env({"RUNSTATS_REDIS_CLUSTER_URL": url}))
    assert isinstance(client, LazyCluster)
    assert client.register_script(b"return 1").sha


def test_an_unreachable_cluster_fails_with_a_redis_error():
    client = client_for(
        Settings.from_env({"RUNSTATS_REDIS_CLUSTER_URL": f"redis://127.0.0.1:{free_port()}/0"})
    )
    with pytest.raises(redis.RedisError):
        client.ping()


def test_no_redis_setting_means_no_client():
    assert client_for(Settings.from_env({})) is None
