"""What the cache stores for one result: a one-line header, then the body as sent.

    RS2 <compute_ms> <cached_at> <source>\n<body JSON>

A hit serves the body bytes without parsing them. The generation that orders
competing writers lives beside the envelope (see redis_store.py), not in it,
so no script ever has to parse this format.
"""

from __future__ import annotations

from dataclasses import dataclass

from .result import SOURCES

MAGIC = b"RS2"


@dataclass(frozen=True)
class Envelope:
    compute_ms: int
    cached_at: str
    source: str
    body: bytes

    def encode(self) -> bytes:
        header = b"%s %d %s %s\n" % (
            MAGIC,
            self.compute_ms,
            self.cached_at.encode(),
            self.source.encode(),
        )
        return header + self.body


def decode(raw: bytes | None) -> Envelope | None:
    """The envelope, or None for anything undecodable (treated as a miss)."""
    if not raw:
        return None
    header, newline, body = raw.partition(b"\n")
    parts = header.split(b" ")
    if not newline or len(parts) != 4 or parts[0] != MAGIC or not body.startswith(b"{"):
        return None
    try:
        source = parts[3].decode()
        if source not in SOURCES:
            return None
        return Envelope(int(parts[1]), parts[2].decode(), source, body)
    except (ValueError, UnicodeDecodeError):
        return None
