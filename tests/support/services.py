"""Services a test owns: its own PostgreSQL, its own redis-server, a TCP proxy to break.

The multi-host stats tests need what the machine's shared services cannot
give them: pg_stat_statements (to count aggregate queries in the database
itself), a Redis they may stop, and a Redis that accepts and never answers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import redis

from .databases import create_database
from .servers import free_port

PG_BIN = Path("/usr/lib/postgresql")


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(PG_BIN.glob("*/bin"), reverse=True)
    if not versions:
        raise RuntimeError("PostgreSQL server binaries not found")
    return str(versions[0] / name)


class TemporaryPostgres:
    """A throwaway cluster with pg_stat_statements, started on a free port."""

    def __init__(self, durable: bool = False, replica_of: TemporaryPostgres | None = None) -> None:
        """durable: acknowledge a commit only once its WAL is written, so that a
        commit survives the immediate stop (a crash) of this server's processes.
        replica_of: start as a streaming hot standby of that (running) cluster,
        from a base backup (`pg_basebackup -R`)."""
        self.port = free_port()
        self.durable = durable
        self.replica_of = replica_of
        self.root = Path(tempfile.mkdtemp(prefix="runstats-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {result.stdout}\n{result.stderr}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str = "runstats") -> str:
        """A new empty database on this cluster; its URL."""
        create_database(self.url(name))
        return self.url(name)

    def start(self) -> TemporaryPostgres:
        if not self.data.exists() and self.replica_of is not None:
            self._run(
                _pg_bin("pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.replica_of.port),
                "-U",
                "postgres",
                "-D",
                str(self.data),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
            )
        if not self.data.exists():
            self._run(
                _pg_bin("initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            )
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.root}",
                "-c shared_preload_libraries=pg_stat_statements",
                "-c pg_stat_statements.track=top",
                "-c client_connection_check_interval=100",
                "-c fsync=off",
                f"-c synchronous_commit={'on' if self.durable else 'off'}",
                "-c max_connections=200",
            ]
        )
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def execute(self, statement: str, database: str = "postgres") -> Any:
        """One statement as the superuser, autocommitted; its first row (None if none)."""
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname={database}", autocommit=True
        ) as connection:
            cursor = connection.execute(statement)
            return cursor.fetchone() if cursor.description else None

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """`redis-server` on a free port, persisting nothing; `args` add to its command line
    (after `config_file` when one is given: Sentinels keep their state in theirs)."""

    def __init__(
        self,
        args: Sequence[str] = (),
        config_file: Path | None = None,
        directory: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.args = list(args)
        self.config_file = config_file
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            "redis-server",
            *([str(self.config_file)] if self.config_file else []),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            *(["--dir", str(self.directory)] if self.directory else []),
            *self.args,
        ]

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        """SIGKILL: the server dies at once, with whatever it had not replicated."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class TcpProxy:
    """Forwards to a Redis, or refuses connections, or black-holes them.

    `forward`: a plain TCP proxy. `down`: the port refuses connections and
    open ones are closed (a stopped server). `blackhole`: connections are
    accepted and held, and nothing is ever answered (a hung server or a
    dropped network path).
    """

    def __init__(self, upstream_port: int, port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.mode = "forward"
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(512)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.append(client)
            if self.mode == "blackhole":
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.append(upstream)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if self.mode != "forward":
                continue
            try:
                target.sendall(data)
            except OSError:
                return

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def set_mode(self, mode: str) -> None:
        if mode not in ("forward", "down", "blackhole"):
            raise ValueError(mode)
        previous, self.mode = self.mode, mode
        if mode == "down":
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            self._close_all()
        elif previous == "down":
            self._listen()
        if mode == "forward" and previous == "blackhole":
            self._close_all()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        self._close_all()


class TcpProxyProcess:
    """A TcpProxy in a process of its own, told what to do over a pipe.

    In the test's process its forwarding threads would share the interpreter with the
    test's own client threads: a burst of 200 of those starved them past the app's
    250 ms Redis timeout, and the app rightly answered `bypass` (a flaky test).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.mode = "forward"
        context = multiprocessing.get_context("spawn")
        self._control, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve_proxy, args=(upstream_port, self.port, child_end), daemon=True
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> TcpProxyProcess:
        self._process.start()
        self._ask(("ready",))
        return self

    def set_mode(self, mode: str) -> None:
        if mode not in ("forward", "down", "blackhole"):
            raise ValueError(mode)
        self._ask(("mode", mode))
        self.mode = mode

    def stop(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(OSError, EOFError):
                self._ask(("stop",))
            self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()

    def _ask(self, message: tuple[str, ...]) -> None:
        self._control.send(message)
        if not self._control.poll(10):
            raise RuntimeError(f"the Redis proxy did not answer {message[0]!r}")
        self._control.recv()


def _serve_proxy(upstream_port: int, port: int, control: Any) -> None:
    proxy = TcpProxy(upstream_port, port).start()
    while True:
        message = control.recv()
        if message[0] == "mode":
            proxy.set_mode(message[1])
        elif message[0] == "stop":
            proxy.stop()
            control.send("ok")
            return
        control.send("ok")
