"""Stats scans running in PostgreSQL, sampled from pg_stat_activity in a thread.

Counted as the multi-process tests count them (`tests/multiprocess/probes.py`):
active statements tagged `/* runstats:stats-scan */` in this database, parallel
workers not counted (`leader_pid IS NULL`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from sqlalchemy import Engine

from tests.support.probes import running_scans

from .errors import HarnessError


class ScanSampler:
    """Samples the running scans every `interval` seconds until stopped, each with its time."""

    def __init__(self, engine: Engine, interval: float = 0.02) -> None:
        self.engine = engine
        self.interval = interval
        self.samples: list[tuple[float, int]] = []  # (time.perf_counter(), scans)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ScanSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), running_scans(self.engine)))
            self._stop.wait(self.interval)

    def between(self, start: float, end: float) -> Counter[int]:
        """How many samples in [start, end) saw each number of running scans."""
        seen = Counter(scans for at, scans in self.samples if start <= at < end)
        if not seen:
            raise HarnessError("no pg_stat_activity sample in the window")
        return seen


def wait_until_idle(engine: Engine, timeout: float) -> None:
    """Until no scan runs: a round must not start while the last one's scans finish."""
    deadline = time.monotonic() + timeout
    while running_scans(engine):
        if time.monotonic() > deadline:
            raise HarnessError(f"stats scans still running {timeout:.0f} s after a flood")
        time.sleep(0.05)
