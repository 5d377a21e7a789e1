"""A small HTTP client for the harness's own requests, timed one by one."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import HarnessError


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
