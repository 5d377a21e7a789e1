"""Redis as a deployment grows it, as local processes on free ports: a master and a
replica watched by three Sentinels, and a Redis Cluster of three masters.

The Sentinels notice a dead master after DOWN_AFTER_MS and fail over within
FAILOVER_TIMEOUT_MS (not the defaults of 30 s and 3 min), so a test can wait one out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Self

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from .probes import wait_for
from .servers import free_port
from .services import RedisServer

SERVICE = "runstats"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 2500


def require_redis_server() -> None:
    """Skip without redis-server and redis-cli, unless the real services are required
    (RUNSTATS_TEST_REQUIRE_SERVICES=1): then fail."""
    missing = [name for name in ("redis-server", "redis-cli") if shutil.which(name) is None]
    if not missing:
        return
    message = f"{' and '.join(missing)} not installed"
    if os.environ.get("RUNSTATS_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}, and RUNSTATS_TEST_REQUIRE_SERVICES=1")
    pytest.skip(message)


def _info(port: int, section: str) -> dict[str, object]:
    try:
        return dict(redis.Redis(port=port, socket_timeout=1).info(section))
    except redis.RedisError:
        return {}


class SentinelGroup:
    """A master, its replica and three Sentinels (quorum 2) monitoring it as SERVICE."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers: list[RedisServer] = []
        self.sentinels: list[RedisServer] = []

    def _directory(self, name: str) -> Path:
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def start(self) -> Self:
        master = RedisServer(directory=self._directory("master")).start()
        self.servers.append(master)
        replica = RedisServer(
            ["--replicaof", "127.0.0.1", str(master.port)], directory=self._directory("replica")
        ).start()
        self.servers.append(replica)
        synced = wait_for(
            lambda: _info(replica.port, "replication").get("master_link_status") == "up", 15
        )
        assert synced, "the replica never synchronised with the master"
        for index in range(3):
            directory = self._directory(f"sentinel{index}")
            config = directory / "sentinel.conf"
            config.write_text(
                f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            sentinel = RedisServer(["--sentinel"], config_file=config, directory=directory)
            self.sentinels.append(sentinel.start())
        assert wait_for(self._all_known, 20), "the Sentinels never found each other"
        return self

    def _all_known(self) -> bool:
        """Every Sentinel knows the replica and the two other Sentinels (a failover needs
        a majority to elect a leader)."""
        for sentinel in self.sentinels:
            try:
                state = redis.Redis(port=sentinel.port, socket_timeout=1).sentinel_master(SERVICE)
            except redis.RedisError:
                return False
            if state["num-slaves"] < 1 or state["num-other-sentinels"] < 2:
                return False
        return True

    def env(self) -> dict[str, str]:
        """The settings that point runstats at this group (and at no plain Redis URL)."""
        return {
            "RUNSTATS_REDIS_URL": "",
            "RUNSTATS_REDIS_SENTINELS": ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels),
            "RUNSTATS_REDIS_SENTINEL_SERVICE": SERVICE,
        }

    def master_port(self) -> int:
        """Where the Sentinels say the master is now."""
        for sentinel in self.sentinels:
            try:
                client = redis.Redis(port=sentinel.port, socket_timeout=1)
                _host, port = client.sentinel_get_master_addr_by_name(SERVICE)
                return int(port)
            except (redis.RedisError, TypeError):
                continue
        raise RuntimeError("no Sentinel names a master")

    def server_on(self, port: int) -> RedisServer:
        return next(server for server in self.servers if server.port == port)

    def promoted_after(self, old_port: int, timeout: float) -> int | None:
        """The port of the master that replaced `old_port`, once it acts as one."""

        def promoted() -> int | None:
            port = self.master_port()
            if port != old_port and _info(port, "replication").get("role") == "master":
                return port
            return None

        found: int | None = wait_for(promoted, timeout, interval=0.1)
        return found

    def stop(self) -> None:
        for process in [*self.sentinels, *self.servers]:
            process.stop()


class ClusterGroup:
    """A Redis Cluster of three masters (no replicas), every slot covered."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: list[RedisServer] = []

    def start(self) -> Self:
        for index in range(3):
            directory = self.root / f"node{index}"
            directory.mkdir(parents=True, exist_ok=True)
            node = RedisServer(
                # The bus port would be the port + 10000, past 65535 for a high free port.
                [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    str(free_port()),
                    "--cluster-node-timeout",
                    "2000",
                ],
                directory=directory,
            )
            self.nodes.append(node.start())
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            check=True,
            timeout=60,
        )
        assert wait_for(self._ready, 20), "the Cluster never covered every slot"
        return self

    def _ready(self) -> bool:
        for node in self.nodes:
            try:
                info = redis.Redis(port=node.port, socket_timeout=1).cluster("info")
            except redis.RedisError:
                return False
            if info.get("cluster_state") != "ok":
                return False
        return True

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def env(self) -> dict[str, str]:
        return {"RUNSTATS_REDIS_URL": "", "RUNSTATS_REDIS_CLUSTER_URL": self.url}

    def client(self) -> RedisCluster:
        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in self.nodes])

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
