"""CPU time (user + system) of the processes a measurement loads: servers, Redis, PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psutil
import redis
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

LOCAL_HOSTS = (None, "", "127.0.0.1", "localhost", "::1")


def process_tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children, dead ones included.

    A parent that reaps its children (gunicorn's master, PostgreSQL's postmaster)
    has their time in its children_* counters, so the sum stays monotonic while
    workers and backends come and go.
    """
    parent = psutil.Process(pid)
    times = parent.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in parent.children():
        try:
            own = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += own.user + own.system
    return total


def own_cpu_seconds() -> float:
    """CPU time of the harness process itself (all its threads)."""
    return float(sum(psutil.Process().cpu_times()[:2]))


def redis_cpu_seconds(client: redis.Redis) -> float:
    """CPU time of the whole Redis server, from `INFO cpu`."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def postgres_cpu_reader(database_url: str, engine: Engine) -> Callable[[], float | None]:
    """A reader of the database server's total CPU seconds; it reads None when that is not local.

    The postmaster's pid is the first line of `postmaster.pid` in the data directory.
    """
    if make_url(database_url).host not in LOCAL_HOSTS:
        return lambda: None
    try:
        with engine.connect() as connection:
            directory = connection.execute(text("SHOW data_directory")).scalar_one()
        pid = int((Path(directory) / "postmaster.pid").read_text().split()[0])
        process_tree_cpu_seconds(pid)
    except (OSError, ValueError, IndexError, psutil.Error, SQLAlchemyError):
        return lambda: None
    return lambda: process_tree_cpu_seconds(pid)
