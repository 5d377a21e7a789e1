"""Warnings about degraded operation, at most one per topic per interval.

A dead Redis or a lagging replica is met by every request; one log line per
request would bury everything else at the moment someone reads the log.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any


class RateLimitedWarning:
    def __init__(self, logger: logging.Logger, interval: float = 30.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, topic: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(topic, -self.interval) < self.interval:
                return
            self._last[topic] = now
        self.logger.warning(message, *args)
