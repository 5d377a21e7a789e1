"""gunicorn as the benchmarks run it: the tests' launcher, ready only with every worker up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

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

    def failure(self, message: str) -> Exception:
        return HarnessError(f"{message} ({self.name}); see {self.log_path}")

    def cpu_seconds(self) -> float:
        """CPU time of the master and every worker, the recycled ones included."""
        assert self.process is not None
        return process_tree_cpu_seconds(self.process.pid)
