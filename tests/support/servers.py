"""runstats in real processes: gunicorn instances, the flask CLI, and the app they serve."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import psutil
import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class StatsCacheTimings:
    """A test stack's stats-cache clock, short enough for tests to wait out."""

    ttl_seconds: int
    grace_seconds: int
    statement_timeout_ms: int
    lease_ms: int
    wait_ms: int

    def env(self) -> dict[str, str]:
        return {
            "RUNSTATS_STATS_CACHE_TTL": str(self.ttl_seconds),
            "RUNSTATS_STATS_CACHE_GRACE": str(self.grace_seconds),
            "RUNSTATS_STATEMENT_TIMEOUT_MS": str(self.statement_timeout_ms),
            "RUNSTATS_STATS_LEASE_MS": str(self.lease_ms),
            "RUNSTATS_STATS_WAIT_MS": str(self.wait_ms),
        }


def flask_command(env: Mapping[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "runstats_app", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def create_token(env: Mapping[str, str], user: str, role: str) -> str:
    return flask_command(env, "tokens", "create", "--user", user, "--role", role).splitlines()[-1]


class GunicornServer:
    """`gunicorn -c gunicorn.conf.py APP` with its own port and environment.

    The one launcher of the tests and the benchmarks (bench/harness.py extends
    it): ready once /healthz answers, stopped with SIGTERM then SIGKILL.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        workers: int = 4,
        log_path: Path | None = None,
        app: str = "wsgi:app",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.workers = workers
        self.log_path = log_path
        self.app = app
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            str(BIN / "gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            *self.extra_args,
            self.app,
        ]

    def start(self, timeout: float = 30) -> Self:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command(), cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self.failure(f"gunicorn exited with {self.process.returncode}")
            if self.ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise self.failure("gunicorn did not become healthy in time")

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def failure(self, message: str) -> Exception:
        return RuntimeError(f"{message}; see {self.log_path}" if self.log_path else message)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        try:
            return sorted(child.pid for child in psutil.Process(self.process.pid).children())
        except psutil.NoSuchProcess:
            return []

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@dataclass
class LiveApp:
    """A runstats served by gunicorn, seen from outside: its URL, environment and
    tokens by user name."""

    url: str
    env: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def api(self, path: str, **params: Any) -> Any:
        """GET /api/pipeline_runs{path}; its body, which must be a 200's."""
        response = requests.get(f"{self.url}/api/pipeline_runs{path}", params=params, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def create_run(self, user: str, **body: Any) -> dict[str, Any]:
        """POST a run as `user` (named "train" unless `body` names it); the created run."""
        response = requests.post(
            f"{self.url}/api/pipeline_runs/",
            json={"name": "train", **body},
            headers=self.headers(user),
            timeout=10,
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def change_status(self, user: str, run_id: str, target: str) -> dict[str, Any]:
        """POST a transition to `target` as `user`; the run afterwards."""
        response = requests.post(
            f"{self.url}/api/pipeline_runs/{run_id}/transitions",
            json={"status": target},
            headers=self.headers(user),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        changed: dict[str, Any] = response.json()
        return changed
