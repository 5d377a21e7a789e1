"""Concurrent clients of a measurement: threads that start work at the same instant."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from .errors import HarnessError

Work = Callable[[int, threading.Barrier], int]
"""One client: `work(index, barrier)` gets ready (connects), waits at the barrier, works,
and returns how many of its operations failed."""

START_TIMEOUT = 120.0


def run_together(clients: int, work: Work, what: str) -> tuple[float, int]:
    """Run `clients` copies of `work` released by one barrier.

    Returns the seconds from the release until the last client is done, and the
    failures they counted. A client that raises breaks the barrier, so that the
    others stop waiting, and the harness stops with its error.
    """
    barrier = threading.Barrier(clients + 1)
    failures = [0] * clients
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            failures[index] = work(index, barrier)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=body, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=START_TIMEOUT)
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise HarnessError(
            f"{what}: {len(errors)} of {clients} clients failed: {errors[0]!r}"
        ) from errors[0]
    return elapsed, sum(failures)
