"""What a process knows about the scans it refuses: how many lately, and until when.

During a flood of distinct filters most stats requests are refused, and each
refusal through the Flask app costs a worker a couple of milliseconds of CPU
(measured: half a core at a few hundred refusals a second, time the writers
then wait for). Once a process has been refused a slot it knows when one is
likely to free: until then the same answer can be given in front of the app
(shortcut.py), for the price of one Redis read.
"""

from __future__ import annotations

import threading
import time
from collections import deque

WINDOW_SECONDS = 5.0
MAX_CALLERS = 1024


class RecentRefusals:
    """How many scans this process refused in the last few seconds: the queue of callers
    that will ask again."""

    def __init__(self) -> None:
        self._times: deque[float] = deque(maxlen=10_000)
        self._lock = threading.Lock()

    def add(self, now: float) -> int:
        with self._lock:
            self._times.append(now)
            while self._times and self._times[0] < now - WINDOW_SECONDS:
                self._times.popleft()
            return len(self._times)


class RefusalWindows:
    """Until when (time.monotonic()) this process expects a scan to be refused: for every
    caller (its own or the deployment's slots are full), and per caller (their share of
    the slots is used). A window ends when the oldest scan holding the full bound is
    likely done, or when this process gives a slot back; a slot another process frees
    sooner stays unused at most that long."""

    def __init__(self) -> None:
        self._everyone: tuple[float, str] = (0.0, "")
        self._callers: dict[str, tuple[float, str]] = {}
        self._latest = 0.0
        self._lock = threading.Lock()

    def close(self, scope: str, caller: str | None, until: float) -> None:
        """Refuse scans until `until` for the reason `scope`: every caller's, or `caller`'s."""
        with self._lock:
            self._latest = max(self._latest, until)
            if caller is None:
                if until > self._everyone[0]:
                    self._everyone = (until, scope)
                return
            if len(self._callers) >= MAX_CALLERS:
                now = time.monotonic()
                self._callers = {c: w for c, w in self._callers.items() if w[0] > now}
            if len(self._callers) < MAX_CALLERS and until > self._callers.get(caller, (0.0,))[0]:
                self._callers[caller] = (until, scope)

    def reopen(self) -> None:
        """A slot of this process was just given back: no reason to refuse anyone now."""
        with self._lock:
            self._everyone = (0.0, "")
            self._callers.clear()
            self._latest = 0.0

    def open_for(self, caller: str | None, now: float) -> tuple[str, float] | None:
        """(the scope, seconds left) of a window refusing `caller` now, or None."""
        until, scope = self._everyone
        if now < until:
            return scope, until - now
        if caller is not None:
            until, scope = self._callers.get(caller, (0.0, ""))
            if now < until:
                return scope, until - now
        return None

    def any_open(self, now: float) -> bool:
        """Whether anyone may be refused now: asked before a caller is identified."""
        return now < self._latest
