"""Load generators: Debian's wrk, or threads of http.client when wrk is missing."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .client import HttpClient
from .errors import HarnessError
from .stats import percentile


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    non_2xx: int
    socket_errors: int

    def check(self, what: str, tolerance: float = 0.01) -> LoadResult:
        """A load whose answers are mostly not 2xx measured nothing: stop the harness."""
        if self.requests == 0:
            raise HarnessError(f"{what}: no request completed")
        if self.non_2xx > tolerance * self.requests:
            raise HarnessError(f"{what}: {self.non_2xx} of {self.requests} answers were not 2xx")
        return self


class LoadGenerator(Protocol):
    name: str

    def run(
        self, base_url: str, paths: Sequence[str], connections: int, duration: float
    ) -> LoadResult: ...


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}

WRK_SCRIPT = """
local paths = {
%(paths)s
}
local counter = 0
local threads_seen = 0

function setup(thread)
  threads_seen = threads_seen + 1
  thread:set("offset", threads_seen * 7919)
end

function init(args)
  counter = offset or 0
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""


class Wrk:
    """Debian's wrk: a static request for one path, a Lua script to rotate several.

    Runs are timed, never counted: stopping a wrk thread after N answers
    (`wrk.thread:stop()`) leaves its other connections open without a request,
    and each one holds a gunicorn sync worker until the worker timeout kills it.
    """

    name = "wrk"

    def __init__(self, executable: str, work_dir: Path, threads: int = 2) -> None:
        self.executable = executable
        self.work_dir = work_dir
        self.threads = threads

    def run(
        self, base_url: str, paths: Sequence[str], connections: int, duration: float
    ) -> LoadResult:
        threads = max(1, min(self.threads, connections))
        command = [self.executable, "-t", str(threads), "-c", str(connections), "--latency"]
        command += ["-d", f"{max(1, round(duration))}s", "--timeout", "30s"]
        if len(paths) > 1:
            command += ["-s", str(self.script(paths)), base_url]
        else:
            command.append(base_url + paths[0])
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise HarnessError(
                f"wrk failed ({result.returncode}): {result.stderr or result.stdout}"
            )
        return self.parse(result.stdout)

    def script(self, paths: Sequence[str]) -> Path:
        """A Lua script in the work directory that rotates through `paths`."""
        listed = []
        for path in paths:
            literal = json.dumps(path)
            if "\\u" in literal:
                raise HarnessError(f"wrk paths must be ASCII: {path!r}")
            listed.append(f"  {literal},")
        script = self.work_dir / f"wrk-{uuid.uuid4().hex[:8]}.lua"
        script.write_text(WRK_SCRIPT % {"paths": "\n".join(listed)})
        return script

    @staticmethod
    def parse(output: str) -> LoadResult:
        done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", output)
        rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
        if not done or not rate:
            raise HarnessError(f"cannot read wrk's output:\n{output}")
        latencies = {}
        for share, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)", output, re.M):
            latencies[share] = float(value) * _UNITS[unit]
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        errors = re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
        )
        return LoadResult(
            requests=int(done.group(1)),
            seconds=float(done.group(2)) * _UNITS[done.group(3)] / 1000,
            rps=float(rate.group(1)),
            p50_ms=latencies.get("50"),
            p99_ms=latencies.get("99"),
            non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
            socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        )


class PythonLoad:
    """The fallback when wrk is missing: threads with keep-alive-capable http.client."""

    name = "python (wrk unavailable)"

    def run(
        self, base_url: str, paths: Sequence[str], connections: int, duration: float
    ) -> LoadResult:
        deadline = time.monotonic() + duration
        lock = threading.Lock()
        latencies: list[float] = []
        failures = [0, 0]  # non-2xx, socket errors

        def worker(offset: int) -> None:
            client = HttpClient(base_url, timeout=30)
            mine: list[float] = []
            bad = errors = 0
            index = offset
            while time.monotonic() < deadline:
                index += 1
                try:
                    reply = client.get(paths[index % len(paths)])
                except (OSError, http.client.HTTPException):
                    errors += 1
                    continue
                mine.append(reply.seconds)
                if not 200 <= reply.status < 400:
                    bad += 1
            client.close()
            with lock:
                latencies.extend(mine)
                failures[0] += bad
                failures[1] += errors

        started = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(n * 7919,)) for n in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        return LoadResult(
            requests=len(latencies),
            seconds=seconds,
            rps=len(latencies) / seconds if seconds else 0.0,
            p50_ms=percentile(latencies, 0.5) * 1000 if latencies else None,
            p99_ms=percentile(latencies, 0.99) * 1000 if latencies else None,
            non_2xx=failures[0],
            socket_errors=failures[1],
        )


def load_generator(work_dir: Path, install: bool) -> LoadGenerator:
    """wrk if present (or installable with apt-get when `install`), else the Python one."""
    found = shutil.which("wrk")
    if found is None and install and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"],
            capture_output=True,
            check=False,
            timeout=600,
        )
        found = shutil.which("wrk")
    if found:
        return Wrk(found, work_dir)
    return PythonLoad()
