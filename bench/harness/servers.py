"""gunicorn as the benchmarks run it: the tests' launcher, ready only with every worker up."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from tests.support.servers import GunicornServer

from .client import HttpClient
from .cpu import process_tree_cpu_seconds
from .errors import HarnessError
from .processes import clean_env


class Gunicorn(GunicornServer):
    """The tests' launcher, logging to the work directory, with CPU accounting.

    Ready only once every worker is up, so that a measurement never starts on
    a half-booted server; failures are HarnessErrors.
    """

    def __init__(
        self,
        app: str,
        env: Mapping[str, str],
        work_dir: Path,
        name: str,
        workers: int = 4,
        extra_args: Sequence[str] = (),
    ) -> None:
        metrics_dir = work_dir / f"{name}-metrics"
        super().__init__({}, workers, work_dir / f"{name}.log", app=app, extra_args=extra_args)
        self.name = name
        self.env = clean_env({**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})

    def start(self, timeout: float = 60) -> Gunicorn:
        return super().start(timeout)

    def ready(self) -> bool:
        client = HttpClient(self.url, timeout=2)
        try:
            return client.get("/healthz").status == 200 and len(self.worker_pids()) == self.workers
        except OSError:
            return False
        finally:
            client.close()

    def settle(self, timeout: float = 60, still: float = 0.3, poll: float = 0.1) -> None:
        """Until no worker has used CPU for `still` seconds: every one has loaded the app.

        gunicorn forks its workers before they import the app, and a worker still
        importing holds the requests it accepted; on a busy machine that takes
        seconds, which would land in whatever is measured first.
        """
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        last = self._worker_cpu()
        while time.monotonic() - quiet_since < still:
            if time.monotonic() > deadline:
                raise self.failure("gunicorn's workers did not settle in time")
            time.sleep(poll)
            now = self._worker_cpu()
            if now != last:
                quiet_since, last = time.monotonic(), now

    def _worker_cpu(self) -> dict[int, float]:
        """CPU seconds (user + system) of each worker."""
        seconds = {}
        for pid in self.worker_pids():
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.NoSuchProcess:
                continue
            seconds[pid] = times.user + times.system
        return seconds

    def request_seconds(self, prefix: str) -> dict[str, float]:
        """Seconds the app spent on each request whose id starts with `prefix` (access log)."""
        assert self.log_path is not None
        pattern = re.compile(r"duration_ms=([\d.]+) request_id=(" + re.escape(prefix) + r"\S*)")
        text = self.log_path.read_text(errors="replace")
        return {rid: float(value) / 1000 for value, rid in pattern.findall(text)}

    def worker_class(self) -> str:
        """The worker class gunicorn says it runs (its log's "Using worker: …")."""
        assert self.log_path is not None
        found = re.search(r"Using worker: (\w+)", self.log_path.read_text(errors="replace"))
        if found is None:
            raise self.failure("no worker class in the log")
        return found.group(1)

    def stop_soon(self) -> None:
        """SIGTERM, without waiting: the workers exit at once, while gunicorn's master may
        linger for seconds (stopping its control socket); `stop()` reaps it later."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def failure(self, message: str) -> Exception:
        return HarnessError(f"{message} ({self.name}); see {self.log_path}")

    def cpu_seconds(self) -> float:
        """CPU time of the master and every worker, the recycled ones included."""
        assert self.process is not None
        return process_tree_cpu_seconds(self.process.pid)
