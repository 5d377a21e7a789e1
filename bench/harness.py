"""Plumbing for the benchmarks: servers, HTTP, load generators, metrics, statistics."""

from __future__ import annotations

import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import psutil

from tests.servers import GunicornServer

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


class HarnessError(RuntimeError):
    """The benchmark itself broke (as opposed to a performance goal being missed)."""


# --- statistics and formatting ---------------------------------------------


def median(values: Iterable[float]) -> float:
    items = list(values)
    if not items:
        raise HarnessError("median of nothing")
    return float(statistics.median(items))


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        raise HarnessError("percentile of nothing")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def ms(seconds: float) -> str:
    value = seconds * 1000
    if value >= 100:
        return f"{value:,.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


X = "\N{MULTIPLICATION SIGN}"
DASH = "\N{EN DASH}"


def times(value: float) -> str:
    return f"{value:.2f}{X}" if value < 10 else f"{value:,.1f}{X}"


def per_second(value: float) -> str:
    return f"{value:,.0f}/s"


def mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def details(summary: str, body: str, language: str = "text") -> str:
    return f"<details><summary>{summary}</summary>\n\n```{language}\n{body}\n```\n\n</details>"


# --- processes --------------------------------------------------------------


def flask_cli(env: Mapping[str, str], *args: str, timeout: float | None = None) -> str:
    """`flask --app runstats_app ARGS` with `env` on top of ours; its stdout."""
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "runstats_app", *args],
        cwd=ROOT,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise HarnessError(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def clean_env(env: Mapping[str, str]) -> dict[str, str]:
    """Our environment minus anything that would make servers share state, plus `env`."""
    merged = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    merged.update(env)
    return merged


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


def process_tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children, dead ones included.

    A parent that reaps its children (gunicorn's master, PostgreSQL's postmaster)
    has their time in its children_* counters, so the sum stays monotonic while
    workers and backends come and go.
    """
    parent = psutil.Process(pid)
    times = parent.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in parent.children():
        try:
            own = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += own.user + own.system
    return total


# --- HTTP -------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


class HttpClient:
    """A small http.client wrapper: reconnects when the server closes (gunicorn sync does)."""

    def __init__(self, base_url: str, timeout: float = 60) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def connect(self) -> None:
        self.connection.connect()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        started = time.perf_counter()
        try:
            self.connection.request(method, path, body=body, headers=dict(headers or {}))
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            raise
        seconds = time.perf_counter() - started
        reply_headers = {name.lower(): value for name, value in response.getheaders()}
        if response.will_close:
            self.connection.close()
        return Reply(response.status, reply_headers, data, seconds)

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post_json(
        self, path: str, payload: Any, headers: Mapping[str, str] | None = None
    ) -> Reply:
        return self.request(
            "POST",
            path,
            body=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    def close(self) -> None:
        self.connection.close()


def expect(reply: Reply, status: int, what: str) -> Reply:
    if reply.status != status:
        raise HarnessError(
            f"{what}: expected HTTP {status}, got {reply.status}: {reply.body[:500]!r}"
        )
    return reply


# --- Prometheus text --------------------------------------------------------


def scrape(base_url: str) -> dict[str, float]:
    """Samples of GET /metrics, keyed by `name{labels}` exactly as exposed."""
    client = HttpClient(base_url)
    try:
        reply = expect(client.get("/metrics"), 200, "GET /metrics")
    finally:
        client.close()
    samples: dict[str, float] = {}
    for line in reply.body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        samples[name] = float(value)
    return samples


def sample_sum(samples: Mapping[str, float], name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for key, value in samples.items():
        metric, _, rest = key.partition("{")
        if metric != name:
            continue
        if all(f'{label}="{wanted}"' in rest for label, wanted in labels.items()):
            total += value
    return total


# --- load generators --------------------------------------------------------


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
            script = self.work_dir / f"wrk-{uuid.uuid4().hex[:8]}.lua"
            listed = []
            for path in paths:
                literal = json.dumps(path)
                if "\\u" in literal:
                    raise HarnessError(f"wrk paths must be ASCII: {path!r}")
                listed.append(f"  {literal},")
            script.write_text(WRK_SCRIPT % {"paths": "\n".join(listed)})
            command += ["-s", str(script), base_url]
        else:
            command.append(base_url + paths[0])
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise HarnessError(
                f"wrk failed ({result.returncode}): {result.stderr or result.stdout}"
            )
        return self.parse(result.stdout)

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


# --- the machine -------------------------------------------------------------


def machine() -> dict[str, str]:
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    memory = ""
    free = subprocess.run(["free", "-b"], capture_output=True, text=True, check=False).stdout
    for line in free.splitlines():
        if line.startswith("Mem:"):
            memory = f"{int(line.split()[1]) / 2**30:.1f} GiB"
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": cores or str(os.cpu_count()),
        "memory": memory,
        "cpu": model or platform.processor(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())
