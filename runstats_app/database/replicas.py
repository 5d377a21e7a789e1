"""Streaming replicas for reads that may lag: which are usable now, measured in the background.

Each process checks every replica twice a second, off the request path, by
WAL positions: it notes the primary's position at each check, and a replica
is as far behind as the time since the primary was at the position the
replica has replayed (0 once it has replayed the primary's latest). This
needs no clock on either server and is not fooled by a primary that was idle
(the age of the last replayed transaction would be). A replica further behind
than RUNSTATS_REPLICA_MAX_LAG_MS, or unreachable, or no longer in recovery
(promoted), is skipped; a query that fails on one marks it unreachable at
once. With none usable, reads go to the primary.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from ..degraded import RateLimitedWarning
from ..metrics import replica_lag_seconds

log = logging.getLogger(__name__)

CHECK_INTERVAL_SECONDS = 0.5
OK, LAGGING, UNREACHABLE, NOT_A_REPLICA = "ok", "lagging", "unreachable", "not_a_replica"

_PRIMARY_POSITION = text("SELECT pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::bigint")
_REPLICA_POSITION = text(
    "SELECT pg_is_in_recovery(),"
    " coalesce(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'), 0)::bigint,"
    " coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0'), 0)::bigint"
)
WAL_PAGE_BYTES = 8192
"""A replica that has received all the primary wrote and replayed all but its last page
holds every complete record: a record that runs past the primary's last page cannot be
replayed until the primary writes more, which an idle primary may not do for a while."""


class PrimaryPositions:
    """The primary's WAL positions as seen at each check, for as long as lag can matter."""

    def __init__(self, keep_seconds: float) -> None:
        self.keep_seconds = keep_seconds
        self._seen: deque[tuple[float, int]] = deque()

    def note(self, now: float, position: int) -> None:
        self._seen.append((now, position))
        while self._seen and self._seen[0][0] < now - self.keep_seconds:
            self._seen.popleft()

    def lag_seconds(self, now: float, replayed: int, received: int) -> float | None:
        """How long ago the primary was at `replayed` or before; 0 when it is caught up,
        None when it is behind everything noted (longer than we keep)."""
        if not self._seen:
            return 0.0
        latest = self._seen[-1][1]
        if replayed >= latest or (received >= latest and received - replayed < WAL_PAGE_BYTES):
            return 0.0
        for seen_at, position in reversed(self._seen):
            if position <= replayed:
                return now - seen_at
        return None


@dataclass(frozen=True)
class Health:
    state: str
    lag_ms: float | None
    checked_at: float

    def report(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"state": self.state}
        if self.lag_ms is not None:
            answer["lag_ms"] = round(self.lag_ms)
        return answer


class Replica:
    """One replica: its name (URL without password), its engines, and its last health."""

    def __init__(self, url: str, engines: Callable[[str], Any]) -> None:
        self.name = make_url(url).render_as_string(hide_password=True)
        self.target = engines(url)
        self.health = Health(UNREACHABLE, None, 0.0)

    @property
    def lag_seconds(self) -> float:
        """How far behind the data it serves may be now: the lag measured, plus the time
        since it was measured (the primary may have written meanwhile)."""
        measured = (self.health.lag_ms or 0.0) / 1000
        return measured + max(0.0, time.monotonic() - self.health.checked_at)


class ReplicaSet:
    def __init__(self, primary: Engine, replicas: list[Replica], max_lag_ms: int) -> None:
        self.primary = primary
        self.replicas = replicas
        self.max_lag_ms = max_lag_ms
        self.positions = PrimaryPositions(max_lag_ms / 1000 + 10 * CHECK_INTERVAL_SECONDS)
        self._warn = RateLimitedWarning(log)
        self._started = False
        self._lock = threading.Lock()

    def choose(self) -> Replica | None:
        """A usable replica, at random among them; None when there is none."""
        self._start()
        usable = [r for r in self.replicas if r.health.state == OK]
        return random.choice(usable) if usable else None  # noqa: S311 - load spreading

    def failed(self, replica: Replica, error: Exception) -> None:
        replica.health = Health(UNREACHABLE, None, time.monotonic())
        self._warn(
            f"failed-{replica.name}",
            "replica %s failed a read (%s); reading from the primary until it checks out",
            replica.name,
            type(error).__name__,
        )

    def report(self) -> dict[str, Any]:
        self._start()
        return {r.name: r.health.report() for r in self.replicas}

    def _start(self) -> None:
        if self._started:
            return
        with self._lock:
            if not self._started:
                self.check()
                thread = threading.Thread(target=self._run, name="runstats-replicas", daemon=True)
                thread.start()
                self._started = True

    def _run(self) -> None:
        while True:
            time.sleep(CHECK_INTERVAL_SECONDS)
            self.check()

    def check(self) -> None:
        try:
            with self.primary.connect() as connection:
                position = int(connection.execute(_PRIMARY_POSITION).scalar_one())
            self.positions.note(time.monotonic(), position)
        except SQLAlchemyError:
            self._warn("primary", "replicas: the primary's WAL position could not be read")
        for replica in self.replicas:
            replica.health = self._health(replica)
            if replica.health.lag_ms is not None:
                replica_lag_seconds.labels(replica=replica.name).set(replica.health.lag_ms / 1000)

    def _health(self, replica: Replica) -> Health:
        now = time.monotonic()
        try:
            with replica.target.engine.connect() as connection:
                recovering, replayed, received = connection.execute(_REPLICA_POSITION).one()
        except SQLAlchemyError as exc:
            if replica.health.state != UNREACHABLE:
                self._warn(
                    f"down-{replica.name}",
                    "replica %s unreachable: %s",
                    replica.name,
                    type(exc).__name__,
                )
            return Health(UNREACHABLE, None, now)
        if not recovering:
            return Health(NOT_A_REPLICA, None, now)
        lag = self.positions.lag_seconds(now, int(replayed), int(received))
        if lag is None:
            return Health(LAGGING, None, now)
        lag_ms = lag * 1000
        if lag_ms > self.max_lag_ms:
            if replica.health.state == OK:
                self._warn(
                    f"lag-{replica.name}",
                    "replica %s is %.0f ms behind; skipped",
                    replica.name,
                    lag_ms,
                )
            return Health(LAGGING, lag_ms, now)
        return Health(OK, lag_ms, now)
