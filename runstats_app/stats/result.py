"""The vocabulary of a stats answer: what a computation produces, what a request gets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

HIT, MISS, STALE, BYPASS = "hit", "miss", "stale", "bypass"
COUNTS, SCAN = "counts", "scan"
SOURCES = (COUNTS, SCAN)


@dataclass(frozen=True)
class Computed:
    """One aggregate's answer: the response body, and the moment and source of its data."""

    body: bytes
    cached_at: datetime
    source: str


class Computation(Protocol):
    """An aggregate not run yet; `source` says beforehand whether it will read runs."""

    @property
    def source(self) -> str: ...

    def __call__(self) -> Computed: ...


@dataclass(frozen=True)
class StatsResult:
    body: bytes
    cache: str
    max_age: int
    source: str

    def headers(self) -> list[tuple[str, str]]:
        """How fresh the answer is and where it came from, as every stats response says."""
        return [
            ("Cache-Control", f"max-age={self.max_age}"),
            ("X-Cache", self.cache),
            ("X-Stats-Source", self.source),
        ]
