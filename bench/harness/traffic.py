"""Background clients at a steady pace, each request timed and kept, to cut into windows later.

A paced client sends one request every `interval` seconds (at once when the last
one was late, never a burst to catch up), so its latency says how long the
server made it wait, not how fast the client could go. Every request carries an
`X-Request-ID` of its own, so the app's access log can say how much of that
time the app itself spent.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .client import HttpClient, Reply

OK, FAILED, TIMED_OUT = "ok", "failed", "timed out"

Step = Callable[[HttpClient, dict[str, str]], tuple[Reply, bool]]
"""One request of a client, sent with the given headers: the reply, and whether it was
the answer expected."""


@dataclass(frozen=True)
class Sample:
    sent: float  # time.perf_counter() when the request was sent
    seconds: float
    outcome: str  # OK, FAILED (an unexpected answer or a broken connection), TIMED_OUT
    request_id: str


class PacedClient:
    """A thread sending `step` every `interval` seconds until stopped, keeping every sample."""

    def __init__(self, url: str, step: Step, interval: float, timeout: float, name: str) -> None:
        self.client = HttpClient(url, timeout=timeout)
        self.step = step
        self.interval = interval
        self.name = name
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PacedClient:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.client.close()

    def _run(self) -> None:
        due = time.perf_counter()
        for number in itertools.count():
            if self._stop.is_set():
                return
            self.samples.append(self._one(f"{self.name}-{number}"))
            due = max(due + self.interval, time.perf_counter())
            self._stop.wait(due - time.perf_counter())

    def _one(self, request_id: str) -> Sample:
        sent = time.perf_counter()
        try:
            _, expected = self.step(self.client, {"X-Request-ID": request_id})
        except TimeoutError:
            outcome = TIMED_OUT
        except (OSError, http.client.HTTPException):
            outcome = FAILED
        else:
            outcome = OK if expected else FAILED
        return Sample(sent, time.perf_counter() - sent, outcome, request_id)


def within(clients: Sequence[PacedClient], start: float, end: float) -> list[Sample]:
    """The samples of `clients` sent in [start, end)."""
    return [s for c in clients for s in c.samples if start <= s.sent < end]


def in_app(samples: Sequence[Sample], app_seconds: Mapping[str, float]) -> list[float]:
    """The seconds the app spent on each of `samples` that its access log recorded."""
    return [app_seconds[s.request_id] for s in samples if s.request_id in app_seconds]
